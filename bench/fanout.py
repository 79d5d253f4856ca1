"""Fan-out: 100 subscribers on /ws of a real hub process, fed by the hub's real stream.

Setup: a hub subprocess (no agents), ``--conns`` subscribers spread over
``--procs`` client processes (``bench.fanout_client``: uvloop + the fast
receiver), all on plain ``/ws`` (live events, no filter).

Events go through the normal path: the producer (this process) POSTs
``/api/tasks/batch``; every task becomes one ``task_created`` event that the
hub handles, commits to its SQLite log and fans out. The task description
carries a marker with the producer's send time (``bench.events_template``),
so each receive yields a send-to-receive latency on one machine clock.

Phases, each measured from the clients' own receive times:

* warm-up (``w``): 1 s at the steady rate, not reported;
* steady (``s``): ``rate`` events/s for ``seconds``, sent in ticks of
  ``tick_ms`` (1,000/s in 5 ms ticks = 5 events per tick);
* burst (``b``): ``burst`` events as fast as the producer can get them in
  (batches of 200, 8 requests in flight).

The same hub measurement is repeated with subscribers that offer
permessage-deflate as browsers do (``--deflate``: the bench's ~1 KB events are
over the hub's ``DEFLATE_MIN`` and arrive compressed; the clients inflate them):
``cpu_per_delivery_deflate_vs_plain`` is the hub's CPU per delivery to them over
its CPU per delivery to plain subscribers (target <= 1.5: an event is compressed
once for all of them).

Baseline in the same run, measured first: ``bench.bare_server`` -- the same
clients, the same bytes (a real ``task_created`` envelope stamped with the same
marker), the same rate and ticks, but the events are made inside the server
and written with ``send_frame`` to every socket in a loop. Its burst figure is
also the clients' capacity: the hub's figures are meaningful only below it.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import HUB_BENCH_FLAGS, PY, Histogram, Hub, Proc, free_port, ratio, wait_until, workdir
from bench.common import _preexec_nofile as preexec_nofile
from bench.events_template import marker

TICK_MS = 5.0


class Clients:
    """``procs`` subscriber processes holding ``conns`` connections between them."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[Any] = []

    async def start(
        self,
        port: int,
        path: str,
        conns: int,
        procs: int,
        d: Path,
        timeout: float = 120,
        extra: tuple[str, ...] = (),
        module: str = "bench.fanout_client",
    ) -> float:
        """Start ``procs`` more processes holding ``conns`` connections between them;
        returns the seconds until all were open. ``module``: the client program (one
        that speaks ``bench.fanout_client``'s stdin protocol)."""
        per = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
        t0 = time.monotonic()
        new = []
        for n in per:
            if n == 0:
                continue
            log = open(d / f"client-{port}-{len(self.procs)}.log", "ab")
            self.logs.append(log)
            p = await asyncio.create_subprocess_exec(
                PY,
                "-m",
                module,
                "--port",
                str(port),
                "--path",
                path,
                "--conns",
                str(n),
                *extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                preexec_fn=preexec_nofile,
                limit=2**26,
            )
            self.procs.append(p)
            new.append(p)
        for p in new:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), timeout)
            if not line.startswith(b"ready"):
                raise RuntimeError(f"subscriber process failed to connect: {line!r} (see {d})")
        return time.monotonic() - t0

    async def cmd(self, word: str, timeout: float = 60) -> list[dict[str, Any]]:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(word.encode() + b"\n")
            await p.stdin.drain()
        out = []
        for p in self.procs:
            assert p.stdout is not None
            line = await asyncio.wait_for(p.stdout.readline(), timeout)
            out.append(json.loads(line))
        return out

    async def count(self, phase: str) -> int:
        return sum(r["phases"].get(phase, {}).get("count", 0) for r in await self.cmd("report"))

    async def wait_delivered(self, phase: str, expect: int, timeout: float, stall: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = await self.count(phase)
            if n >= expect:
                return n
            if n != last:
                last, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > stall:
                return n
            await asyncio.sleep(0.1)
        return await self.count(phase)

    async def stop(self) -> None:
        for p in self.procs:
            if p.returncode is None and p.stdin is not None:
                try:
                    p.stdin.write(b"exit\n")
                    await p.stdin.drain()
                except (ConnectionError, RuntimeError):
                    pass
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 10)
            except TimeoutError:
                p.kill()
                await p.wait()
        for log in self.logs:
            log.close()
        self.procs, self.logs = [], []


# ------------------------------------------------------------------ producers


async def produce_bare(session: Any, port: int, phase: str, rate: float, count: int) -> dict[str, Any]:
    async with session.post(
        f"http://127.0.0.1:{port}/broadcast",
        json={"rate": rate, "count": count, "tick_ms": TICK_MS, "phase": phase},
    ) as r:
        return dict(await r.json())


async def produce_hub(
    session: Any,
    url: str,
    phase: str,
    rate: float,
    count: int,
    burst_batch: int = 200,
    burst_inflight: int = 8,
) -> dict[str, Any]:
    inflight: set[asyncio.Task[None]] = set()
    errors: list[str] = []
    tick = TICK_MS / 1000

    async def post(tasks: list[dict[str, Any]]) -> None:
        try:
            async with session.post(url + "/api/tasks/batch", json={"tasks": tasks}) as r:
                if r.status != 201:
                    errors.append(f"{r.status}: {(await r.text())[:200]}")
                else:
                    await r.read()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(repr(exc))

    sent, k, max_inflight = 0, 0, 0
    t0 = time.monotonic()
    while sent < count:
        k += 1
        due = min(count, int(rate * k * tick)) if rate > 0 else min(count, sent + burst_batch)
        if due > sent:
            now = time.time()
            tasks = [
                {"description": marker(phase, i, now), "type": "bench", "max_retries": 0}
                for i in range(sent, due)
            ]
            sent = due
            t = asyncio.create_task(post(tasks))
            inflight.add(t)
            t.add_done_callback(inflight.discard)
            max_inflight = max(max_inflight, len(inflight))
        if rate > 0:
            await asyncio.sleep(max(0.0, t0 + k * tick - time.monotonic()))
        else:
            while len(inflight) >= burst_inflight:
                await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
    if inflight:
        await asyncio.wait(inflight, timeout=120)
    return {
        "sent": sent,
        "seconds": round(time.monotonic() - t0, 3),
        "errors": len(errors),
        "first_errors": errors[:3],
        "max_inflight_requests": max_inflight,
    }


# ------------------------------------------------------------------ one server


def _phase_result(finals: list[dict[str, Any]], phase: str, t_start: float, expect: int) -> dict[str, Any]:
    h = Histogram()
    count, first, last = 0, None, 0.0
    for f in finals:
        p = f["phases"].get(phase)
        if not p:
            continue
        count += p["count"]
        first = p["first"] if first is None else min(first, p["first"])
        last = max(last, p["last"])
        h.merge(p["hist"])
    span = (last - t_start) if count else None
    return {
        "expected_deliveries": expect,
        "deliveries": count,
        "delivered_fraction": round(count / expect, 4) if expect else None,
        "seconds": round(span, 3) if span else None,
        "deliveries_per_s": round(count / span, 1) if span else None,
        "latency": h.summary(),
        "negative_latencies": h.neg,
    }


async def measure(
    kind: str,
    cfg: dict[str, Any],
    d: Path,
    *,
    slow: bool = False,
    hub_flags: tuple[str, ...] = (),
    deflate: bool = False,
) -> dict[str, Any]:
    """``slow``: also hold one /ws subscriber that never reads (a tiny receive
    buffer), to see what it costs the others (bench/slowsub.py). ``deflate``: the
    subscribers offer permessage-deflate."""
    import socket

    import aiohttp

    conns, procs, rate = cfg["conns"], cfg["procs"], cfg["rate"]
    steady_n = int(rate * cfg["seconds"])
    warm_n = int(rate * cfg["warmup"])
    clients = Clients()
    hub: Hub | None = None
    bare: Proc | None = None
    out: dict[str, Any] = {}
    try:
        if kind == "hub":
            hub = Hub(
                str(d / "fanout.db"),
                d,
                *HUB_BENCH_FLAGS,
                "--max-ws-per-client",
                "10000",
                "--max-connections-per-address",
                "0",
                *hub_flags,
            )
            await asyncio.to_thread(hub.start)
            port, pid, path = hub.port, hub.pid, "/ws"
        else:
            port = free_port()
            bare = Proc([PY, "-m", "bench.bare_server", "--port", str(port)], d / "bare-fanout.log")
            await asyncio.to_thread(wait_until, lambda: _http_ok(port), 60, 0.05, "bare server")
            port, pid, path = port, bare.pid, "/ws"
        extra = ("--deflate",) if deflate else ()
        out["connect_s"] = round(await clients.start(port, path, conns, procs, d, extra=extra), 3)
        slow_sock = None
        if slow:
            slow_sock = socket.socket()
            slow_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow_sock.connect(("127.0.0.1", port))
            slow_sock.sendall(
                (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
        server = psutil.Process(pid)
        client_ps = [psutil.Process(p.pid) for p in clients.procs]

        def cpu() -> tuple[float, float, float]:
            st = server.cpu_times()
            ct = sum(c.cpu_times().user + c.cpu_times().system for c in client_ps)
            return st.user + st.system, ct, time.monotonic()

        def pct(a: tuple[float, float, float], b: tuple[float, float, float]) -> dict[str, float]:
            return {
                "server": round(100 * (b[0] - a[0]) / (b[2] - a[2]), 1),
                "clients": round(100 * (b[1] - a[1]) / (b[2] - a[2]), 1),
                "server_cpu_s": round(b[0] - a[0], 3),
            }

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:

            async def produce(phase: str, n: int, r: float) -> dict[str, Any]:
                if kind == "hub":
                    assert hub is not None
                    return await produce_hub(session, hub.url, phase, r, n)
                return await produce_bare(session, port, phase, r, n)

            if warm_n:
                await produce("w", warm_n, rate)
                await clients.wait_delivered("w", warm_n * conns, 30)
            # steady
            c0 = cpu()
            t_s = time.time()
            out["steady_producer"] = await produce("s", steady_n, rate)
            await clients.wait_delivered("s", steady_n * conns, 30 + cfg["seconds"])
            out["cpu_steady_pct"] = pct(c0, cpu())
            # burst
            c0 = cpu()
            t_b = time.time()
            out["burst_producer"] = await produce("b", cfg["burst"], 0)
            await clients.wait_delivered("b", cfg["burst"] * conns, 120, stall=2.0)
            out["cpu_burst_pct"] = pct(c0, cpu())
            finals = await clients.cmd("final")
        out["steady"] = _phase_result(finals, "s", t_s, steady_n * conns)
        out["burst"] = _phase_result(finals, "b", t_b, cfg["burst"] * conns)
        for ph, key in (("steady", "cpu_steady_pct"), ("burst", "cpu_burst_pct")):
            n = out[ph]["deliveries"]
            # server CPU per delivery: robust to other load on the machine, unlike rates
            out[ph]["server_cpu_us_per_delivery"] = (
                round(out[key]["server_cpu_s"] / n * 1e6, 3) if n else None
            )
        out["burst"]["events_per_s"] = (
            round(cfg["burst"] / out["burst"]["seconds"], 1) if out["burst"]["seconds"] else None
        )
        out["subscribers_open_at_end"] = sum(f["open"] for f in finals)
        out["close_codes"] = {}
        for f in finals:
            for c, n in f["close_codes"].items():
                out["close_codes"][c] = out["close_codes"].get(c, 0) + n
        total_msgs = sum(f["messages"] for f in finals)
        out["mean_frame_bytes"] = (
            round(sum(f["bytes"] for f in finals) / total_msgs, 1) if total_msgs else None
        )
        out["server_rss_mib"] = round(server.memory_info().rss / 2**20, 1)
        if hub is not None:
            out["hub_subscribers_at_end"] = (await asyncio.to_thread(hub.get, "/api/hive/status"))[
                "subscribers"
            ]
        if slow_sock is not None:
            # now read what the slow one was sent: it must end with the 1013 close
            slow_sock.settimeout(5)
            data = b""
            try:
                while True:
                    chunk = slow_sock.recv(1 << 20)
                    if not chunk:
                        break
                    data += chunk
                    if b"resume with since=" in data[-256:]:
                        break
            except OSError:
                pass
            slow_sock.close()
            i = data.rfind(b"slow consumer: resume with since=")
            out["slow_cut_off"] = i >= 0
            out["slow_close_reason"] = data[i : i + 60].decode(errors="replace") if i >= 0 else None
    finally:
        await clients.stop()
        if hub is not None:
            hub.stop()
        if bare is not None:
            bare.stop()
    return out


def _http_ok(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
        return bool(r.status == 200)


def run(mode: str) -> dict[str, Any]:
    import uvloop

    cfg = {
        "smoke": {"conns": 4, "procs": 2, "rate": 200, "seconds": 0.5, "warmup": 0.0, "burst": 200},
        "quick": {"conns": 100, "procs": 2, "rate": 1000, "seconds": 3.0, "warmup": 1.0, "burst": 5_000},
    }.get(mode, {"conns": 100, "procs": 2, "rate": 1000, "seconds": 10.0, "warmup": 1.0, "burst": 20_000})
    with workdir("fanout") as d:
        bare = uvloop.run(measure("bare", cfg, d))
        hub = uvloop.run(measure("hub", cfg, d))
        deflate = uvloop.run(measure("hub", cfg, d, deflate=True))
    hs, bs = hub["steady"], bare["steady"]
    r_deflate = ratio(deflate["steady"]["server_cpu_us_per_delivery"], hs["server_cpu_us_per_delivery"])
    dps, p99 = hs["deliveries_per_s"], hs["latency"]["p99_ms"]
    r_steady = ratio(dps, bs["deliveries_per_s"])
    return {
        "config": {**cfg, "tick_ms": TICK_MS},
        "client_capacity_deliveries_per_s": bare["burst"]["deliveries_per_s"],
        "bare": bare,
        "hub": hub,
        "deliveries_per_s": dps,
        "p50_ms": hs["latency"]["p50_ms"],
        "p99_ms": p99,
        "baseline_deliveries_per_s": bs["deliveries_per_s"],
        "baseline_p99_ms": bs["latency"]["p99_ms"],
        "ratio_vs_bare": r_steady,
        "burst_deliveries_per_s": hub["burst"]["deliveries_per_s"],
        "baseline_burst_deliveries_per_s": bare["burst"]["deliveries_per_s"],
        "burst_ratio_vs_bare": ratio(hub["burst"]["deliveries_per_s"], bare["burst"]["deliveries_per_s"]),
        "hub_deflate": deflate,
        "cpu_per_delivery_deflate_vs_plain": r_deflate,
        "burst_cpu_per_delivery_deflate_vs_plain": ratio(
            deflate["burst"]["server_cpu_us_per_delivery"], hub["burst"]["server_cpu_us_per_delivery"]
        ),
        "targets": {
            "deliveries_per_s": 100_000,
            "p99_ms": 5.0,
            "ratio_vs_bare": 0.8,
            "cpu_per_delivery_deflate_vs_plain": 1.5,
        },
        "met": {
            "cpu_per_delivery_deflate_vs_plain": bool(
                r_deflate and r_deflate <= 1.5 and deflate["steady"]["delivered_fraction"] == 1.0
            ),
            "deliveries_per_s": bool(dps and dps >= 0.98 * 100_000 and hs["delivered_fraction"] == 1.0),
            "p99_ms": bool(p99 is not None and p99 <= 5.0),
            "ratio_vs_bare": bool(r_steady and r_steady >= 0.8),
        },
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick"), indent=2))
