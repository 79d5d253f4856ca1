"""The legal status transitions of tasks and agents: one ``(start, finish)`` table each.

Each table maps a pair to what makes that transition (the event, and why). The
same table validates and documents: the appliers (``projection.py``) and the
decisions that emit a status change (``context.py``) check every change against
it, and an unknown pair raises :class:`~hivehub.core.errors.InvalidTransition`;
:func:`markdown` renders both tables for the documentation.

An agent is never put in the spec's ``failed`` status by any decision, so no row
enters or leaves it: a silent or disconnected agent goes ``offline``.
"""

from __future__ import annotations

from .errors import InvalidTransition
from .model import Agent, AgentStatus, Task, TaskStatus

__all__ = [
    "AGENT_TRANSITIONS",
    "TASK_TRANSITIONS",
    "check_agent_transition",
    "check_task_transition",
    "markdown",
]

TS = TaskStatus
AS = AgentStatus

#: Every legal task transition and the event that makes it.
TASK_TRANSITIONS: dict[tuple[TaskStatus, TaskStatus], str] = {
    (TS.PENDING, TS.ASSIGNED): "task_assigned",
    (TS.ASSIGNED, TS.ASSIGNED): "task_assigned (rebalanced to another agent)",
    (TS.ASSIGNED, TS.RUNNING): "task_started",
    (TS.RUNNING, TS.COMPLETED): "task_completed",
    (TS.ASSIGNED, TS.PENDING): "task_failed (retry scheduled) | task_released",
    (TS.RUNNING, TS.PENDING): "task_failed (retry scheduled) | task_released",
    (TS.ASSIGNED, TS.FAILED): "task_failed (no retry)",
    (TS.RUNNING, TS.FAILED): "task_failed (no retry)",
    (TS.PENDING, TS.FAILED): "task_failed (dependency failed)",
    (TS.PENDING, TS.CANCELLED): "task_cancelled",
    (TS.ASSIGNED, TS.CANCELLED): "task_cancelled",
    (TS.RUNNING, TS.CANCELLED): "task_cancelled",
    (TS.FAILED, TS.PENDING): "task_retried",
    (TS.CANCELLED, TS.PENDING): "task_retried",
    (TS.AWAITING_APPROVAL, TS.PENDING): "task_approved",
    (TS.AWAITING_APPROVAL, TS.CANCELLED): "task_cancelled (by hand, or task_rejected)",
    (TS.RUNNING, TS.INPUT_REQUIRED): "task_input_required",
    (TS.INPUT_REQUIRED, TS.RUNNING): "task_input_received (answered, or timed out)",
    (TS.INPUT_REQUIRED, TS.CANCELLED): "task_cancelled",
    (TS.INPUT_REQUIRED, TS.FAILED): "task_failed (agent lost or reported, no retry)",
    (TS.INPUT_REQUIRED, TS.PENDING): "task_failed (agent lost or reported, retry scheduled) | task_released",
}

#: Every legal agent status transition (all by ``agent_status_changed``) and its reasons.
AGENT_TRANSITIONS: dict[tuple[AgentStatus, AgentStatus], str] = {
    (AS.IDLE, AS.ACTIVE): "took work (task_assigned)",
    (AS.ACTIVE, AS.IDLE): "its last task ended",
    (AS.IDLE, AS.LEARNING): "learning_cycle_started",
    (AS.ACTIVE, AS.LEARNING): "learning_cycle_started",
    (AS.LEARNING, AS.IDLE): "learning_cycle_completed, no task held",
    (AS.LEARNING, AS.ACTIVE): "learning_cycle_completed, tasks held",
    (AS.IDLE, AS.OFFLINE): "disconnected | heartbeat_timeout | hub_restarted | access revoked",
    (AS.ACTIVE, AS.OFFLINE): "disconnected | heartbeat_timeout | hub_restarted | access revoked",
    (AS.LEARNING, AS.OFFLINE): "disconnected | heartbeat_timeout | hub_restarted | access revoked",
    (AS.OFFLINE, AS.IDLE): "reconnected | heartbeat, no task held",
    (AS.OFFLINE, AS.ACTIVE): "reconnected | heartbeat, tasks held",
}


def check_task_transition(task: Task, to: TaskStatus) -> None:
    """Raises InvalidTransition unless ``(task.status, to)`` is in :data:`TASK_TRANSITIONS`."""
    if (task.status, to) not in TASK_TRANSITIONS:
        raise InvalidTransition(
            f"task {task.id} is {task.status}; cannot go to {to}",
            task_id=task.id,
            status=str(task.status),
            to=str(to),
        )


def check_agent_transition(agent: Agent, to: AgentStatus) -> None:
    """Raises InvalidTransition unless ``(agent.status, to)`` is in :data:`AGENT_TRANSITIONS`."""
    if (agent.status, to) not in AGENT_TRANSITIONS:
        raise InvalidTransition(
            f"agent {agent.id} is {agent.status}; cannot go to {to}",
            agent_id=agent.id,
            status=str(agent.status),
            to=str(to),
        )


def markdown() -> str:
    """Both tables as Markdown (for the documentation)."""
    lines = []
    for title, table in (("Task", TASK_TRANSITIONS), ("Agent", AGENT_TRANSITIONS)):
        lines += [f"| {title} from | to | by |", "|---|---|---|"]
        lines += [f"| `{a}` | `{b}` | {why} |" for (a, b), why in table.items()]
        lines.append("")
    return "\n".join(lines)
