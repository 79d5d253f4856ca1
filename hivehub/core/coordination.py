"""Swarm coordination: moving assigned-but-unstarted work to idle capable agents.

Pure planning, documented in ``docs/learning-and-coordination.md``. For each task
that an agent has held without starting for at least ``min_unstarted_seconds``,
the predicted time to completion is compared where it is and on the best idle
capable agent:

    at the holder:  max(waited, mean * running) + mean
    on an idle one: mean'

where ``mean`` is that agent's mean observed duration for the task type (else on
all types, else the hive's mean for the type, else the time already waited),
``running`` is how many tasks the holder is running, and ``waited`` is how long
the task has waited there. The task moves when the idle agent is predicted to
finish it at least ``margin`` sooner. ``efficiency_improvement`` is the share of
predicted time-to-completion saved over the moved tasks.

This module is the pure plan. When to plan (at startup, periodically, and when
an agent joins or leaves) and emitting the moves is in ``tick.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from .config import CoordinationConfig
from .model import Agent, Task, TaskStatus

__all__ = ["CoordinationConfig", "Move", "agent_mean_ms", "efficiency_improvement", "plan_moves"]


class Move(Struct, frozen=True):
    task_id: str
    from_agent: str
    to_agent: str
    before_ms: float
    after_ms: float


def agent_mean_ms(a: Agent, task_type: str) -> float | None:
    st = a.type_stats.get(task_type)
    if st is not None and st.completed:
        return st.total_ms / st.completed
    if a.metrics.tasks_completed:
        return a.metrics.total_execution_ms / a.metrics.tasks_completed
    return None


def plan_moves(
    held: list[tuple[Task, Agent]],
    idle_targets: Callable[[Task], list[Agent]],
    hive_mean_ms: Callable[[str], float | None],
    waited_seconds: Callable[[Task], float],
    cfg: CoordinationConfig,
) -> list[Move]:
    """Decide which unstarted tasks to move. ``idle_targets(task)`` lists idle agents
    with a free slot that meet the task's requirements, best first; each target
    takes at most its free slots. ``waited_seconds(task)``: how long it has been
    assigned, on the monotonic clock."""
    moves: list[Move] = []
    taken: dict[str, int] = {}
    for t, holder in held:
        if t.status != TaskStatus.ASSIGNED or t.assigned_at is None:
            continue
        waited_ms = waited_seconds(t) * 1000
        if waited_ms < cfg.min_unstarted_seconds * 1000:
            continue
        fallback = hive_mean_ms(t.type)
        mean = agent_mean_ms(holder, t.type) or fallback or waited_ms
        running = sum(1 for _ in holder.current_tasks) - 1
        before = max(waited_ms, mean * max(0, running)) + mean
        for b in idle_targets(t):
            if b.id == holder.id or taken.get(b.id, 0) >= b.free_slots:
                continue
            after = agent_mean_ms(b, t.type) or fallback or waited_ms
            if after < before * (1 - cfg.margin):
                moves.append(Move(t.id, holder.id, b.id, round(before, 3), round(after, 3)))
                taken[b.id] = taken.get(b.id, 0) + 1
            break  # only the best target is considered
    return moves


def efficiency_improvement(moves: list[Move]) -> float:
    before = sum(m.before_ms for m in moves)
    after = sum(m.after_ms for m in moves)
    return round((before - after) / before, 4) if before > 0 else 0.0
