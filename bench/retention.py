"""Memory per finished task, with and without retention (``HiveConfig.retain_finished``).

The I/O-free core alone, in this one process, measured with ``tracemalloc``
(exact bytes the Python heap holds, not RSS, so the two runs do not disturb
each other). Each run drives a fresh :class:`Hive` through ``handle`` exactly
as the service does: one agent; per task a ``SubmitTask`` (assigned at once)
and a ``CompleteTask`` with a small result; the returned events are dropped
(the service hands them to the store). A ``Tick`` every 1,000 tasks drains
the timeout heaps, as the hub's ticker does.

1. ``kept``: ``retain_finished`` larger than the run: every finished task stays.
   Growth per finished task = heap growth / tasks.
2. ``retained``: ``retain_finished = 10,000`` (the default). The heap is
   measured when 10,000 tasks have finished and again at the end; the growth
   between, divided by the tasks finished in between, is what each further
   finished task costs once retention is full: its entry in the evicted index
   (``Hive.evicted``, id -> final status), plus whatever else the core keeps
   per completion (learning outcomes, day counters).
   The evicted index alone is also sized directly (``sys.getsizeof`` of the
   dict and its id strings).

"per million" figures are the per-task bytes x 1,000,000 (the runs are
smaller, to fit a shared machine); the growth is linear in the task count.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hivehub.core import commands as C
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.learning import LearningConfig
from hivehub.core.model import Capability, RequiredCapability

SIZES = {"smoke": 3_000, "quick": 40_000, "full": 200_000}
RETAIN = {"smoke": 1_000, "quick": 10_000, "full": 10_000}


def _drive(hive: Hive, n: int, on_finished: Any = None) -> float:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(milliseconds=10)  # 3,000 tasks span a minute: heartbeat expiries come due
    hive.handle(
        C.RegisterAgent(
            spec=C.AgentSpec(
                id="w", name="w", capabilities=[Capability("compute", 0.9)], max_concurrent_tasks=1
            )
        ),
        t,
    )
    t0 = time.perf_counter()
    for i in range(n):
        t += step
        task_id = str(uuid.uuid4())
        spec = C.TaskSpec(
            id=task_id,
            description=f"bench task {i}",
            type="noop",
            required_capabilities=[RequiredCapability("compute", 0.5)],
            input={"n": i, "payload": "x" * 64},
            timeout_seconds=1.0,
        )
        hive.handle(C.SubmitTask(spec=spec), t)
        hive.handle(
            C.CompleteTask(task_id=task_id, agent_id="w", attempt=1, result={"ok": True, "value": i}),
            t + step,
        )
        if (i + 1) % 1000 == 0:
            # the hub ticks: deadline entries of tasks long finished leave the heaps
            hive.handle(C.Tick(), t + step)
        if on_finished is not None:
            on_finished(i + 1)
    return time.perf_counter() - t0


def _hive(retain: int) -> Hive:
    # the agent is heard from with every report (the ticks drain the liveness heap);
    # no learning cycles (they take the agent out of the pool mid-run; outcomes are
    # still recorded)
    return Hive(HiveConfig(retain_finished=retain, learning=LearningConfig(enabled=False)))


def _measure(n: int, retain: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    marks: dict[str, int] = {}

    def mark(done: int) -> None:
        if done == retain:
            gc.collect()
            marks["at_retain"] = tracemalloc.get_traced_memory()[0]

    hive = _hive(retain)
    wall = _drive(hive, n, mark)
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    index = sys.getsizeof(hive.evicted) + sum(sys.getsizeof(k) for k in hive.evicted)
    out: dict[str, Any] = {
        "tasks": n,
        "retain_finished": retain,
        "in_memory_tasks": len(hive.tasks),
        "evicted": len(hive.evicted),
        "heap_growth_bytes": end - base,
        "bytes_per_finished_task": round((end - base) / n, 1),
        "evicted_index_bytes": index,
        "evicted_index_bytes_per_task": round(index / len(hive.evicted), 1) if hive.evicted else None,
        "wall_s_with_tracemalloc": round(wall, 2),
    }
    if "at_retain" in marks and n > retain:
        out["bytes_per_task_beyond_retention"] = round((end - marks["at_retain"]) / (n - retain), 1)
    del hive
    gc.collect()
    return out


def run(mode: str) -> dict[str, Any]:
    n = SIZES[mode]
    retain = RETAIN[mode]
    kept = _measure(n, n + 1)
    retained = _measure(n, retain)
    per_kept = kept["bytes_per_finished_task"]
    per_retained = retained["bytes_per_task_beyond_retention"]
    mib = 1 << 20
    return {
        "method": "tracemalloc, one process, core only (handle: submit + complete per task)",
        "kept": kept,
        "retained": retained,
        "mib_per_million_finished_without_retention": round(per_kept * 1e6 / mib, 1),
        "mib_per_million_finished_with_retention": round(per_retained * 1e6 / mib, 1),
        "evicted_index_mib_per_million": round(retained["evicted_index_bytes_per_task"] * 1e6 / mib, 1),
        # what retention holds at most, at its size: the retained finished tasks
        "mib_held_by_retained_tasks": round(per_kept * retain / mib, 1),
    }
