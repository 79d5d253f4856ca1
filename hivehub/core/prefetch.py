"""Prefetch: work assigned ahead of a free slot, and recalled when another agent could run it now.

An agent that announces ``prefetch`` (``AgentSpec.prefetch``, the SDK's default is
16) is given up to ``Agent.prefetch_depth`` tasks beyond its slots: the scheduler
counts them in ``Agent.free_slots``, marks such an assignment
``task_assigned.prefetched``, and the agent queues the task and starts it when a
slot frees, so a slot never waits a round trip to the hub. The depth is sized
from the agent's measured mean task time (``model.PREFETCH_WINDOW_MS``): one
task until a task completed, up to ``prefetch`` for fast ones.

A prefetched task that has not started is recalled (:func:`recall`, at the end
of every command) when an online agent that meets its requirements has a slot
free and nothing assigned to fill it. A recall is a ``task_recalled`` event, not
a move: the task stays with its holder, which answers with ``task_released``
(reason ``recalled``) if it has not started the task, and then the scheduler
assigns it like any ready task (to the idle agent, which now scores best). A
holder that started it meanwhile (its ``task_started`` crossed the recall)
just runs it. Moving the task at once instead could run it twice: the hub
cannot tell an unstarted task from one whose start is on the wire.

One recall is open per free slot of the idle agent (``HiveState._recalls``),
and a recall is answered (dropped) by the task's next status change; a holder
that goes offline forgets its open recalls (they are asked again once it is back).
"""

from __future__ import annotations

from collections import Counter

from . import events as ev
from . import quotas
from .context import Decision
from .model import Agent, AgentStatus, Task, TaskStatus
from .policies import score_agent
from .state import HiveState

__all__ = ["recall"]

TS = TaskStatus
AS = AgentStatus


def recall(ctx: Decision) -> None:
    """Recall prefetched unstarted tasks for agents that have a slot free and nothing to fill it."""
    s = ctx.s
    if not s._over or not s._open:
        return  # (the hot path: nobody holds prefetched work, or nobody waits for work)
    wanted = Counter(for_agent for _, for_agent in s._recalls.values())
    for holder_id in list(s._over):
        z = s.agents[holder_id]
        if z.status not in (AS.IDLE, AS.ACTIVE, AS.LEARNING) or not z.prefetch:
            # an offline holder gets no frame (its work comes back through liveness);
            # one that does not prefetch is over its slots only because they were
            # lowered, and would not know the frame
            continue
        excess = len(z.current_tasks) - z.max_concurrent_tasks
        # the newest assignments first: the holder starts its queue oldest first
        for task_id in reversed(z.current_tasks):
            if excess <= 0:
                break
            t = s.tasks[task_id]
            if t.status != TS.ASSIGNED:
                continue
            excess -= 1
            if task_id in s._recalls:
                continue
            x = _idle_agent(s, t, z, wanted, ctx.mono)
            if x is None:
                continue
            wanted[x.id] += 1
            ctx.emit(
                ev.TaskRecalled(
                    timestamp=ctx.now,
                    task_id=t.id,
                    agent_id=z.id,
                    attempt_number=t.attempt,
                    for_agent_id=x.id,
                )
            )


def _idle_agent(s: HiveState, t: Task, holder: Agent, wanted: Counter[str], mono: float) -> Agent | None:
    """The best-scoring agent other than ``holder`` with a slot free (not counting
    the recalls already open for it) that meets ``t``'s requirements; ties by id."""
    best: tuple[float, str, Agent] | None = None
    req = t.required_capabilities
    tokens = quotas.reservation(s, t, None).tokens if s.quotas else 0
    for agent_id in s._open:
        if agent_id == holder.id:
            continue
        a = s.agents[agent_id]
        if len(a.current_tasks) + wanted[agent_id] >= a.max_concurrent_tasks:
            continue
        if req and not a.meets(req):
            continue
        if a.quota is not None and s.quotas and not quotas.has_room(s, a.quota, tokens, mono):
            continue
        score, _ = score_agent(a, t, s.config.weights)
        if best is None or score > best[0] or (score == best[0] and a.id < best[1]):
            best = (score, a.id, a)
    return best[2] if best is not None else None
