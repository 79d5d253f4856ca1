"""A task's attempts, folded from its own events: who ran each one, when, and how it
ended. ``GET /api/tasks/{id}/attempts`` answers it (from the task's events in the
store, so an evicted task has its history too) and ``hive tasks show`` prints it.
Pure: events in, rows out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from msgspec import Struct

from . import events as ev
from .model import TaskError, Usage

__all__ = ["Attempt", "fold_attempts"]


class Attempt(Struct, kw_only=True):
    attempt: int
    agent_id: str | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: running (not ended yet), completed, failed, cancelled, released
    outcome: str = "running"
    #: why: the assignment reason, the failure kind, the cancel or release reason
    reason: str | None = None
    #: the agent it was moved from (rebalancing) or that failed before
    previous_agent_id: str | None = None
    score: float | None = None
    execution_time_ms: float | None = None
    error: TaskError | None = None
    retry_scheduled: bool | None = None
    usage: Usage | None = None


def fold_attempts(events: Iterable[ev.EventData]) -> list[Attempt]:
    """The attempts of one task, oldest first, from its events (oldest first)."""
    rows: dict[int, Attempt] = {}
    current = 0

    def row(n: int) -> Attempt:
        if n not in rows:
            rows[n] = Attempt(attempt=n)
        return rows[n]

    for d in events:
        if isinstance(d, ev.TaskAssigned):
            current = d.attempt_number
            r = row(current)
            r.agent_id, r.assigned_at, r.score = d.agent_id, d.timestamp, d.score
            r.reason, r.previous_agent_id = d.assignment_reason, d.previous_agent_id
        elif isinstance(d, ev.TaskStarted):
            current = d.attempt_number
            r = row(current)
            r.started_at = d.timestamp
            r.agent_id = r.agent_id or d.agent_id
        elif isinstance(d, ev.TaskCompleted):
            r = row(d.attempt_number or current)
            r.ended_at, r.outcome, r.reason = d.timestamp, "completed", None
            r.execution_time_ms, r.usage = d.execution_time_ms, d.usage
        elif isinstance(d, ev.TaskFailed):
            before = rows.get(d.attempt_number)
            if d.agent_id is None and (before is None or before.ended_at is not None):
                continue  # failed while waiting (a dependency failed): not an attempt
            r = row(d.attempt_number)
            r.ended_at, r.outcome, r.reason = d.timestamp, "failed", d.failure_kind
            r.error, r.retry_scheduled = d.error, d.retry_scheduled
            r.execution_time_ms, r.usage = d.execution_time_ms, d.usage
        elif isinstance(d, ev.TaskCancelled):
            r_open = rows.get(current)
            if r_open is not None and r_open.ended_at is None:
                r_open.ended_at, r_open.outcome, r_open.reason = d.timestamp, "cancelled", d.reason
                r_open.usage = d.usage or r_open.usage
        elif isinstance(d, ev.TaskReleased):
            r = row(d.attempt_number)
            if r.ended_at is None:
                r.ended_at, r.outcome, r.reason = d.timestamp, "released", d.reason
                r.usage = d.usage or r.usage
    return [rows[n] for n in sorted(rows)]
