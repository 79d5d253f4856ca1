"""The Tick: time passed. Due retries become ready, overdue attempts time out,
silent agents go offline, and the coordinator rebalances when it is due.

Call order inside one Tick (``on_tick``), each step seeing the previous one:

1. retries that fell due move to the ready queue (``indexes.drain_retries``);
2. every question past its deadline is answered ``timed_out`` (``human.py``);
   every due task deadline is read (without popping) and an attempt still held
   past its timeout fails, unless it waits for input (its timeout is suspended);
   then the past deadlines are dropped;
3. every agent whose liveness entry is due and that was not heard from within
   ``heartbeat_timeout`` goes offline, and its attempts fail (liveness is
   volatile: its heap is re-armed here, see ``state.py``);
4. scheduling, then rebalancing (``core/coordination.py`` plans the moves);
   ``Hive.handle`` then concludes the command as any other.
"""

from __future__ import annotations

import heapq

from . import events as ev
from . import quotas
from .commands import Tick
from .context import Decision, arm_liveness
from .coordination import efficiency_improvement, plan_moves
from .human import expire_inputs
from .indexes import drain_deadlines, drain_retries, due
from .model import HELD, ONLINE, Agent, AgentStatus, Reservation, Task, TaskError, TaskStatus
from .policies import score_agent
from .scheduler import schedule
from .state import HiveState
from .tasks import fail_attempt

__all__ = ["maybe_rebalance", "on_tick"]

TS = TaskStatus
AS = AgentStatus


def on_tick(ctx: Decision, cmd: Tick) -> None:
    s, now, mono = ctx.s, ctx.now, ctx.mono
    if s._wake_at is not None and mono >= s._wake_at:
        s._dirty = True  # a pool has room again, or a new budget day began
    drain_retries(s, mono)
    expire_inputs(ctx)  # first: an answered attempt's moved deadline may be due too
    for _, task_id, attempt in due(s._deadlines, mono):
        t = s.tasks.get(task_id)
        if t is None or t.status not in HELD or t.attempt != attempt:
            continue
        if t.status == TS.INPUT_REQUIRED:
            continue  # suspended while it waits (the answer moves its deadline on)
        elapsed = ctx.held_for(t)
        if elapsed < t.timeout_seconds:
            continue  # stale entry (another was pushed when the task started)
        ctx.emit(
            ev.ErrorOccurred(
                timestamp=now,
                error_id=s._new_id(),
                component="task_executor",
                error=TaskError(
                    "EXECUTION_FAILED",
                    f"Task execution failed due to timeout after {elapsed:.3f}s",
                    {
                        "task_id": t.id,
                        "agent_id": t.assigned_agent_id,
                        "timeout_seconds": t.timeout_seconds,
                        "execution_time_seconds": round(elapsed, 3),
                    },
                ),
                severity="error",
            )
        )
        fail_attempt(
            ctx,
            t,
            TaskError(
                "TASK_TIMEOUT",
                f"no result within timeout_seconds={t.timeout_seconds}",
                {"timeout_seconds": t.timeout_seconds, "execution_time_seconds": round(elapsed, 3)},
            ),
            retryable=True,
            kind="timeout",
        )
    drain_deadlines(s, mono)  # every due deadline has been acted on
    _liveness(ctx)
    schedule(ctx)
    maybe_rebalance(ctx)


def _liveness(ctx: Decision) -> None:
    s, mono = ctx.s, ctx.mono
    limit = s.config.heartbeat_timeout
    while s._liveness and s._liveness[0][0] <= mono:
        _, agent_id = heapq.heappop(s._liveness)
        s._live_armed.discard(agent_id)
        a = s.agents.get(agent_id)
        if a is None:
            continue  # removed
        if s._seen.get(agent_id, mono) + limit > mono:
            arm_liveness(s, a)  # heard from since: due again one timeout after that
            continue
        if a.status in ONLINE:
            ctx.emit_status(a, AS.OFFLINE, "heartbeat_timeout")
        for task_id in list(a.current_tasks):
            fail_attempt(
                ctx,
                s.tasks[task_id],
                TaskError(
                    "AGENT_LOST",
                    f"agent {a.id} silent for more than {limit}s",
                    {"agent_id": a.id, "last_seen_at": a.last_seen_at.isoformat()},
                ),
                retryable=True,
                kind="agent_lost",
            )


# ---------------------------------------------------------------- coordination


def maybe_rebalance(ctx: Decision) -> None:
    """Plan and emit moves at startup, periodically, and when an agent joins or leaves.

    Its trigger and next due time are volatile (``state.py``): a hive that folds
    the log rebalances at its first Tick, as after a restart."""
    s, now, mono = ctx.s, ctx.now, ctx.mono
    cfg = s.config.coordination
    if not cfg.enabled:
        return
    is_due = s._next_rebalance_at is None or mono >= s._next_rebalance_at
    if not is_due and s._rebalance_trigger is None:
        return
    trigger = s._rebalance_trigger or "periodic"
    s._rebalance_trigger = None
    s._next_rebalance_at = mono + cfg.interval_seconds
    # (a prefetching agent's unstarted work is recalled, never moved: core/prefetch.py)
    held = [
        (s.tasks[tid], a)
        for a in s.agents.values()
        if not a.prefetch
        for tid in a.current_tasks
        if s.tasks[tid].status == TS.ASSIGNED
    ]
    if not held:
        return

    def idle_targets(t: Task) -> list[Agent]:
        ranked = []
        tokens = quotas.reservation(s, t, None).tokens if s.quotas else 0
        for b in s._candidates(t.required_capabilities):
            if b.quota is not None and s.quotas and not quotas.has_room(s, b.quota, tokens, mono):
                continue
            if b.status == AS.IDLE and b.free_slots > 0 and not b.draining:
                score, _ = score_agent(b, t, s.config.weights)
                ranked.append((-score, b.id, b))
        return [b for _, _, b in sorted(ranked)]

    moves = plan_moves(held, idle_targets, lambda task_type: hive_mean_ms(s, task_type), ctx.held_for, cfg)
    if not moves:
        return
    before = round(sum(m.before_ms for m in moves), 3)
    after = round(sum(m.after_ms for m in moves), 3)
    ctx.emit(
        ev.InterModuleMessage(
            timestamp=now,
            from_module="coordinator",
            to_module="task_management",
            message_type="RebalanceRequest",
            payload={"task_ids": [m.task_id for m in moves], "trigger": trigger},
        )
    )
    ctx.emit(
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
        t = s.tasks[m.task_id]
        b = s.agents[m.to_agent]
        score, breakdown = score_agent(b, t, s.config.weights)
        ctx.emit(
            ev.TaskAssigned(
                timestamp=now,
                task_id=t.id,
                agent_id=b.id,
                assignment_reason="rebalanced",
                estimated_completion=ctx.estimate(b, t),
                attempt_number=t.attempt + 1,
                score=round(score, 4),
                score_breakdown=breakdown,
                previous_agent_id=m.from_agent,
                reservation=_reservation(s, t, b),
            )
        )
        ctx.touch(m.from_agent, "task_rebalanced")
        ctx.touch(b.id, "task_assigned")


def _reservation(s: HiveState, t: Task, b: Agent) -> Reservation | None:
    if b.quota is None and t.owner not in s.budgets:
        return None
    return quotas.reservation(s, t, b.quota)


def hive_mean_ms(s: HiveState, task_type: str) -> float | None:
    """The mean observed duration of ``task_type`` over every agent (None: never completed)."""
    total, n = 0.0, 0
    for a in s.agents.values():
        st = a.type_stats.get(task_type)
        if st is not None and st.completed:
            total += st.total_ms
            n += st.completed
    return total / n if n else None
