"""Agent decisions: registering (and re-registering), updates, removal, heartbeats,
disconnects, eviction, and recovery after a restart.

Every decision validates first and raises a ``HiveError`` before it emits
anything. Hearing from an agent (``Decision.see``) is the one volatile change a
decision makes itself: heartbeats are not logged.
"""

from __future__ import annotations

import heapq
from datetime import datetime

from . import events as ev
from .commands import (
    AgentDisconnected,
    EvictAgent,
    Heartbeat,
    Recover,
    RegisterAgent,
    RemoveAgent,
    UpdateAgent,
)
from .context import Decision, see
from .cycles import complete_cycle
from .errors import InvalidInput, QuotaNotFound
from .learning import merge_capabilities
from .model import ONLINE, Agent, AgentMetrics, AgentStatus, Capability, TaskError, TaskStatus
from .state import HiveState
from .tasks import fail_attempt

__all__ = [
    "clamp_replayed",
    "on_disconnected",
    "on_evict",
    "on_heartbeat",
    "on_recover",
    "on_register",
    "on_remove",
    "on_update",
    "refresh_liveness",
]

TS = TaskStatus
AS = AgentStatus


def _check_capability_names(caps: list[Capability]) -> None:
    """One entry per capability name: the capability index and matching key on the
    name, so a second entry would shadow the first (and tasks could pend forever)."""
    seen: set[str] = set()
    for c in caps:
        if c.name in seen:
            raise InvalidInput(f"capability {c.name!r} is listed more than once", capability=c.name)
        seen.add(c.name)


def on_register(ctx: Decision, cmd: RegisterAgent) -> None:
    s, now = ctx.s, ctx.now
    spec = cmd.spec
    _check_capability_names(spec.capabilities)
    if spec.quota is not None and spec.quota not in s.quotas:
        raise QuotaNotFound(
            f"no quota pool {spec.quota}: create it with PUT /api/quotas/{spec.quota} first",
            quota=spec.quota,
        )
    existing = s.agents.get(spec.id) if spec.id else None
    if existing is None:
        agent = Agent(
            id=spec.id or s._new_id(),
            name=spec.name,
            type=spec.type,
            capabilities=merge_capabilities([], spec.capabilities),
            status=AS.IDLE,
            max_concurrent_tasks=spec.max_concurrent_tasks,
            created_at=now,
            last_seen_at=now,
            metrics=AgentMetrics(),
            metadata=dict(spec.metadata),
            quota=spec.quota,
            prefetch=spec.prefetch,
        )
        ctx.emit(ev.AgentCreated(timestamp=now, agent=agent))
        return
    a = existing
    # Every reconnect and hub restart registers again with the agent's own
    # numbers: they are priors, and an unchanged prior keeps what was learned.
    capabilities = merge_capabilities(a.capabilities, spec.capabilities)
    if (a.name, a.capabilities, a.max_concurrent_tasks, a.quota, a.prefetch) != (
        spec.name,
        capabilities,
        spec.max_concurrent_tasks,
        spec.quota,
        spec.prefetch,
    ):
        ctx.emit(
            ev.AgentUpdated(
                timestamp=now,
                agent_id=a.id,
                name=spec.name,
                capabilities=capabilities,
                max_concurrent_tasks=spec.max_concurrent_tasks,
                quota=(spec.quota or "") if spec.quota != a.quota else None,
                prefetch=spec.prefetch if spec.prefetch != a.prefetch else None,
            )
        )
    ctx.see(a)
    if cmd.running is not None:
        # The agent tells us what it still runs; a running attempt it does not
        # know about was lost with its previous connection.
        for task_id in list(a.current_tasks):
            t = s.tasks[task_id]
            if t.status in (TS.RUNNING, TS.INPUT_REQUIRED) and cmd.running.get(task_id) != t.attempt:
                fail_attempt(
                    ctx,
                    t,
                    TaskError("AGENT_LOST", "the agent reconnected without this task"),
                    retryable=True,
                    kind="agent_lost",
                )
    if a.status == AS.OFFLINE:
        ctx.emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "reconnected")
    s._dirty = True


def on_update(ctx: Decision, cmd: UpdateAgent) -> None:
    a = ctx.s._agent(cmd.agent_id)
    p = cmd.patch
    if p.name is None and p.capabilities is None and p.max_concurrent_tasks is None:
        raise InvalidInput("nothing to update", agent_id=a.id)
    if p.capabilities is not None:
        _check_capability_names(p.capabilities)
    ctx.emit(
        ev.AgentUpdated(
            timestamp=ctx.now,
            agent_id=a.id,
            name=p.name,
            capabilities=merge_capabilities(a.capabilities, p.capabilities)
            if p.capabilities is not None
            else None,
            max_concurrent_tasks=p.max_concurrent_tasks,
        )
    )


def on_remove(ctx: Decision, cmd: RemoveAgent) -> None:
    s = ctx.s
    a = s._agent(cmd.agent_id)
    moved = 0
    for task_id in list(a.current_tasks):
        t = s.tasks[task_id]
        ctx.emit(
            ev.TaskReleased(
                timestamp=ctx.now,
                task_id=t.id,
                agent_id=a.id,
                attempt_number=t.attempt,
                reason="agent_removed",
                usage=s._attempt_usage.get(t.id),
            )
        )
        moved += 1
    ctx.emit(
        ev.AgentRemoved(
            timestamp=ctx.now,
            agent_id=a.id,
            reason=cmd.reason,
            cleanup_summary=ev.CleanupSummary(tasks_reassigned=moved, data_removed=True),
        )
    )


def on_heartbeat(ctx: Decision, cmd: Heartbeat) -> None:
    a = ctx.s._agent(cmd.agent_id)
    ctx.see(a)
    if a.status == AS.OFFLINE:
        ctx.emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "heartbeat")
        ctx.s._dirty = True


def on_disconnected(ctx: Decision, cmd: AgentDisconnected) -> None:
    a = ctx.s.agents.get(cmd.agent_id)
    if a is None:
        return
    ctx.see(a)
    if a.status in ONLINE:
        # Its tasks stay held for one heartbeat timeout: a quick reconnect keeps them.
        ctx.emit_status(a, AS.OFFLINE, "disconnected")


def on_evict(ctx: Decision, cmd: EvictAgent) -> None:
    s = ctx.s
    a = s._agent(cmd.agent_id)
    if a.status in ONLINE:
        ctx.emit_status(a, AS.OFFLINE, cmd.reason)
    # Unlike a disconnect, nothing is held for a reconnect: the connection that
    # could come back with these attempts is the one that lost its access.
    for task_id in list(a.current_tasks):
        fail_attempt(
            ctx,
            s.tasks[task_id],
            TaskError("AGENT_LOST", f"agent {a.id} lost its access ({cmd.reason})", {"agent_id": a.id}),
            retryable=True,
            kind="agent_lost",
        )
    s._dirty = True


def on_recover(ctx: Decision, cmd: Recover) -> None:
    s = ctx.s
    for cycle_id in list(s.cycles):
        complete_cycle(ctx, cycle_id)
    clamp_replayed(s, ctx.mono)
    for a in list(s.agents.values()):
        ctx.see(a)
        if a.status in ONLINE:
            ctx.emit_status(a, AS.OFFLINE, "hub_restarted")


# ---------------------------------------------------------------- volatile liveness


def refresh_liveness(s: HiveState, now: datetime, mono: float) -> None:
    """Volatile: count every agent as heard from now (a replica took over the
    scheduler; agents connected elsewhere are alive and get one heartbeat
    timeout to show it). Changes no logged state."""
    clamp_replayed(s, mono)
    for a in s.agents.values():
        see(s, a, now, mono)


def clamp_replayed(s: HiveState, mono: float) -> None:
    """After folding the log (restart, failover): a logged time converted to the
    monotonic axis may lie ahead of ``mono`` if the wall clock was stepped back
    since it was logged. Nothing has happened in the future: clamp to now, so an
    agent or a held task gets at most one window from now, never a longer one."""
    for k, v in s._seen.items():
        if v > mono:
            s._seen[k] = mono
    # the one liveness entry per agent is due from its (possibly clamped) _seen
    hb = s.config.heartbeat_timeout
    s._liveness = [(s._seen[k] + hb, k) for k in s._live_armed if k in s._seen]
    heapq.heapify(s._liveness)
    for k, v in s._held_since.items():
        if v > mono:
            s._held_since[k] = mono
            t = s.tasks[k]
            heapq.heappush(s._deadlines, (mono + t.timeout_seconds, t.id, t.attempt))
