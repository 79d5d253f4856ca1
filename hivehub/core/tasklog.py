"""One task's history: which events belong to a task, and the task folded from them alone.

The hive keeps finished tasks in memory only up to ``HiveConfig.retain_finished``
(see ``Hive._evict``); the log keeps everything. The store indexes each event
by :func:`task_id_of`, and :func:`fold_task` rebuilds an evicted task from its
own events, equal to the projection ``Hive.apply`` had made of it.

The rules mirror the task parts of the ``Hive._a_task_*`` appliers (the fields
of the task; not the agents, counters or indexes). ``tests/core/test_tasklog.py``
checks, for every task of a scenario covering every task event, that the fold
equals the live projection, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from . import events as ev
from .model import Task, TaskStatus

__all__ = ["TASK_EVENTS", "fold_task", "task_id_of"]

TS = TaskStatus

#: The events that change a task, each naming it by ``task_id`` (``task_created`` by ``task.id``).
TASK_EVENTS: tuple[type[ev.EventData], ...] = (
    ev.TaskCreated,
    ev.TaskAssigned,
    ev.TaskStarted,
    ev.TaskProgress,
    ev.TaskCompleted,
    ev.TaskFailed,
    ev.TaskCancelled,
    ev.TaskRetried,
    ev.TaskReleased,
)


def task_id_of(d: ev.EventData) -> str | None:
    """The task an event changes, or ``None`` (what the store indexes events by)."""
    if isinstance(d, ev.TaskCreated):
        return d.task.id
    if isinstance(d, TASK_EVENTS):
        task_id: str = d.task_id  # type: ignore[attr-defined]
        return task_id
    return None


def _status(t: Task, to: TaskStatus, at: datetime) -> None:
    t.status = to
    t.updated_at = at


def _requeue(t: Task, at: datetime, due: datetime | None) -> None:
    _status(t, TS.PENDING, at)
    t.assigned_agent_id = None
    t.started_at = None
    t.assigned_at = None
    t.progress = 0.0
    t.current_step = None
    t.estimated_completion = None
    t.next_retry_at = due


def fold_task(events: Iterable[ev.Event]) -> Task | None:
    """Fold one task from its own events, oldest first (``None`` without its ``task_created``).

    Events of other tasks, and events before ``task_created``, are ignored."""
    t: Task | None = None
    for e in events:
        d = e.data
        if isinstance(d, ev.TaskCreated) and t is None:
            src = d.task
            t = msgspec.structs.replace(
                src,
                required_capabilities=list(src.required_capabilities),
                depends_on=list(src.depends_on),
                failed_agents=list(src.failed_agents),
                metadata=dict(src.metadata),
                created_sequence=e.sequence,
            )
            continue
        if t is None or task_id_of(d) != t.id:
            continue
        if isinstance(d, ev.TaskAssigned):
            _status(t, TS.ASSIGNED, d.timestamp)
            t.assigned_agent_id = d.agent_id
            t.assigned_at = d.timestamp
            t.attempt = d.attempt_number
            t.estimated_completion = d.estimated_completion
            t.next_retry_at = None
        elif isinstance(d, ev.TaskStarted):
            _status(t, TS.RUNNING, d.timestamp)
            t.started_at = d.timestamp
        elif isinstance(d, ev.TaskProgress):
            t.progress = d.progress
            t.current_step = d.current_step
            t.estimated_completion = d.estimated_completion
            t.updated_at = d.timestamp
        elif isinstance(d, ev.TaskCompleted):
            _status(t, TS.COMPLETED, d.timestamp)
            t.result = d.result
            t.error = None
            t.progress = 1.0
            t.completed_at = d.timestamp
        elif isinstance(d, ev.TaskFailed):
            t.error = d.error
            if d.failure_kind != "dependency_failed":
                t.failures += 1
            if d.agent_id and d.agent_id not in t.failed_agents:
                t.failed_agents.append(d.agent_id)
            if d.retry_scheduled:
                _requeue(t, d.timestamp, d.next_retry_at)
            else:
                _status(t, TS.FAILED, d.timestamp)
                t.completed_at = d.timestamp
        elif isinstance(d, ev.TaskCancelled):
            _status(t, TS.CANCELLED, d.timestamp)
            t.cancelled_by = d.cancelled_by
            t.completed_at = d.timestamp
        elif isinstance(d, ev.TaskRetried):
            t.failures = 0
            t.error = None
            t.result = None
            t.cancelled_by = None
            t.completed_at = None
            t.failed_agents = []
            _requeue(t, d.timestamp, None)
        elif isinstance(d, ev.TaskReleased):
            _requeue(t, d.timestamp, None)
    return t
