"""The task history on a large log: the first page of ``GET /api/history/tasks``.

1. **Build** a SQLite log of N tasks (1,000,000 in full mode) through the store
   API, as the hub writes it: a real :class:`Hive` decides every event (one agent;
   per task a ``SubmitTask``, assigned at once, then a ``CompleteTask``, or a
   ``FailTask`` for one task in 10); each event is encoded once and appended with
   its history change (``core.summary.history_of``), 20,000 events per batch.
   The tasks span 30 days of ``created_at`` (the clock passed to ``handle``), five
   types, three owners, descriptions that read like the demo's.
2. **Serve** it: the real hub (``python -m hivehub serve``) on that file, which
   replays the log at start.
3. **Measure** each query below ``ROUNDS`` times through the hub's REST endpoint
   (one HTTP client on loopback, keep-alive): the first page (50 tasks) with and
   without filters, text search, the second page by cursor, and the 24 h series.
   Reported: the median and the worst, in milliseconds; the target is a first page
   under 100 ms.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from hivehub.core import commands as C
from hivehub.core import events as ev
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.learning import LearningConfig
from hivehub.core.model import Capability, RequiredCapability, TaskError
from hivehub.core.summary import history_of
from hivehub.core.tasklog import task_id_of
from hivehub.store import open_store
from hivehub.store.base import NewEvent
from hivehub.store.sqlite import SQLiteEventStore

from .common import HUB_BENCH_FLAGS, Hub, workdir

SIZES = {"smoke": 5_000, "quick": 100_000, "full": 1_000_000}
ROUNDS = {"smoke": 3, "quick": 10, "full": 20}
TARGET_MS = 100.0
BATCH = 20_000
TYPES = ("compute", "summarize", "translate", "etl", "report")
OWNERS = ("operator:ci", "operator:alice", "admin:anonymous")
WORDS = ("Compute primes up to", "Summarize the report of", "Translate chapter", "Load the rows of", "Chart")


def build(path: str, n: int, days: float = 30) -> dict[str, Any]:
    """A log of ``n`` tasks over ``days`` at ``path`` (a SQLite file, or a
    ``postgresql://`` URL); returns what was built and how fast."""
    import asyncio

    return asyncio.run(_build(path, n, days))


def _templates(at: datetime) -> tuple[ev.Event, list[list[ev.Event]]]:
    """What a real :class:`Hive` logs for one agent and one task completed, one
    failed: the agent's ``agent_created`` and, per outcome, the task's own events
    (``task_created``, ``task_assigned``, ``task_started``, ``task_completed`` or
    ``task_failed``)."""
    hive = Hive(HiveConfig(learning=LearningConfig(enabled=False)))
    spec = C.AgentSpec(id="w", name="w", capabilities=[Capability("compute", 0.9)], max_concurrent_tasks=1)
    (agent,) = [e for e in hive.handle(C.RegisterAgent(spec=spec), at) if e.type == "agent_created"]
    keep = ("task_created", "task_assigned", "task_started", "task_completed", "task_failed")
    out = []
    for i, fail in enumerate((False, True)):
        task = C.TaskSpec(
            id=f"x{i}",
            description="x",
            type="x",
            required_capabilities=[RequiredCapability("compute", 0.5)],
            input={"n": 1},
            timeout_seconds=60.0,
            max_retries=0,
        )
        got = hive.handle(C.SubmitTask(spec=task, created_by="admin:anonymous"), at)
        err = TaskError("DISK_FULL", "no space left on device")
        cmd: C.Command = (
            C.FailTask(task_id=f"x{i}", agent_id="w", attempt=1, error=err, retryable=False)
            if fail
            else C.CompleteTask(task_id=f"x{i}", agent_id="w", attempt=1, result=1)
        )
        got += hive.handle(C.StartTask(task_id=f"x{i}", agent_id="w", attempt=1), at)
        got += hive.handle(cmd, at)
        out.append([e for e in got if e.type in keep])
    return agent, out


def _clone(e: ev.Event, seq: int, task_id: str, at: datetime, fields: dict[str, Any]) -> ev.Event:
    """``e`` for another task: its id, time and sequence (and ``fields`` of the task)."""
    d = e.data
    if isinstance(d, ev.TaskCreated):
        task = msgspec.structs.replace(d.task, id=task_id, created_at=at, updated_at=at, **fields)
        data: ev.EventData = msgspec.structs.replace(d, task=task, timestamp=at)
    else:
        data = msgspec.structs.replace(d, task_id=task_id, timestamp=at)  # type: ignore[call-arg]
    return ev.Event(e.type, data, at, str(uuid.uuid4()), seq)


async def _build(path: str, n: int, days: float = 30) -> dict[str, Any]:
    # The events are those a real Hive logs for a task (``_templates``) with each
    # task's own id, type, description, owner and times: deciding a million tasks
    # through ``handle`` would cost minutes, and the agents' own events
    # (``agent_status_changed``, ``agent_performance_updated``) touch no task row.
    sqlite = not path.startswith("postgresql://")
    store = SQLiteEventStore(path) if sqlite else open_store(path)
    await store.open()
    end = datetime.now(UTC)
    step = timedelta(days=days) / n
    t = end - timedelta(days=days)
    agent, (done, failed) = _templates(t)
    pending: list[NewEvent] = []
    t0 = time.perf_counter()
    events = 0
    # The store's checkpointer is a task of the event loop, and this loop never
    # waits: checkpoint by hand after each batch, or the WAL grows without bound.
    ck = sqlite3.connect(path, isolation_level=None) if sqlite else None

    async def flush() -> None:
        nonlocal events, pending
        await store.append(pending)
        if ck is not None:
            ck.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        events += len(pending)
        pending = []

    def add(e: ev.Event) -> None:
        pending.append(NewEvent(e.sequence, e.type, ev.encode_event(e), task_id_of(e.data), *history_of(e)))

    seq = 1
    add(msgspec.structs.replace(agent, sequence=seq))
    for i in range(n):
        t += step
        task_id = str(uuid.uuid4())
        k = i % len(TYPES)
        fields = {
            "description": f"{WORDS[k]} {i * 7 % 1_000_003:,}",
            "type": TYPES[k],
            "created_by": OWNERS[i % 3],
        }
        for j, e in enumerate(failed if i % 10 == 3 else done):
            seq += 1
            add(_clone(e, seq, task_id, t + step * j / 4, fields))
        if len(pending) >= BATCH:
            await flush()
    if pending:
        await flush()
    await store.close()  # (writes the history still held: part of the build)
    wall = time.perf_counter() - t0
    if ck is None:
        return {"tasks": n, "events": events, "build_s": round(wall, 1), "tasks_per_s": round(n / wall)}
    ck.close()
    size = sum(p.stat().st_size for p in Path(path).parent.glob(Path(path).name + "*"))
    return {
        "tasks": n,
        "events": events,
        "build_s": round(wall, 1),
        "tasks_per_s": round(n / wall),
        "db_mib": round(size / 2**20, 1),
    }


def _time_get(url: str, rounds: int) -> tuple[dict[str, Any], Any]:
    times, body = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as r:
            raw = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        body = raw
    import json

    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}, json.loads(
        body or b"null"
    )


def run(mode: str) -> dict[str, Any]:
    n, rounds = SIZES[mode], ROUNDS[mode]
    with workdir("history") as d:
        db = str(d / "history.db")
        built = build(db, n)
        hub = Hub(db, d, *HUB_BENCH_FLAGS)
        t0 = time.perf_counter()
        hub.start(timeout=1800)
        start_s = time.perf_counter() - t0
        try:
            base = hub.url + "/api/history/tasks?"
            queries = {
                "first page": {},
                "status=failed": {"status": "failed"},
                "status=completed,failed": {"status": "completed,failed"},
                "type=etl": {"type": "etl"},
                "owner=alice": {"owner": "alice"},
                "agent_id=w": {"agent_id": "w"},
                "q=primes up to 7": {"q": "primes up to 7"},
                "q=disk_full": {"q": "disk_full"},
                "from/to: one day": {
                    "from": str(time.time() - 3 * 86400),
                    "to": str(time.time() - 2 * 86400),
                },
                "type=etl&status=failed&q=rows": {"type": "etl", "status": "failed", "q": "rows"},
            }
            out: dict[str, Any] = {}
            for name, params in queries.items():
                stats, body = _time_get(base + urllib.parse.urlencode({**params, "limit": 50}), rounds)
                stats["tasks"] = len(body["tasks"])
                stats["total"] = body["total"]
                out[name] = stats
                if name == "first page":
                    cursor = body["next_cursor"]
            stats, body = _time_get(base + urllib.parse.urlencode({"limit": 50, "cursor": cursor}), rounds)
            stats["tasks"] = len(body["tasks"])
            out["second page (cursor)"] = stats
            series, body = _time_get(hub.url + "/api/history/series?window=86400", max(1, rounds // 4))
            series["buckets"] = len(body["t"])
            series["created_in_window"] = sum(body["created"])
        finally:
            hub.stop()
    worst_first = max(v["median_ms"] for k, v in out.items() if k != "second page (cursor)")
    return {
        "config": {"tasks": n, "rounds": rounds, "limit": 50, "target_ms": TARGET_MS},
        "build": built,
        "hub_start_s": round(start_s, 1),
        "pages": out,
        "series_24h": series,
        "first_page_ms": out["first page"]["median_ms"],
        "worst_first_page_ms": worst_first,
        "met": worst_first < TARGET_MS,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "smoke"), indent=2))
