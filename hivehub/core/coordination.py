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

:class:`CoordinationMixin` is the part of the :class:`~hivehub.core.hive.Hive`
that decides when to plan (at startup, periodically, and when an agent joins or
leaves) and emits the moves (see ``_state.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from . import events as ev
from ._state import HiveState
from .model import Agent, AgentStatus, Task, TaskStatus
from .policies import score_agent

TS = TaskStatus
AS = AgentStatus


class CoordinationConfig(Struct, frozen=True):
    enabled: bool = True
    interval_seconds: float = 10.0
    min_unstarted_seconds: float = 2.0
    margin: float = 0.2


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


class CoordinationMixin(HiveState):
    # volatile triggers (not logged)
    _rebalance_trigger: str | None
    _next_rebalance_at: float | None  # monotonic

    def _maybe_rebalance(self) -> None:
        cfg = self.config.coordination
        now, mono = self._now, self._mono
        assert now is not None and mono is not None
        if not cfg.enabled:
            return
        due = self._next_rebalance_at is None or mono >= self._next_rebalance_at
        if not due and self._rebalance_trigger is None:
            return
        trigger = self._rebalance_trigger or "periodic"
        self._rebalance_trigger = None
        self._next_rebalance_at = mono + cfg.interval_seconds
        held = [
            (self.tasks[tid], a)
            for a in self.agents.values()
            for tid in a.current_tasks
            if self.tasks[tid].status == TS.ASSIGNED
        ]
        if not held:
            return

        def idle_targets(t: Task) -> list[Agent]:
            ranked = []
            for b in self._candidates(t.required_capabilities):
                if b.status == AS.IDLE and b.free_slots > 0 and not b.draining:
                    score, _ = score_agent(b, t, self.config.weights)
                    ranked.append((-score, b.id, b))
            return [b for _, _, b in sorted(ranked)]

        moves = plan_moves(held, idle_targets, self._hive_mean_ms, self._held_for, cfg)
        if not moves:
            return
        before = round(sum(m.before_ms for m in moves), 3)
        after = round(sum(m.after_ms for m in moves), 3)
        self._emit(
            ev.InterModuleMessage(
                timestamp=now,
                from_module="coordinator",
                to_module="task_management",
                message_type="RebalanceRequest",
                payload={"task_ids": [m.task_id for m in moves], "trigger": trigger},
            )
        )
        self._emit(
            ev.CoordinationEvent(
                timestamp=now,
                event_type="SwarmOptimization",
                module="coordinator",
                details={
                    "optimization_type": "load_balancing",
                    "agents_rebalanced": len({m.from_agent for m in moves} | {m.to_agent for m in moves}),
                    "efficiency_improvement": efficiency_improvement(moves),
                    "tasks_moved": len(moves),
                    "predicted_completion_before_ms": before,
                    "predicted_completion_after_ms": after,
                    "trigger": trigger,
                },
            )
        )
        for m in moves:
            t = self.tasks[m.task_id]
            b = self.agents[m.to_agent]
            score, breakdown = score_agent(b, t, self.config.weights)
            self._emit(
                ev.TaskAssigned(
                    timestamp=now,
                    task_id=t.id,
                    agent_id=b.id,
                    assignment_reason="rebalanced",
                    estimated_completion=self._estimate(b, t),
                    attempt_number=t.attempt + 1,
                    score=round(score, 4),
                    score_breakdown=breakdown,
                    previous_agent_id=m.from_agent,
                )
            )
            self._touch(m.from_agent, "task_rebalanced")
            self._touch(b.id, "task_assigned")

    def _hive_mean_ms(self, task_type: str) -> float | None:
        total, n = 0.0, 0
        for a in self.agents.values():
            st = a.type_stats.get(task_type)
            if st is not None and st.completed:
                total += st.total_ms
                n += st.completed
        return total / n if n else None
