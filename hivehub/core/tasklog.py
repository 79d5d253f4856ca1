"""One task's history: which events belong to a task, and the task folded from them alone.

The hive keeps finished tasks in memory only up to ``HiveConfig.retain_finished``
(see ``Projection._evict``); the log keeps everything. The store indexes each event
by :func:`task_id_of`, and :func:`fold_task` rebuilds an evicted task from its
own events, equal to the projection ``Hive.apply`` had made of it.

The task's own fields follow one rule, :func:`update_task`, which the appliers
of ``projection.py`` call too (they add what a task event does to agents,
counters and indexes). ``tests/core/test_tasklog.py`` checks, for every task of
a scenario covering every task event, that the fold equals the live projection.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from . import events as ev
from .model import InputAnswer, InputRequest, Task, TaskStatus
from .usage import add_usage

__all__ = [
    "STATUS_AFTER",
    "STATUS_EVENTS",
    "TASK_EVENTS",
    "fold_statuses",
    "fold_event",
    "fold_task",
    "new_task",
    "status_after",
    "task_id_of",
    "update_task",
]

TS = TaskStatus
_INPUT_REQUIRED = TS.INPUT_REQUIRED  # (bound once: an Enum class attribute is slow on 3.11)

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
    ev.TaskRecalled,
    ev.TaskApprovalRequested,
    ev.TaskApproved,
    ev.TaskRejected,
    ev.TaskInputRequired,
    ev.TaskInputReceived,
)


def task_id_of(d: ev.EventData) -> str | None:
    """The task an event changes, or ``None`` (what the store indexes events by)."""
    if isinstance(d, ev.TaskCreated):
        return d.task.id
    if isinstance(d, TASK_EVENTS):
        task_id: str = d.task_id  # type: ignore[attr-defined]
        return task_id
    return None


#: the status each task event moves its task to (``task_failed`` depends on the
#: event: :func:`status_after`); the events absent here leave the status as it is
#: (task_approval_requested follows a task_created in awaiting_approval;
#: task_rejected is followed by the task_cancelled that ends the task)
STATUS_AFTER: dict[type[ev.EventData], TaskStatus] = {
    ev.TaskAssigned: TS.ASSIGNED,
    ev.TaskStarted: TS.RUNNING,
    ev.TaskCompleted: TS.COMPLETED,
    ev.TaskCancelled: TS.CANCELLED,
    ev.TaskRetried: TS.PENDING,
    ev.TaskReleased: TS.PENDING,
    ev.TaskApproved: TS.PENDING,
    ev.TaskInputRequired: TS.INPUT_REQUIRED,
    ev.TaskInputReceived: TS.RUNNING,
}


def status_after(d: ev.EventData) -> TaskStatus | None:
    """The status a task event moves its task to (``None``: the status stays)."""
    # (one dict lookup by the exact type: every event type subclasses EventData
    # directly, and this runs for every task event on the scheduler's hot path)
    to = STATUS_AFTER.get(type(d))
    if to is None and type(d) is ev.TaskFailed:
        return TS.PENDING if d.retry_scheduled else TS.FAILED
    return to


def new_task(d: ev.TaskCreated, sequence: int) -> Task:
    """The task a ``task_created`` (logged at ``sequence``) creates: a copy of
    everything the fold mutates, so the event stays as it was emitted."""
    src = d.task
    return msgspec.structs.replace(
        src,
        required_capabilities=list(src.required_capabilities),
        depends_on=list(src.depends_on),
        failed_agents=list(src.failed_agents),
        metadata=dict(src.metadata),
        created_sequence=sequence,
    )


def update_task(t: Task, d: ev.EventData) -> None:
    """Fold one event into its task's own fields (status included; not agents,
    counters or indexes): the one rule both ``Hive.apply`` and :func:`fold_task` use."""
    fold_event(t, d, status_after(d))


def fold_event(t: Task, d: ev.EventData, to: TaskStatus | None) -> None:
    """:func:`update_task` given ``to = status_after(d)`` (``Hive.apply`` has it already)."""
    if to is not None:
        t.status = to
        t.updated_at = d.timestamp
        if to is not _INPUT_REQUIRED:
            t.pending_input = None  # open only while input_required
    u = getattr(d, "usage", None)
    if u is not None and type(d) is not ev.TaskProgress:
        t.usage = add_usage(t.usage, u)  # an attempt's end: its usage joins the task's
    if isinstance(d, ev.TaskAssigned):
        t.assigned_agent_id = d.agent_id
        t.assigned_at = d.timestamp
        t.attempt = d.attempt_number
        t.estimated_completion = d.estimated_completion
        t.next_retry_at = None
        t.output = ""  # a new attempt streams its own output
    elif isinstance(d, ev.TaskStarted):
        t.started_at = d.timestamp
    elif isinstance(d, ev.TaskCompleted):  # (before progress: one of every assignment's three)
        t.result = d.result
        t.error = None
        t.progress = 1.0
        t.completed_at = d.timestamp
    elif isinstance(d, ev.TaskProgress):
        t.progress = d.progress
        t.current_step = d.current_step
        t.estimated_completion = d.estimated_completion
        t.updated_at = d.timestamp
        if d.output_delta:
            t.output += d.output_delta
    elif isinstance(d, ev.TaskFailed):
        t.error = d.error
        if d.failure_kind in ev.RATE_LIMITED_KINDS:
            t.rate_limited += 1
        if d.failure_kind not in ("dependency_failed", "rate_limited"):
            # (a provider's 429 is not the task's failure: no retry is spent, up to
            # HiveConfig.max_rate_limited of them)
            t.failures += 1
        if d.agent_id and d.failure_kind not in ev.RATE_LIMITED_KINDS and d.agent_id not in t.failed_agents:
            # from the event alone (not whether the agent still exists)
            t.failed_agents.append(d.agent_id)
        if d.retry_scheduled:
            _requeued(t, d.next_retry_at)
        else:
            t.completed_at = d.timestamp
    elif isinstance(d, ev.TaskCancelled):
        t.cancelled_by = d.cancelled_by
        t.completed_at = d.timestamp
    elif isinstance(d, ev.TaskRetried):
        t.failures = 0
        t.rate_limited = 0
        t.error = None
        t.result = None
        t.cancelled_by = None
        t.completed_at = None
        t.failed_agents = []
        _requeued(t, None)
    elif isinstance(d, ev.TaskReleased):
        _requeued(t, None)
    elif isinstance(d, ev.TaskApproved):
        t.approved_by = d.approved_by
    elif isinstance(d, ev.TaskInputRequired):
        t.pending_input = InputRequest(
            d.request_id, d.question, d.choices, d.timeout_seconds, d.timestamp, d.deadline
        )
    elif isinstance(d, ev.TaskInputReceived):
        t.last_input = InputAnswer(
            d.request_id, d.attempt_number, d.answer, d.answered_by, d.timed_out, d.timestamp
        )


def _requeued(t: Task, due: datetime | None) -> None:
    """Back to the queue: nobody holds it (pending is set by the status rule)."""
    t.assigned_agent_id = None
    t.started_at = None
    t.assigned_at = None
    t.progress = 0.0
    t.current_step = None
    t.estimated_completion = None
    t.next_retry_at = due
    t.last_input = None  # the answers of the attempt that ended


#: The task events that may change a task's status (``task_progress`` never does):
#: what the store reads to fold final statuses (:func:`fold_statuses`).
STATUS_EVENTS: tuple[type[ev.EventData], ...] = tuple(e for e in TASK_EVENTS if e is not ev.TaskProgress)


def fold_statuses(
    events: Iterable[ev.Event], into: dict[str, TaskStatus] | None = None
) -> dict[str, TaskStatus]:
    """The status of every task the events create, folded from them, oldest first:
    what ``EventStore.final_statuses`` answers for tasks the core has forgotten.
    Events of a task without its ``task_created`` are ignored, like ``fold_task``.
    ``into``: statuses folded from the events before these (updated and returned)."""
    out: dict[str, TaskStatus] = {} if into is None else into
    for e in events:
        d = e.data
        if isinstance(d, ev.TaskCreated):
            out.setdefault(d.task.id, d.task.status)
            continue
        task_id = task_id_of(d)
        if task_id is not None and task_id in out:
            to = status_after(d)
            if to is not None:
                out[task_id] = to
    return out


def fold_task(events: Iterable[ev.Event]) -> Task | None:
    """Fold one task from its own events, oldest first (``None`` without its ``task_created``).

    Events of other tasks, and events before ``task_created``, are ignored."""
    t: Task | None = None
    for e in events:
        d = e.data
        if isinstance(d, ev.TaskCreated) and t is None:
            t = new_task(d, e.sequence)
        elif t is not None and task_id_of(d) == t.id:
            update_task(t, d)
    return t
