"""Soak: the hub's memory under a steady mixed load with hostile clients connected.

One real ``hive serve`` (SQLite log, 127.0.0.1, a free port, authentication on
through ``--admin-token``) runs for ``seconds`` while this process drives it:

Load (what a user relies on):

* a **producer** submitting ``rate`` tasks/s, on alternate 100 ms ticks as one
  ``POST /api/tasks/batch`` and as single ``POST /api/tasks`` (each task carries
  ``input_bytes`` of input); 60 % ``soak.fast``, 20 % ``soak.flaky`` (first attempt
  fails, retried), 20 % ``soak.slow`` (three progress reports, then done);
* the **agents** (``bench/soak_agent.py``, a subprocess): SDK agents over
  ``/agents/ws``, 2 fast, 1 flaky, 1 slow;
* **readers** polling REST (status, task list, agents, events) with their latency;
* **live /ws subscribers** reading normally (all events; ``types=task_completed``;
  ``snapshot=1``); each resumes with ``since`` if it is ever cut off.

Hostile clients, connected throughout; each reconnects (after 0.5 s) whenever the
hub cuts it off, so the pressure stays. Raw sockets with a 4 KiB receive buffer;
a client notices being cut off from its own TCP state (``TCP_INFO``), without
reading a byte:

* ``status_noread``: ``/ws``, sends ``get_status`` without reading replies;
* ``snapshot_noread``: ``/ws?snapshot=1``, never reads;
* ``agent_badframes``: ``/agents/ws``, registers (a capability no task needs),
  then sends malformed JSON, unknown types and reports for unknown tasks, never
  reading the error replies (one heartbeat a second keeps it alive);
* ``heartbeat_flood``: ``/agents/ws``, registers, then floods heartbeats;
* ``replay_noread``: ``/ws?since=0``, never reads;
* ``idle_tcp``: a TCP connection that sends nothing;
* ``slowloris``: an HTTP request whose headers arrive a byte every 2 s;
* ``unknown_token``: REST requests with well-formed tokens the hub never issued.

The hub's RSS and CPU are sampled (psutil) every ``sample_s``. Reported: RSS at
the end of the warm-up, its maximum, its least-squares slope over the second half
(MiB/min), tasks completed, cut-offs per hostile kind, and the verdict
``bounded`` when the slope is under ``SLOPE_LIMIT_MIB_PER_MIN`` and the maximum
under warm-up + ``MARGIN_MIB``.

``python -m bench --only soak`` runs it as part of ``make bench`` (10 min at 120
tasks/s: the same 72,000 tasks as one hour at 20/s); ``HIVEBENCH_SOAK_SECONDS`` and
``HIVEBENCH_SOAK_RATE`` change that. Standalone, with the options below:
``python -m bench.soak --seconds 3600 --rate 20`` (the one-hour soak) and
``python -m bench.soak --breakdown --seconds 60`` (each hostile kind alone on a
fresh hub, no other load: RSS growth per kind).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import PY, Histogram, Hub, Proc, wait_until, workdir
from bench.wsclient import OP_TEXT, _masked_frame

SLOPE_LIMIT_MIB_PER_MIN = 1.0
MARGIN_MIB = 64.0
WARMUP_FRACTION = 0.2  # the first fifth: connections made, caches and the allocator's arenas filled
ADMIN_TOKEN = "soak-admin-" + "0" * 24  # this run's hub only (127.0.0.1, a temporary log)

KINDS = [
    "status_noread",
    "snapshot_noread",
    "agent_badframes",
    "heartbeat_flood",
    "replay_noread",
    "idle_tcp",
    "slowloris",
    "unknown_token",
]

_TCP_ESTABLISHED = 1


@dataclass
class Config:
    seconds: float
    warmup: float
    rate: float  # tasks/s from the producer (0: no load at all)
    input_bytes: int = 1024
    sample_s: float = 5.0
    readers: int = 2
    reader_rate: float = 5.0  # requests/s per reader
    hostile: dict[str, int] = field(default_factory=dict)  # kind -> number of clients
    frames_per_s: float = 500.0  # per frame-sending hostile client (heartbeat flood: 10x)
    unknown_token_rate: float = 200.0
    slowloris_byte_s: float = 2.0
    prefill_tasks: int = 0  # tasks nobody serves, submitted before the run (breakdown)
    prefill_bytes: int = 8192
    agents: bool = True
    subscribers: bool = True


def config(mode: str) -> Config:
    full_h = {
        "status_noread": 2,
        "snapshot_noread": 4,
        "agent_badframes": 2,
        "heartbeat_flood": 1,
        "replay_noread": 2,
        "idle_tcp": 50,
        "slowloris": 20,
        "unknown_token": 1,
    }
    if mode == "smoke":
        cfg = Config(
            seconds=20,
            warmup=4,
            rate=20,
            sample_s=1.0,
            readers=1,
            reader_rate=2.0,
            hostile={k: 1 for k in KINDS} | {"idle_tcp": 3, "slowloris": 3},
            frames_per_s=100,
            unknown_token_rate=20,
            slowloris_byte_s=1.0,
        )
    elif mode == "quick":
        cfg = Config(seconds=180, warmup=36, rate=60, sample_s=3.0, hostile=full_h)
    else:
        cfg = Config(seconds=600, warmup=120, rate=120, sample_s=5.0, hostile=full_h)
    env_s, env_r = os.environ.get("HIVEBENCH_SOAK_SECONDS"), os.environ.get("HIVEBENCH_SOAK_RATE")
    if env_s:
        cfg.seconds = float(env_s)
        cfg.warmup = cfg.seconds * WARMUP_FRACTION
    if env_r:
        cfg.rate = float(env_r)
    return cfg


# ------------------------------------------------------------------ analysis


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if not sxx:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return round(sxy / sxx * 60, 3)


def analyse(samples: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    if not samples:
        return {"verdict": "no samples"}
    warm = [s for s in samples if s["t"] <= cfg.warmup] or samples[:1]
    rss_warm = warm[-1]["rss_mib"]
    after = [s for s in samples if s["t"] >= cfg.warmup] or samples
    half = [s for s in samples if s["t"] >= cfg.seconds / 2] or samples[-2:]
    slope = slope_per_min([(s["t"], s["rss_mib"]) for s in half])
    rss_max = max(s["rss_mib"] for s in samples)
    cpu = [s["cpu_pct"] for s in after if s.get("cpu_pct") is not None]
    bounded = slope is not None and slope < SLOPE_LIMIT_MIB_PER_MIN and rss_max <= rss_warm + MARGIN_MIB
    return {
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_warmup_mib": rss_warm,
        "rss_max_mib": rss_max,
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_growth_after_warmup_mib": round(samples[-1]["rss_mib"] - rss_warm, 1),
        "rss_slope_second_half_mib_per_min": slope,
        "hub_cpu_avg_pct": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "hub_cpu_max_pct": max(cpu) if cpu else None,
        "hub_fds_max": max(s["fds"] for s in samples),
        "verdict": "bounded" if bounded else "NOT bounded",
        "limits": {"slope_mib_per_min": SLOPE_LIMIT_MIB_PER_MIN, "margin_mib": MARGIN_MIB},
    }


# ------------------------------------------------------------------ shared state


@dataclass
class Kind:
    clients: int = 0
    connects: int = 0
    cut_offs: int = 0  # the hub ended a connection it had accepted
    refused: int = 0  # the connection or its handshake failed
    sent_frames: int = 0
    sent_bytes: int = 0
    responses: dict[str, int] = field(default_factory=dict)  # unknown_token: HTTP status -> count

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "responses"}
        if self.responses:
            d["responses"] = dict(self.responses)
        return d


class Run:
    def __init__(self, hub: Hub, cfg: Config) -> None:
        self.hub = hub
        self.cfg = cfg
        self.stop = asyncio.Event()
        self.kinds: dict[str, Kind] = {k: Kind() for k in cfg.hostile}
        self.submitted = 0
        self.submit_errors: dict[str, int] = {}
        self.reader_lat = Histogram()
        self.reader_errors: dict[str, int] = {}
        self.sub_messages: dict[str, int] = {}
        self.sub_reconnects = 0
        self.completed_seen: set[str] = set()
        self.last_sequence = 0

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def nap(self, seconds: float) -> None:
        """Sleep, but wake at once when the run stops (every loop here is bounded by it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)


def _count(d: dict[str, int], key: str) -> None:
    d[key] = d.get(key, 0) + 1


# ------------------------------------------------------------------ load


def _task(rng: random.Random, pad: str) -> dict[str, Any]:
    r = rng.random()
    kind = "fast" if r < 0.6 else "flaky" if r < 0.8 else "slow"
    # The flaky agent fails every first attempt, so the hub learns its proficiency
    # down toward 0.5 (measured: 0.499 after two minutes). A bar at 0.5 would make it
    # ineligible after a few cycles, and flaky tasks would pile up as pending for
    # the rest of the run: growth from work nobody may take, not from the hub.
    return {
        "type": f"soak.{kind}",
        "description": "soak",
        "input": {"pad": pad},
        "required_capabilities": [{"name": f"soak.{kind}", "min_proficiency": 0.3}],
        "max_retries": 3,
        "timeout_seconds": 120,
    }


async def producer(run: Run) -> None:
    import aiohttp

    rng = random.Random(11)
    pad = "x" * run.cfg.input_bytes
    tick, owed, k = 0.1, 0.0, 0
    t_next = time.monotonic()
    async with aiohttp.ClientSession(headers=run.auth()) as s:
        while not run.stop.is_set():
            owed += run.cfg.rate * tick
            n, owed = int(owed), owed - int(owed)
            k += 1
            try:
                if n and k % 2:
                    async with s.post(
                        run.hub.url + "/api/tasks/batch", json={"tasks": [_task(rng, pad) for _ in range(n)]}
                    ) as r:
                        await r.read()
                        if r.status == 201:
                            run.submitted += n
                        else:
                            _count(run.submit_errors, str(r.status))
                else:
                    for _ in range(n):
                        async with s.post(run.hub.url + "/api/tasks", json=_task(rng, pad)) as r:
                            await r.read()
                            if r.status == 201:
                                run.submitted += 1
                            else:
                                _count(run.submit_errors, str(r.status))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                _count(run.submit_errors, type(exc).__name__)
            t_next += tick
            await run.nap(max(0.0, t_next - time.monotonic()))


async def reader(run: Run, i: int) -> None:
    import aiohttp

    paths = ["/api/hive/status", "/api/tasks?limit=20", "/api/agents", "events"]
    k = i
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=run.auth(), timeout=timeout) as s:
        while not run.stop.is_set():
            p = paths[k % len(paths)]
            k += 1
            if p == "events":
                p = f"/api/events?since={max(0, run.last_sequence - 100)}&limit=100"
            t0 = time.monotonic()
            try:
                async with s.get(run.hub.url + p) as r:
                    body = await r.read()
                    run.reader_lat.add(time.monotonic() - t0)
                    if r.status != 200:
                        _count(run.reader_errors, str(r.status))
                    elif p == "/api/hive/status":
                        run.last_sequence = int(json.loads(body).get("published_sequence") or 0)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                _count(run.reader_errors, type(exc).__name__)
            await run.nap(1.0 / run.cfg.reader_rate)


async def subscriber(run: Run, name: str, query: str) -> None:
    """A live /ws client that reads everything; resumes with ``since`` if cut off."""
    import aiohttp

    since = None
    run.sub_messages[name] = 0
    async with aiohttp.ClientSession(headers=run.auth()) as s:
        while not run.stop.is_set():
            q = query if since is None else f"{query}&since={since}".lstrip("&")
            try:
                async with s.ws_connect(f"{run.hub.ws_url}/ws?{q}", heartbeat=None, max_msg_size=0) as ws:
                    while not run.stop.is_set():
                        stop_w = asyncio.ensure_future(run.stop.wait())
                        recv = asyncio.ensure_future(ws.receive())
                        await asyncio.wait({stop_w, recv}, return_when=asyncio.FIRST_COMPLETED)
                        stop_w.cancel()
                        if not recv.done():
                            recv.cancel()
                            return
                        msg = recv.result()
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        run.sub_messages[name] += 1
                        m = json.loads(msg.data)
                        if isinstance(m.get("sequence"), int):
                            since = m["sequence"]
                        elif m.get("type") == "snapshot":
                            since = m["data"].get("sequence", since)
                        if m.get("type") == "task_completed":
                            run.completed_seen.add(m["data"]["task_id"])
            except (aiohttp.ClientError, OSError) as exc:
                _count(run.reader_errors, f"ws {type(exc).__name__}")
            if not run.stop.is_set():
                run.sub_reconnects += 1
                await run.nap(0.5)


# ------------------------------------------------------------------ hostile clients


def _tcp_alive(sock: socket.socket) -> bool:
    """Whether the hub still holds this connection, from our own TCP state (no read)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return False
    return info[0] == _TCP_ESTABLISHED


async def _raw_connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # a small receive buffer so that not reading backs the hub up quickly
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 10)
    except BaseException:
        sock.close()
        raise
    return sock


async def _ws_handshake(sock: socket.socket, port: int, path: str) -> None:
    """Upgrade to WebSocket; reads nothing after the response headers."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    req = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n"
    )
    await asyncio.wait_for(loop.sock_sendall(sock, req.encode()), 10)
    buf = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), max(0.01, left))
        if not chunk:
            raise ConnectionError("closed during the handshake")
        buf += chunk
        status_line = buf.split(b"\r\n", 1)[0]
        if b"\r\n\r\n" in buf and b" 101 " not in status_line + b" ":
            raise ConnectionError(f"handshake refused: {status_line!r}")


class _Sender:
    """Writes frames without ever blocking and without splitting one: a frame is
    queued only while what is still unsent is small (the hub may have stopped
    reading us), so the stream stays well-formed however backed up it is."""

    def __init__(self, sock: socket.socket, kind: Kind) -> None:
        self.sock, self.kind, self.pending = sock, kind, b""

    def flush(self) -> None:
        if self.pending:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                n = self.sock.send(self.pending)
                self.pending = self.pending[n:]

    def offer(self, frames: list[bytes]) -> None:
        self.flush()
        if len(self.pending) < 65536:
            data = b"".join(frames)
            self.pending += data
            self.kind.sent_frames += len(frames)
            self.kind.sent_bytes += len(data)
        self.flush()


def _frame(obj: Any) -> bytes:
    return _masked_frame(OP_TEXT, obj if isinstance(obj, bytes) else json.dumps(obj).encode())


async def _hold(
    run: Run,
    sock: socket.socket,
    make: Any = None,
    per_s: float = 0.0,
    kind: Kind | None = None,
    heartbeat: bool = False,
) -> bool:
    """Keep a connection until the hub cuts it (True) or the run stops (False),
    sending ``make(i)`` frames at ``per_s`` without reading anything."""
    sender = _Sender(sock, kind) if kind is not None else None
    tick = 0.02
    per_tick = per_s * tick
    owed, i, last_hb = 0.0, 0, time.monotonic()
    while not run.stop.is_set():
        if not _tcp_alive(sock):
            return True
        if make is not None and sender is not None:
            owed += per_tick
            n, owed = int(owed), owed - int(owed)
            frames = [make(i + j) for j in range(n)]
            i += n
            if heartbeat and time.monotonic() - last_hb >= 1.0:
                frames.append(_frame({"type": "heartbeat", "data": {}}))
                last_hb = time.monotonic()
            if frames:
                sender.offer(frames)
        await run.nap(tick if make is not None else 0.5)
    return False  # stopping: not a cut-off


def _register(agent_id: str) -> dict[str, Any]:
    return {
        "type": "register",
        "message_id": f"reg-{agent_id}",
        "data": {
            "name": agent_id,
            "id": agent_id,
            "max_concurrent_tasks": 1,
            "running": {},
            "capabilities": [{"name": "soak.hostile-none", "proficiency": 0.5}],
        },
    }


async def hostile(run: Run, kind_name: str, idx: int) -> None:
    kind = run.kinds[kind_name]
    kind.clients += 1
    port = run.hub.port
    rate = run.cfg.frames_per_s
    status_f = _frame({"type": "get_status", "message_id": "s"})
    bad = [
        b"{not json",
        json.dumps({"type": "no_such_type", "data": {}, "message_id": "u"}).encode(),
        json.dumps(
            {
                "type": "task_completed",
                "message_id": "c",
                "data": {"task_id": "no-such-task", "attempt": 1, "result": None},
            }
        ).encode(),
    ]
    bad_f = [_frame(b) for b in bad]
    hb_f = _frame({"type": "heartbeat", "data": {}})
    if kind_name == "unknown_token":
        await _unknown_token(run, kind)
        return
    while not run.stop.is_set():
        sock: socket.socket | None = None
        connected = False
        try:
            sock = await _raw_connect(port)
            if kind_name == "status_noread":
                await _ws_handshake(sock, port, "/ws")
                connected = True
                kind.connects += 1
                cut = await _hold(run, sock, lambda i: status_f, rate, kind)
            elif kind_name in ("snapshot_noread", "replay_noread"):
                await _ws_handshake(
                    sock, port, "/ws?snapshot=1" if kind_name == "snapshot_noread" else "/ws?since=0"
                )
                connected = True
                kind.connects += 1
                cut = await _hold(run, sock)
            elif kind_name in ("agent_badframes", "heartbeat_flood"):
                await _ws_handshake(sock, port, "/agents/ws")
                await asyncio.get_running_loop().sock_sendall(
                    sock, _frame(_register(f"soak-{kind_name}-{idx}"))
                )
                await _ws_handshake_wait(sock, b"registered")
                connected = True
                kind.connects += 1
                if kind_name == "agent_badframes":
                    cut = await _hold(run, sock, lambda i: bad_f[i % 3], rate, kind, heartbeat=True)
                else:
                    cut = await _hold(run, sock, lambda i: hb_f, rate * 10, kind)
            elif kind_name == "idle_tcp":
                connected = True
                kind.connects += 1
                cut = await _hold(run, sock)
            elif kind_name == "slowloris":
                await asyncio.get_running_loop().sock_sendall(
                    sock, f"GET /api/hive/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
                )
                connected = True
                kind.connects += 1
                sender = _Sender(sock, kind)
                while not run.stop.is_set() and _tcp_alive(sock):
                    sender.offer([b"a"])
                    await run.nap(run.cfg.slowloris_byte_s)
                cut = not run.stop.is_set()
            else:
                raise KeyError(kind_name)
            if not cut:
                return
            kind.cut_offs += 1
        except (OSError, TimeoutError, ConnectionError):
            if run.stop.is_set():
                return
            if connected:
                kind.cut_offs += 1
            else:
                kind.refused += 1
        finally:
            if sock is not None:
                sock.close()
        await run.nap(0.5)


async def _ws_handshake_wait(sock: socket.socket, text: bytes) -> None:
    """After the upgrade, read until ``text`` arrived (10 s at most)."""
    loop = asyncio.get_running_loop()
    buf, deadline = b"", time.monotonic() + 10
    while text not in buf:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), max(0.01, deadline - time.monotonic()))
        if not chunk:
            raise ConnectionError("closed before " + text.decode())
        buf += chunk
        if b'"error"' in buf:
            raise ConnectionError(f"refused: {buf[:200]!r}")


async def _unknown_token(run: Run, kind: Kind) -> None:
    """REST requests with well-formed tokens (``hv_<id>_<secret>``) the hub never issued."""
    import aiohttp

    rng = random.Random(5)
    tick = 0.02
    per_tick = run.cfg.unknown_token_rate * tick
    owed = 0.0
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        kind.connects += 1

        async def one() -> None:
            tok = f"hv_{rng.getrandbits(64):016x}_{rng.getrandbits(128):032x}"
            try:
                async with s.get(
                    run.hub.url + "/api/tasks?limit=1", headers={"Authorization": f"Bearer {tok}"}
                ) as r:
                    await r.read()
                    _count(kind.responses, str(r.status))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                _count(kind.responses, type(exc).__name__)
            kind.sent_frames += 1

        while not run.stop.is_set():
            owed += per_tick
            n, owed = int(owed), owed - int(owed)
            # at most 8 in flight: the flood is bounded by the hub's answers, not by us
            for lo in range(0, n, 8):
                await asyncio.gather(*(one() for _ in range(min(8, n - lo))))
            await run.nap(tick)


# ------------------------------------------------------------------ the run


async def _sampler(run: Run, pid: int, out: list[dict[str, Any]], t0: float) -> None:
    import psutil

    p = psutil.Process(pid)
    last_cpu, last_t = 0.0, 0.0
    while True:
        try:
            mem = p.memory_info().rss
            fds = p.num_fds()
            cpu = sum(p.cpu_times()[:2])
        except psutil.Error:
            return
        now = time.monotonic()
        out.append(
            {
                "t": round(now - t0, 2),
                "rss_mib": round(mem / 2**20, 1),
                "fds": fds,
                "cpu_pct": round(100 * (cpu - last_cpu) / (now - last_t), 1) if last_t else None,
            }
        )
        last_cpu, last_t = cpu, now
        if run.stop.is_set():
            return
        await run.nap(run.cfg.sample_s)


def _prefill(hub: Hub, cfg: Config) -> None:
    """Tasks no agent serves (state for snapshots, events for replays)."""
    import urllib.request

    pad = "p" * cfg.prefill_bytes
    for lo in range(0, cfg.prefill_tasks, 50):
        tasks = [
            {
                "type": "soak.unserved",
                "description": "prefill",
                "input": {"pad": pad},
                "required_capabilities": [{"name": "soak.unserved"}],
            }
            for _ in range(min(50, cfg.prefill_tasks - lo))
        ]
        req = urllib.request.Request(
            hub.url + "/api/tasks/batch",
            data=json.dumps({"tasks": tasks}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()


def _get(hub: Hub, path: str) -> Any:
    import urllib.request

    req = urllib.request.Request(hub.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


async def _drive(hub: Hub, cfg: Config) -> dict[str, Any]:
    run = Run(hub, cfg)
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    jobs = [asyncio.create_task(_sampler(run, hub.pid, samples, t0))]
    if cfg.rate:
        jobs.append(asyncio.create_task(producer(run)))
        jobs += [asyncio.create_task(reader(run, i)) for i in range(cfg.readers)]
    if cfg.subscribers:
        for name, q in (("all", ""), ("completed", "types=task_completed"), ("snapshot", "snapshot=1")):
            jobs.append(asyncio.create_task(subscriber(run, name, q)))
    for kind, n in cfg.hostile.items():
        jobs += [asyncio.create_task(hostile(run, kind, i)) for i in range(n)]
    await run.nap(cfg.seconds)
    run.stop.set()
    # every job watches ``stop``; anything still blocked after 15 s is cancelled
    _, late = await asyncio.wait(jobs, timeout=15)
    for j in late:
        j.cancel()
    res = await asyncio.gather(*jobs, return_exceptions=True)
    crashed = [
        f"{type(r).__name__}: {r}"
        for r in res
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    return {
        "run": run,
        "samples": samples,
        "wall_s": round(time.monotonic() - t0, 1),
        "job_errors": crashed[:5],
    }


def soak(cfg: Config, d: Path, tag: str = "soak") -> dict[str, Any]:
    import uvloop

    flags = [
        "--rate-limit",
        "0",
        "--status-interval",
        "5",
        "--resource-interval",
        "5",
        "--max-ws-per-client",
        "10000",
        "--admin-token",
        ADMIN_TOKEN,
        "--retry-base",
        "0.2",
        # finished tasks beyond this leave memory (read back from the log): small
        # enough that the steady state is reached within the warm-up even in the
        # quick run, so a slope after it is a leak, not the retention window filling
        "--retain-finished",
        "1000",
    ]
    hub = Hub(str(d / f"{tag}.db"), d, *flags).start()
    agents: Proc | None = None
    try:
        if cfg.agents and cfg.rate:
            agents = Proc(
                [
                    PY,
                    "-m",
                    "bench.soak_agent",
                    "--url",
                    hub.ws_url,
                    "--token",
                    ADMIN_TOKEN,
                    "--max-seconds",
                    str(int(cfg.seconds + 120)),
                ],
                d / f"{tag}-agents.log",
            )
            wait_until(
                lambda: _get(hub, "/api/hive/status")["connected_agents"] >= 4, 60, what="4 soak agents"
            )
        if cfg.prefill_tasks:
            _prefill(hub, cfg)
        out = uvloop.run(_drive(hub, cfg))
        status = _get(hub, "/api/hive/status")
        agents_end = _get(hub, "/api/agents")
    finally:
        if agents is not None:
            agents.stop(timeout=15)
        hub.stop()
    run: Run = out["run"]
    m = status.get("metrics", {})
    res: dict[str, Any] = {
        "config": {k: v for k, v in cfg.__dict__.items()},
        "wall_s": out["wall_s"],
        **analyse(out["samples"], cfg),
        "tasks_submitted": run.submitted,
        "tasks_completed": m.get("completed_tasks"),
        "tasks_failed": m.get("failed_tasks"),
        "tasks_unfinished": sum(
            int(m.get(k) or 0) for k in ("pending_tasks", "assigned_tasks", "running_tasks")
        ),
        "completed_seen_by_subscriber": len(run.completed_seen),
        "log_events": status.get("published_sequence"),
        "submit_errors": run.submit_errors,
        "reader_latency": run.reader_lat.summary(),
        "reader_errors": run.reader_errors,
        "subscriber_messages": run.sub_messages,
        "subscriber_reconnects": run.sub_reconnects,
        "hostile": {k: v.to_json() for k, v in run.kinds.items()},
        "hostile_cut_offs": sum(v.cut_offs for v in run.kinds.values()),
        "job_errors": out["job_errors"],
        "agents_end": [
            {"id": a.get("id"), "status": a.get("status"), "capabilities": a.get("capabilities")}
            for a in (agents_end.get("agents", []) if isinstance(agents_end, dict) else agents_end)
        ],
        "samples": out["samples"],
    }
    return res


def run(mode: str) -> dict[str, Any]:
    cfg = config(mode)
    with workdir("soak") as d:
        return soak(cfg, d)


def breakdown(seconds: float, prefill: int = 200) -> dict[str, Any]:
    """Each hostile kind alone on a fresh hub (plus a control with none), no other
    load, ``prefill`` tasks of 8 KiB input in the state: RSS growth per kind."""
    base = config("full")
    rows = []
    with workdir("soak-breakdown") as d:
        for kind in ["none", *KINDS]:
            cfg = Config(
                seconds=seconds,
                warmup=min(10.0, seconds / 4),
                rate=0,
                sample_s=2.0,
                agents=False,
                subscribers=False,
                prefill_tasks=prefill,
                hostile={} if kind == "none" else {kind: base.hostile[kind]},
            )
            print(f"[soak] breakdown: {kind} for {seconds:g} s ...", file=sys.stderr, flush=True)
            r = soak(cfg, d, tag=f"bd-{kind}")
            h = r["hostile"].get(kind, {})
            rows.append(
                {
                    "kind": kind,
                    "clients": h.get("clients", 0),
                    "rss_start_mib": r["rss_start_mib"],
                    "rss_end_mib": r["rss_end_mib"],
                    "rss_max_mib": r["rss_max_mib"],
                    "growth_mib": round(r["rss_end_mib"] - r["rss_start_mib"], 1),
                    "slope_mib_per_min": r["rss_slope_second_half_mib_per_min"],
                    "hub_cpu_avg_pct": r["hub_cpu_avg_pct"],
                    "hub_fds_max": r["hub_fds_max"],
                    "connects": h.get("connects"),
                    "cut_offs": h.get("cut_offs"),
                    "refused": h.get("refused"),
                    "sent_frames": h.get("sent_frames"),
                    "responses": h.get("responses"),
                }
            )
    return {"seconds": seconds, "prefill_tasks": prefill, "rows": rows}


def breakdown_markdown(b: dict[str, Any]) -> str:
    out = [
        "| hostile kind (clients) | hub RSS start -> end (max), MiB | growth, MiB | slope, MiB/min | hub CPU avg | connects / cut-offs / refused |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in b["rows"]:
        out.append(
            f"| {r['kind']} ({r['clients']}) | {r['rss_start_mib']} -> {r['rss_end_mib']} ({r['rss_max_mib']}) | "
            f"{r['growth_mib']} | {r['slope_mib_per_min']} | {r['hub_cpu_avg_pct']} % | "
            f"{r['connects']} / {r['cut_offs']} / {r['refused']} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--mode", choices=["smoke", "quick", "full"], default="full", help="the sizes of `python -m bench`"
    )
    ap.add_argument("--seconds", type=float, help="duration (default: the mode's)")
    ap.add_argument("--rate", type=float, help="tasks/s from the producer (default: the mode's)")
    ap.add_argument(
        "--hostile", help="comma-separated hostile kinds to run (default: all): " + ", ".join(KINDS)
    )
    ap.add_argument(
        "--breakdown", action="store_true", help="each hostile kind alone for --seconds (default 60)"
    )
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.common import raise_nofile

    raise_nofile()
    if a.breakdown:
        res = breakdown(a.seconds or 60.0)
        print(breakdown_markdown(res))
    else:
        cfg = config(a.mode)
        if a.seconds:
            cfg.seconds = a.seconds
            cfg.warmup = a.seconds * WARMUP_FRACTION
        if a.rate is not None:
            cfg.rate = a.rate
        if a.hostile is not None:
            kinds = [k.strip() for k in a.hostile.split(",") if k.strip()]
            cfg.hostile = {k: cfg.hostile.get(k, 1) for k in kinds}
        with workdir("soak") as d:
            res = soak(cfg, d)
        print(json.dumps({k: v for k, v in res.items() if k != "samples"}, indent=2, default=str))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
