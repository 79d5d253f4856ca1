"""Replay: one subscriber resuming from sequence 0 over a large stored log.

1. Build the log fast but real: the core (``Hive``) runs in-process -- agents
   register, tasks are submitted, assigned, started, progress-reported and
   completed through ``Hive.handle`` -- and every event it emits is encoded with
   ``encode_event`` and written straight into a SQLite file with the store's own
   schema and migrations (``SQLiteEventStore._migrate``; each row indexed by its
   ``task_id`` and the history tables written with it, as the hub writes them:
   ``store.sqlite.write_history``), in large transactions. Every task is
   finished before the end, so the hub has nothing to time out on start.
2. Start the hub on that file: no snapshot yet, so it folds the whole log
   (timed: "full replay").
3. One client connects to ``/ws?since=0`` and counts frames until it has every
   event up to the hub's sequence at connect time (the last frame's
   ``sequence`` is checked). events/s = frames / (last frame - connect).
4. Stop the hub (SIGTERM): it writes a snapshot of its folded state at the head
   (``server/snapshots.py``; its size, encode and write times, and the longest of
   the transactions it was written in, are read from the hub's log). Start it again on the same file: it loads that snapshot and folds
   only what follows (timed: "from the snapshot"; the target is under 2 s), and
   once more on an empty log (timed: what a start costs with nothing to fold).
5. Baseline in the same run: ``bench.bare_server`` loads the same bodies into
   memory and sends them with ``send_frame`` as fast as it can (the hub's replay
   loop minus the store reads) to the same client.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, free_port, ratio, wait_until, workdir
from bench.wsclient import connect


def generate_log(path: Path, n_events: int) -> dict[str, Any]:
    from hivehub.core import commands as C
    from hivehub.core.events import encode_event
    from hivehub.core.hive import Hive
    from hivehub.core.model import Capability
    from hivehub.core.summary import history_of
    from hivehub.core.tasklog import task_id_of
    from hivehub.store.base import NewEvent
    from hivehub.store.sqlite import SQLiteEventStore, write_history

    t_start = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    SQLiteEventStore._migrate(db)
    hive = Hive()
    clock = [datetime.now(UTC) - timedelta(days=1)]

    def now() -> datetime:
        clock[0] += timedelta(microseconds=250)
        return clock[0]

    rows: list[NewEvent] = []
    total_bytes = 0
    types: dict[str, int] = {}

    def take(events: list[Any]) -> list[Any]:
        nonlocal total_bytes
        for e in events:
            body = encode_event(e)
            rows.append(NewEvent(e.sequence, e.type, body, task_id_of(e.data), *history_of(e)))
            total_bytes += len(body)
            types[e.type] = types.get(e.type, 0) + 1
        if len(rows) >= 20_000:
            flush()
        return events

    def flush() -> None:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO events(sequence, type, body, task_id) VALUES (?, ?, ?, ?)", [r[:4] for r in rows]
        )
        write_history(db, rows)  # as the hub's append does: it then has nothing to backfill
        db.execute("COMMIT")
        rows.clear()

    agents = []
    for i in range(8):
        ev = take(
            hive.handle(
                C.RegisterAgent(
                    id=f"reg-{i}",
                    spec=C.AgentSpec(
                        name=f"replay-agent-{i}",
                        capabilities=[Capability("data_processing", 0.8)],
                        max_concurrent_tasks=50,
                        metadata={"host": "bench"},
                    ),
                ),
                now(),
            )
        )
        agents.append(ev[0].data.agent.id)
    n = 0
    while hive.sequence < n_events:
        held: list[tuple[str, str, int]] = []
        for _ in range(100):
            spec = C.TaskSpec(
                description=f"replay bench task {n}",
                type="data_processing",
                input={"records": [n, n + 1, n + 2]},
                metadata={"batch": n // 100},
            )
            for e in take(hive.handle(C.SubmitTask(id=f"req-{n}", spec=spec, created_by="bench"), now())):
                if e.type == "task_assigned":
                    held.append((e.data.task_id, e.data.agent_id, e.data.attempt_number))
            n += 1
        for tid, aid, att in held:
            take(hive.handle(C.StartTask(id=f"s-{tid}", task_id=tid, agent_id=aid, attempt=att), now()))
            take(
                hive.handle(
                    C.ReportProgress(
                        id=f"p-{tid}",
                        task_id=tid,
                        agent_id=aid,
                        attempt=att,
                        progress=0.5,
                        current_step="halfway",
                    ),
                    now(),
                )
            )
            take(
                hive.handle(
                    C.CompleteTask(
                        id=f"c-{tid}", task_id=tid, agent_id=aid, attempt=att, result={"rows": 3}, quality=0.9
                    ),
                    now(),
                )
            )
    if rows:
        flush()
    db.close()
    return {
        "events": hive.sequence,
        "tasks": n,
        "bytes": total_bytes,
        "mean_event_bytes": round(total_bytes / max(1, hive.sequence), 1),
        "types": types,
        "generate_s": round(time.perf_counter() - t_start, 2),
    }


async def _read_all(port: int, path: str, expect: int, timeout: float) -> dict[str, Any]:
    last: list[bytes] = [b""]
    done = asyncio.get_running_loop().create_future()
    count = [0]
    first_at = [0.0]

    def on_message(payload: bytes) -> None:
        count[0] += 1
        if count[0] == 1:
            first_at[0] = time.perf_counter()
        if count[0] >= expect and not done.done():
            last[0] = payload
            done.set_result(time.perf_counter())

    t0 = time.perf_counter()
    proto = await connect("127.0.0.1", port, path, on_message)
    t_open = time.perf_counter()
    try:
        t_end = await asyncio.wait_for(done, timeout)
    except TimeoutError:
        proto.close()
        return {"received": count[0], "expected": expect, "timed_out": True}
    proto.close()
    seq = json.loads(last[0]).get("sequence")
    dt = t_end - t0  # from connect: handshake + every frame
    return {
        "received": count[0],
        "expected": expect,
        "last_sequence": seq,
        "seconds": round(dt, 3),
        "events_per_s": round(count[0] / dt, 1),
        "mb_per_s": round(proto.bytes / dt / 1e6, 1),
        "first_frame_ms": round((first_at[0] - t0) * 1000, 2),
        "handshake_ms": round((t_open - t0) * 1000, 2),
        "timed_out": False,
    }


def read_all(port: int, path: str, expect: int, timeout: float, server_pid: int) -> dict[str, Any]:
    """Read everything; also the server's CPU time over the read (robust to other
    load on the machine, unlike wall time)."""
    import psutil
    import uvloop

    p = psutil.Process(server_pid)
    c0 = p.cpu_times()
    r = uvloop.run(_read_all(port, path, expect, timeout))
    c1 = p.cpu_times()
    cpu = (c1.user + c1.system) - (c0.user + c0.system)
    r["server_cpu_s"] = round(cpu, 3)
    r["server_cpu_us_per_event"] = round(cpu / max(1, r["received"]) * 1e6, 2)
    return r


def run(mode: str) -> dict[str, Any]:
    n = {"smoke": 2_000, "quick": 100_000}.get(mode, 1_000_000)
    timeout = 30 if mode == "smoke" else 180
    with workdir("replay") as d:
        db = d / "hive.db"
        gen = generate_log(db, n)
        flags = (*HUB_BENCH_FLAGS, "--log-level", "INFO")
        hub = Hub(str(db), d, *flags)
        t0 = time.perf_counter()
        hub.start(timeout=600)
        startup = time.perf_counter() - t0
        try:
            expect = int(hub.get("/api/hive/status")["published_sequence"])
            hub_r = read_all(hub.port, "/ws?since=0", expect, timeout, hub.pid)
        finally:
            hub.stop()
        full_log = (d / f"hub-{hub.port}.log").read_text(errors="replace")
        written = re.findall(
            r"snapshot at (\d+): (\d+) bytes, encoded in (\d+) ms, written in (\d+) ms", full_log
        )
        # SQLite writes a snapshot in pieces (store/sqlite_snapshots.py): the longest
        # transaction is how long an event commit could have waited for it
        stored = re.findall(r"stored in (\d+) pieces, the longest transaction ([\d.]+) ms", full_log)
        again = Hub(str(db), d, *flags)
        t0 = time.perf_counter()
        again.start(timeout=600)
        startup_snap = time.perf_counter() - t0
        again.stop()
        snap_log = (d / f"hub-{again.port}.log").read_text(errors="replace")
        # the same hub on an empty log: what starting costs with nothing to fold
        # (the interpreter, imports, the MCP and A2A mounts), measured in this run
        empty = Hub(str(d / "empty.db"), d, *flags)
        t0 = time.perf_counter()
        empty.start(timeout=120)
        startup_empty = time.perf_counter() - t0
        empty.stop()
        used = re.search(r"started from the snapshot at (\d+) \((\d+) bytes, (\d+) ms\)", snap_log)
        port = free_port()
        bare = Proc(
            [PY, "-m", "bench.bare_server", "--port", str(port), "--replay-db", str(db)], d / "bare.log"
        )
        try:

            def ready() -> int:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    return int(json.loads(r.read())["replay_events"])

            bare_events = wait_until(ready, 120, what="bare server")
            bare_r = read_all(port, "/replay", bare_events, timeout, bare.pid)
        finally:
            bare.stop()
    eps = hub_r.get("events_per_s")
    last = written[-1] if written else None
    return {
        "log": gen,
        "hub_startup_s": round(startup, 2),
        "hub_startup_snapshot_s": round(startup_snap, 2) if used else None,
        "hub_startup_empty_s": round(startup_empty, 2),
        "snapshot": {
            "sequence": int(last[0]) if last else None,
            "bytes": int(last[1]) if last else None,
            "encode_ms": int(last[2]) if last else None,
            "write_ms": int(last[3]) if last else None,
            "pieces": int(stored[-1][0]) if stored else None,
            "longest_transaction_ms": float(stored[-1][1]) if stored else None,
            "written": len(written),
            "started_from": int(used.group(1)) if used else None,
            "load_ms": int(used.group(3)) if used else None,
        },
        "hub": hub_r,
        "bare": bare_r,
        "events_per_s": eps,
        "baseline_events_per_s": bare_r.get("events_per_s"),
        "ratio_vs_bare": ratio(eps, bare_r.get("events_per_s")),
        "targets": {"events_per_s": 100_000, "hub_startup_snapshot_s": 2.0},
        "met": {
            "events_per_s": bool(eps and eps >= 100_000),
            "hub_startup_snapshot_s": bool(used and startup_snap < 2.0),
        },
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick"), indent=2))
