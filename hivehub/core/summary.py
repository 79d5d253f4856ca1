"""The history tables, derived from the log: what each event changes in them. Pure.

The store keeps two tables beside the log, written in the same transaction as the
events that change them (so they are always at the committed sequence) and
rebuilt from the log when they are behind it (``EventStore.open``):

- the **task summary**: one row per task (:class:`TaskSummary`), keyed by the
  sequence of its ``task_created``; each later event of the task is a
  :class:`SummaryChange` (columns to set, counters to add), applied as an update;
- the **agent points**: one row per proficiency reading or performance report
  (:class:`AgentPoint`), for the agent page's charts.

:func:`history_of` computes both from the event object the service has just
decided (before it is encoded), so nothing is decoded twice; the backfill of an
old log decodes its events and calls the same function. :func:`apply_change` is
the rule every backend follows (the memory store calls it; the SQL stores
express it as one ``UPDATE``); ``tests/core/test_summary.py`` checks that a
summary folded with it agrees with ``tasklog.fold_task`` on every task of a
scenario covering every task event.

:func:`fold_series` turns summary rows into the chart series of
``GET /api/history/series`` (bucket counts, latency percentiles, tasks by state).

Times are unix seconds (floats); a naive ``datetime`` is taken as UTC.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import msgspec

from . import events as ev
from .model import TaskStatus
from .tasklog import status_after, task_id_of

__all__ = [
    "FINAL",
    "SERIES_STATES",
    "AgentPoint",
    "SeriesRow",
    "SummaryChange",
    "TaskSummary",
    "apply_change",
    "bucket_plan",
    "combine",
    "fold_series",
    "history_of",
    "percentile",
    "state_bucket",
    "unix",
]

TS = TaskStatus

#: statuses a task does not leave (except by a manual retry)
FINAL = frozenset({TS.COMPLETED.value, TS.FAILED.value, TS.CANCELLED.value})

#: the states of ``by_state`` (``awaiting_approval`` and ``assigned`` count as
#: pending, ``input_required`` as running: see :func:`fold_series`)
SERIES_STATES = ("pending", "running", "completed", "failed", "cancelled")


class TaskSummary(msgspec.Struct):
    """One task as the history lists it (a row of the summary table)."""

    id: str
    type: str
    description: str
    status: str
    priority: int
    owner: str
    created_at: float
    updated_at: float
    created_sequence: int
    #: the assigned agent, else the last one that held the task
    agent_id: str | None = None
    #: the start of the current (or last) attempt; cleared when the task is re-queued
    started_at: float | None = None
    #: when it completed, failed for good or was cancelled
    finished_at: float | None = None
    #: the last time it was re-queued after a failure, or retried by hand
    retried_at: float | None = None
    attempts: int = 0
    failures: int = 0
    error_code: str | None = None
    error_message: str | None = None
    #: ``execution_time_ms`` of the attempt that completed (or failed for good)
    latency_ms: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0


#: the columns a change may set, in table order (the SQL stores build their
#: statements from these names)
COLUMNS = tuple(TaskSummary.__struct_fields__)


class SummaryChange(NamedTuple):
    """What one event changes in its task's summary row: ``create`` (``task_created``:
    the whole row) or the columns in ``set``, then the counters added."""

    task_id: str
    create: TaskSummary | None = None
    set: dict[str, Any] = {}  # noqa: RUF012 (never mutated: each change builds its own)
    add_failures: int = 0
    add_tokens: int = 0
    add_cost: float = 0.0


class AgentPoint(NamedTuple):
    """One reading of an agent over time: a capability's proficiency (``capability``
    set) or a performance report (``capability`` ``None``: success rate, latency)."""

    agent_id: str
    sequence: int
    at: float
    capability: str | None
    proficiency: float | None = None
    success_rate: float | None = None
    latency_ms: float | None = None


def unix(at: datetime) -> float:
    """Unix seconds of ``at`` (a naive time is taken as UTC)."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def _owner(created_by: str | None) -> str:
    # the rule of Task.owner (core/model.py): the token part of ``role:token``
    if not created_by:
        return "anonymous"
    _, sep, name = created_by.partition(":")
    return name if sep and name else created_by


def history_of(event: ev.Event) -> tuple[SummaryChange | None, tuple[AgentPoint, ...]]:
    """What ``event`` (logged at ``event.sequence``) changes in the history tables."""
    d = event.data
    if isinstance(d, ev.TaskCreated):
        return _created(d, event.sequence), ()
    task_id = task_id_of(d)
    if task_id is not None:
        return _task_change(task_id, d), ()
    return None, _points(event)


def _created(d: ev.TaskCreated, sequence: int) -> SummaryChange:
    t = d.task
    at = unix(t.created_at)
    row = TaskSummary(
        id=t.id,
        type=t.type,
        description=t.description,
        status=str(t.status.value),
        priority=t.priority,
        owner=_owner(t.created_by),
        created_at=at,
        updated_at=unix(t.updated_at),
        created_sequence=sequence,
        agent_id=t.assigned_agent_id,
        attempts=t.attempt,
    )
    return SummaryChange(t.id, create=row)


def _task_change(task_id: str, d: ev.EventData) -> SummaryChange | None:
    at = unix(d.timestamp)
    s: dict[str, Any] = {}
    to = status_after(d)
    if to is not None:
        s["status"] = str(to.value)
        s["updated_at"] = at
    failures = tokens = 0
    cost = 0.0
    u = getattr(d, "usage", None)
    if u is not None and not isinstance(d, ev.TaskProgress):  # an attempt's end (tasklog.fold_event)
        tokens, cost = u.total_tokens, u.cost_usd or 0.0
    if isinstance(d, ev.TaskAssigned):
        s.update(agent_id=d.agent_id, attempts=d.attempt_number, started_at=None)
    elif isinstance(d, ev.TaskStarted):
        s.update(agent_id=d.agent_id, started_at=at)
    elif isinstance(d, ev.TaskProgress):
        s["updated_at"] = at
    elif isinstance(d, ev.TaskCompleted):
        s.update(finished_at=at, latency_ms=d.execution_time_ms, error_code=None, error_message=None)
    elif isinstance(d, ev.TaskFailed):
        s.update(error_code=d.error.code, error_message=d.error.message)
        if d.failure_kind not in ("dependency_failed", "rate_limited"):
            failures = 1
        if d.retry_scheduled:
            s.update(retried_at=at, started_at=None)
        else:
            s.update(finished_at=at, latency_ms=d.execution_time_ms)
    elif isinstance(d, ev.TaskCancelled):
        s["finished_at"] = at
    elif isinstance(d, ev.TaskRetried):
        s.update(
            failures=0,
            error_code=None,
            error_message=None,
            finished_at=None,
            latency_ms=None,
            retried_at=at,
            started_at=None,
        )
    elif isinstance(d, ev.TaskReleased):
        s["started_at"] = None
    if not s and not tokens and not cost:
        return None  # (task_rejected: the task_cancelled that follows ends the task)
    return SummaryChange(task_id, set=s, add_failures=failures, add_tokens=tokens, add_cost=cost)


def _points(event: ev.Event) -> tuple[AgentPoint, ...]:
    d, seq = event.data, event.sequence
    at = unix(d.timestamp)
    if isinstance(d, ev.AgentCreated):
        a = d.agent
        return tuple(AgentPoint(a.id, seq, at, c.name, c.proficiency) for c in a.capabilities)
    if isinstance(d, ev.AgentUpdated) and d.capabilities is not None:
        return tuple(AgentPoint(d.agent_id, seq, at, c.name, c.proficiency) for c in d.capabilities)
    if isinstance(d, ev.LearningCycleCompleted):
        return tuple(AgentPoint(d.agent_id, seq, at, k, v.new_value) for k, v in d.improvements.items())
    if isinstance(d, ev.AgentLearningReset):
        return tuple(AgentPoint(d.agent_id, seq, at, k, v.new_value) for k, v in d.capabilities.items())
    if isinstance(d, ev.AgentPerformanceUpdated):
        m = d.metrics
        return (AgentPoint(d.agent_id, seq, at, None, None, m.success_rate, m.average_response_time_ms),)
    return ()


def apply_change(rows: dict[str, TaskSummary], change: SummaryChange) -> TaskSummary | None:
    """Apply one change to the rows by task id (mutates ``rows``); returns the row.

    A create replaces a row of the same id; a change of a task without a row (its
    ``task_created`` is not in the log) is ignored, as ``fold_task`` ignores it."""
    if change.create is not None:
        row = msgspec.structs.replace(change.create)
        rows[change.task_id] = row
        return row
    old = rows.get(change.task_id)
    if old is None:
        return None
    for k, v in change.set.items():
        setattr(old, k, v)
    old.failures += change.add_failures
    old.tokens += change.add_tokens
    old.cost_usd = round(old.cost_usd + change.add_cost, 9)
    return old


def combine(first: SummaryChange, then: SummaryChange) -> SummaryChange:
    """One change with the effect of ``first`` then ``then`` (same task, neither a
    create): a batch writes each task's row once. A counter that ``then`` sets
    drops what ``first`` added to it."""
    s = {**first.set, **then.set}
    return SummaryChange(
        first.task_id,
        set=s,
        add_failures=then.add_failures + (0 if "failures" in then.set else first.add_failures),
        add_tokens=then.add_tokens + (0 if "tokens" in then.set else first.add_tokens),
        add_cost=then.add_cost + (0.0 if "cost_usd" in then.set else first.add_cost),
    )


# ----------------------------------------------------------------- series


class SeriesRow(NamedTuple):
    """What the series read of a task (the store selects these columns)."""

    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    retried_at: float | None
    latency_ms: float | None
    tokens: int
    cost_usd: float


def bucket_plan(
    window: float, step: float | None, now: float, max_buckets: int = 300
) -> tuple[float, int, float]:
    """``(start, buckets, step)`` of a window ending at ``now``: ``step`` (``None``: auto,
    the smallest of 1, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1 h giving at most
    ``max_buckets``), at least ``window / max_buckets``; buckets start on multiples of
    ``step`` so that two reads a moment apart share their buckets."""
    nice = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    floor = window / max_buckets
    if step is None:
        step = next((s for s in nice if s >= floor), math.ceil(floor / 3600) * 3600)
    step = max(step, math.ceil(floor))
    n = math.ceil(window / step)
    last = math.floor(now / step) * step  # the bucket that holds now
    start = last - (n - 1) * step
    return float(start), n, float(step)


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """The ``p`` percentile (0..100) by nearest rank, ``None`` without values."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return round(sorted_values[k], 3)


def state_bucket(status: str) -> str:
    """Which ``by_state`` series a current status counts in."""
    if status in FINAL:
        return status
    if status in (TS.RUNNING.value, TS.INPUT_REQUIRED.value):
        return "running"
    return "pending"


def fold_series(
    rows: Iterable[SeriesRow], start: float, n: int, step: float, finished_before: dict[str, int]
) -> dict[str, Any]:
    """The chart series over ``n`` buckets of ``step`` seconds from ``start``.

    Args:
        rows: every task alive in the window: created before its end and not
            finished before its start (more rows are harmless: they count nowhere).
        finished_before: tasks finished before ``start``, by final status (the
            ``by_state`` counts of finished tasks at the window's start).

    ``by_state`` is each state's count at each bucket's end, reconstructed from
    the row's times: a task is pending from ``created_at``, running from
    ``started_at`` (its current or last attempt's start), and in its final status
    from ``finished_at``. It is approximate for tasks that were re-queued (the
    earlier attempts' running time counts as pending) and exact otherwise at
    bucket granularity."""
    # One pass over plain locals: the window can hold tens of thousands of rows
    # (tests/store/test_history.py keeps the straightforward version of these rules
    # and checks this one against it).
    end = start + n * step
    created, completed, failed, cancelled, retried = ([0] * n for _ in range(5))
    tokens_at: list[int] = [0] * n
    cost_at: list[float] = [0] * n
    finished_counts = {"completed": completed, "failed": failed, "cancelled": cancelled}
    latencies: list[list[float]] = [[] for _ in range(n)]
    # state deltas: +1 at the bucket where a state is entered, -1 where it is left;
    # a time before the window enters at index 0, after it is never reached
    delta = {k: [0] * (n + 1) for k in SERIES_STATES}
    for k, v in finished_before.items():
        if k in delta:
            delta[k][0] += v
    pending, running = delta["pending"], delta["running"]
    done = TS.COMPLETED.value
    still_running = (TS.RUNNING.value, TS.INPUT_REQUIRED.value)
    for status, created_at, started_at, finished_at, retried_at, latency_ms, tokens, cost in rows:
        if created_at >= end or (finished_at is not None and finished_at < start):
            continue
        # (a bucket index: a time before the window clamped to 0 or skipped)
        ci = int((created_at - start) // step)
        if created_at >= start:
            created[ci] += 1
        if retried_at is not None and start <= retried_at < end:
            retried[int((retried_at - start) // step)] += 1
        final = finished_at is not None and status in FINAL
        fi = 0
        if final:
            fi = int((finished_at - start) // step)  # type: ignore[operator]
            if finished_at >= start and fi < n:  # type: ignore[operator]
                finished_counts[status][fi] += 1
                tokens_at[fi] += tokens
                cost_at[fi] += cost
                if status == done and latency_ms is not None:
                    latencies[fi].append(latency_ms)
        # pending from created; running from started; final from finished
        pending[ci if ci > 0 else 0] += 1
        if not final and status not in still_running:
            continue  # pending (again: a re-queued task's last start was cleared)
        started = started_at if started_at is not None and started_at >= created_at else None
        if started is not None:
            if started < end:
                si = int((started - start) // step)
                si = si if si > 0 else 0
                pending[si] -= 1
                running[si] += 1
            if final and finished_at < end:  # type: ignore[operator]
                running[fi if fi > 0 else 0] -= 1
        elif final and finished_at < end:  # type: ignore[operator]
            pending[fi if fi > 0 else 0] -= 1
        if final and finished_at < end:  # type: ignore[operator]
            delta[status][fi if fi > 0 else 0] += 1
    counts: dict[str, list[int] | list[float]] = {
        "created": created,
        "completed": completed,
        "failed": failed,
        "cancelled": cancelled,
        "retried": retried,
        "tokens": tokens_at,
        "cost_usd": cost_at,
    }
    by_state: dict[str, list[int]] = {}
    for k, d in delta.items():
        acc, out = 0, []
        for i in range(n):
            acc += d[i]
            out.append(acc)
        by_state[k] = out
    p50, p95, p99 = [], [], []
    for vals in latencies:
        vals.sort()
        p50.append(percentile(vals, 50))
        p95.append(percentile(vals, 95))
        p99.append(percentile(vals, 99))
    return {
        "window": round(n * step),  # (the caller may report the window it was asked)
        "step": round(step),
        "t": [round(start + i * step) for i in range(n)],
        "created": counts["created"],
        "completed": counts["completed"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "retried": counts["retried"],
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "tokens": counts["tokens"],
        "cost_usd": [round(c, 9) for c in counts["cost_usd"]],
        "by_state": by_state,
    }
