"""Memory per finished task, with and without retention (``HiveConfig.retain_finished``
and ``HiveConfig.remember_evicted``).

The I/O-free core alone, in this one process, measured with ``tracemalloc``
(exact bytes the Python heap holds, not RSS, so the two runs do not disturb
each other). Each run drives a fresh :class:`Hive` through ``handle`` exactly
as the service does: one agent; per task a ``SubmitTask`` (assigned at once)
and a ``CompleteTask`` with a small result; the returned events are dropped
(the service hands them to the store). A ``Tick`` every 1,000 tasks drains
the timeout heaps, as the hub's ticker does.

1. ``kept``: ``retain_finished`` larger than the run: every finished task stays.
   Growth per finished task = heap growth / tasks.
2. ``retained``: ``retain_finished = 10,000`` (the default) and an evicted
   index larger than the run (``remember_evicted``). The heap is measured when
   10,000 tasks have finished and again at the end; the growth between,
   divided by the tasks finished in between, is what each further finished task
   costs once retention is full, until the index reaches its bound: its entry
   in the evicted index (``Hive.evicted``, id -> final status, and its place in
   the eviction order), plus whatever else the core keeps per completion.
   The evicted index alone is also sized directly (``sys.getsizeof`` of the
   dict, the order deque and the id strings); times ``remember_evicted`` it is
   the most the index ever holds.
3. ``bounded``: both bounds inside the run (``retain_finished`` as above and
   ``remember_evicted`` equal to it). Measured from the moment both are full
   to the end: what a finished task costs a hub that has run for weeks (the
   index forgets its oldest ids, which the hub then reads from the log).

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
        submit = C.SubmitTask(spec=spec)
        # Once the core has forgotten ids, a client-chosen id is checked against the
        # log: the service reads the store (one indexed query); a fresh uuid4 is in no
        # log, so the answer is "none" without one here.
        hive.handle(submit, t, facts={i: None for i in hive.unknown_task_ids(submit)})
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


def _hive(retain: int, remember: int) -> Hive:
    # the agent is heard from with every report (the ticks drain the liveness heap);
    # no learning cycles (they take the agent out of the pool mid-run; outcomes are
    # still recorded)
    config = HiveConfig(
        retain_finished=retain, remember_evicted=remember, learning=LearningConfig(enabled=False)
    )
    return Hive(config)


def _index_bytes(hive: Hive) -> int:
    """The evicted index as it sits in memory: the dict, the order deque, the ids."""
    return (
        sys.getsizeof(hive.evicted)
        + sys.getsizeof(hive._evicted_order)
        + sum(sys.getsizeof(k) for k in hive.evicted)
    )


def _measure(n: int, retain: int, remember: int) -> dict[str, Any]:
    """One run; the heap is marked when ``retain`` tasks have finished (retention
    full) and when ``retain + remember`` have (the evicted index full too)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    marks: dict[str, int] = {}

    def mark(done: int) -> None:
        for name, at in (("at_retain", retain), ("at_bounds", retain + remember)):
            if done == at:
                gc.collect()
                marks[name] = tracemalloc.get_traced_memory()[0]

    hive = _hive(retain, remember)
    wall = _drive(hive, n, mark)
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    index = _index_bytes(hive)
    out: dict[str, Any] = {
        "tasks": n,
        "retain_finished": retain,
        "remember_evicted": remember,
        "in_memory_tasks": len(hive.tasks),
        "evicted": len(hive.evicted),
        "forgotten": hive.forgotten,
        "heap_growth_bytes": end - base,
        "bytes_per_finished_task": round((end - base) / n, 1),
        "evicted_index_bytes": index,
        "evicted_index_bytes_per_task": round(index / len(hive.evicted), 1) if hive.evicted else None,
        "wall_s_with_tracemalloc": round(wall, 2),
    }
    if "at_retain" in marks and n > retain:
        out["bytes_per_task_beyond_retention"] = round((end - marks["at_retain"]) / (n - retain), 1)
    if "at_bounds" in marks and n > retain + remember:
        # (constant, not linear: the absolute growth is the same for 16,000 and 56,000
        # tasks beyond the bounds, about 55 KB of dict-table slack at 2,000 + 2,000)
        out["heap_growth_beyond_both_bounds_bytes"] = end - marks["at_bounds"]
        out["bytes_per_task_beyond_both_bounds"] = round(
            (end - marks["at_bounds"]) / (n - retain - remember), 1
        )
    del hive
    gc.collect()
    return out


def run(mode: str) -> dict[str, Any]:
    n = SIZES[mode]
    retain = RETAIN[mode]
    kept = _measure(n, n + 1, n + 1)
    retained = _measure(n, retain, n + 1)
    bounded = _measure(n, retain, retain)
    per_kept = kept["bytes_per_finished_task"]
    per_retained = retained["bytes_per_task_beyond_retention"]
    mib = 1 << 20
    default_bound = HiveConfig().remember_evicted
    return {
        "method": "tracemalloc, one process, core only (handle: submit + complete per task)",
        "kept": kept,
        "retained": retained,
        "bounded": bounded,
        "mib_per_million_finished_without_retention": round(per_kept * 1e6 / mib, 1),
        # growth while the evicted index fills up (it stops at remember_evicted)
        "mib_per_million_finished_with_retention": round(per_retained * 1e6 / mib, 1),
        "evicted_index_mib_per_million": round(retained["evicted_index_bytes_per_task"] * 1e6 / mib, 1),
        # the most the evicted index ever holds, at the default bound
        "remember_evicted_default": default_bound,
        "evicted_index_mib_at_default_bound": round(
            retained["evicted_index_bytes_per_task"] * default_bound / mib, 1
        ),
        # growth once both bounds are full: what weeks of running cost
        "bytes_per_task_beyond_both_bounds": bounded["bytes_per_task_beyond_both_bounds"],
        "mib_per_million_finished_beyond_both_bounds": round(
            bounded["bytes_per_task_beyond_both_bounds"] * 1e6 / mib, 1
        ),
        # what retention holds at most, at its size: the retained finished tasks
        "mib_held_by_retained_tasks": round(per_kept * retain / mib, 1),
    }
