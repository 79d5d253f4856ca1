"""Scheduling decisions: which ready task goes to which agent, and idle <-> active.

:func:`schedule` assigns the globally first ready task among the groups some
agent could take, to the best-scoring eligible agent, until no group can make
progress. It runs at the end of every command, only when something marked the
hive dirty, and only reads the indexes (``indexes.py``): each assignment is an
event, and applying it updates the queue and the agent's heap entries.

A pick reads up to ``PICK_K`` agents that meet every requirement from the
free-agent heap of the rarest required capability (in heap order, without
popping), scores them fully (mean proficiency over all requirements, the retry
penalty) and takes the best. For a single requirement this is the exact best
agent; for several it is the best among the top ``PICK_K`` by the first one.

Quotas and budgets (``quotas.py``): a group whose head task does not fit its
owner's budget is blocked (the groups are per owner, so no other owner's work
waits on it); ``pick_agent`` skips agents whose pool has no room for the task
(or is paused). When the blocking clears with time (a bucket refills, a pause
ends, a new UTC day), the earliest such moment is kept as ``_wake_at`` so
``next_deadline`` brings a Tick then.
"""

from __future__ import annotations

from heapq import heappop, heappush

from . import cycles, prefetch, quotas
from . import events as ev
from . import usage as us
from .context import Decision
from .model import Agent, AgentStatus, Task
from .policies import score_agent
from .rounding import round4
from .state import HiveState, ReadyKey

__all__ = ["PICK_K", "conclude", "pick_agent", "schedule", "settle"]

AS = AgentStatus
# (members bound once: an attribute of an Enum class costs ~150 ns on Python 3.11)
_IDLE, _ACTIVE = AS.IDLE, AS.ACTIVE
_TAKES_WORK = frozenset({_IDLE, _ACTIVE})

#: agents meeting the requirements that one pick compares by full score
PICK_K = 8


def pick_agent(
    s: HiveState,
    t: Task,
    mono: float | None = None,
    full_pools: set[str] | None = None,
    tokens: int | None = None,
) -> tuple[Agent, float, dict[str, float], int] | None:
    """The best eligible agent for ``t``: (agent, score, breakdown, agents compared), or None.

    With ``mono``, an agent whose quota pool has no room at ``mono`` for an attempt
    of ``tokens`` is skipped, and its pool added to ``full_pools``."""
    if not s._eligible:
        return None  # every agent is busy, offline or draining
    req = t.required_capabilities
    free = s._free
    if not req:
        key = ""
    elif len(req) == 1:
        key = req[0].name
    else:
        key = min((r.name for r in req), key=lambda n: len(free.get(n, ())))
    heap = free.get(key)
    if not heap:
        return None
    found: list[Agent] = []
    ver = s._ver
    agents = s.agents
    # one requirement (the common case): Agent.meets inline
    one = req[0] if len(req) == 1 else None
    # The entries in heap order without popping (indexes.in_order, inline: this
    # runs once per assignment)
    n = len(heap)
    frontier = [(heap[0], 0)]
    while frontier:
        (_, agent_id, version), i = heappop(frontier)
        c = 2 * i + 1
        if c < n:
            heappush(frontier, (heap[c], c))
            if c + 1 < n:
                heappush(frontier, (heap[c + 1], c + 1))
        if ver.get(agent_id) != version:
            continue  # stale: the agent changed since (a fresh entry exists if it is free)
        a = agents[agent_id]
        if one is not None:
            for cap in a.capabilities:  # the first of that name, as Agent.capability
                if cap.name == one.name:
                    ok = not cap.proficiency < one.min_proficiency
                    break
            else:
                ok = False
        else:
            ok = not req or a.meets(req)
        if ok:
            if mono is not None and a.quota is not None and tokens is not None:
                if not quotas.has_room(s, a.quota, tokens, mono):
                    if full_pools is not None:
                        full_pools.add(a.quota)
                    continue
            found.append(a)
            if len(found) >= PICK_K:
                break
    best: tuple[bool, float, str, Agent, dict[str, float]] | None = None
    weights = s.config.weights
    for a in found:
        score, breakdown = score_agent(a, t, weights)
        # a free slot beats a place in a prefetch queue (core/prefetch.py would recall it)
        slot = len(a.current_tasks) < a.max_concurrent_tasks
        # ties: the lower agent id, so the choice is deterministic given the log
        if best is None or (slot, score) > best[:2] or ((slot, score) == best[:2] and a.id < best[2]):
            best = (slot, score, a.id, a, breakdown)
    if best is None:
        return None
    return best[3], best[1], best[4], len(found)


def schedule(ctx: Decision) -> None:
    s = ctx.s
    if not s._dirty:
        return
    blocked: set[ReadyKey] = set()
    wakes: list[float] = []
    limited = bool(s.quotas or s.budgets)
    day = us.utc_day(ctx.now) if limited else None
    while s._eligible:  # nobody can take work: no need to look at the queue
        # The globally first ready task among groups that some agent could take
        # (the top of every ready heap is current: indexes.clean_ready).
        head: tuple[float, int, str] | None = None
        head_sig: ReadyKey | None = None
        for sig, queue in s._ready.items():
            if sig not in blocked:
                run, heap = queue.run, queue.heap  # (ReadyQueue.top, inline)
                top = heap[0] if heap and (not run or heap[0] < run[0]) else run[0]
                if head is None or top < head:
                    head, head_sig = top, sig
        if head is None or head_sig is None:
            break
        t = s.tasks[head[2]]
        reservation = None
        if not limited:  # (no pool and no budget: the hot path of a hive without LLM agents)
            pick = pick_agent(s, t)
            if pick is None:
                blocked.add(head_sig)
                continue
        else:
            res = quotas.reservation(s, t, None)
            assert day is not None
            if not quotas.fits_budget(s, t.owner, res, day):
                blocked.add(head_sig)
                wakes.append(s._at(quotas.next_midnight(ctx.now)))
                continue
            full: set[str] = set()
            pick = pick_agent(s, t, ctx.mono, full, res.tokens)
            if pick is None:
                blocked.add(head_sig)
                for name in full:
                    when = quotas.room_at(s, name, res.tokens, ctx.mono)
                    if when is not None:
                        wakes.append(when)
                continue
            if pick[0].quota is not None or t.owner in s.budgets:
                res.quota = pick[0].quota
                reservation = res
        agent, score, breakdown, n = pick
        if t.attempt >= 1:
            reason = (
                "retry_different_agent" if t.failed_agents and agent.id not in t.failed_agents else "retry"
            )
        else:
            reason = "capability_match" if t.required_capabilities else "available_agent"
        ctx.emit(
            ev.TaskAssigned(
                timestamp=ctx.now,
                task_id=t.id,
                agent_id=agent.id,
                assignment_reason=reason,
                estimated_completion=ctx.estimate(agent, t),
                attempt_number=t.attempt + 1,
                score=round4(score),
                score_breakdown=breakdown,
                candidates=n,
                reservation=reservation,
                prefetched=len(agent.current_tasks) >= agent.max_concurrent_tasks,
            )
        )
        ctx.touch(agent.id, "task_assigned")
    s._dirty = False
    if (s.budgets or s.alerts) and quotas.budget_alerts(ctx):
        wakes.append(s._at(quotas.next_midnight(ctx.now)))
    s._wake_at = min(wakes) if wakes else None


def settle(ctx: Decision) -> None:
    """idle <-> active follows load. Computed once per command, after scheduling,
    so a completion immediately followed by a new assignment does not flap."""
    agents = ctx.s.agents
    for agent_id, reason in ctx.touched.items():
        a = agents.get(agent_id)
        if a is None or a.status not in _TAKES_WORK:
            continue
        want = _ACTIVE if a.current_tasks else _IDLE
        if want != a.status:
            ctx.emit_status(a, want, reason)


def conclude(ctx: Decision, *, tick: bool = False) -> None:
    """What follows every command: assign what can be, settle the agents it
    touched, start the learning cycles that are due (for every agent on a Tick)."""
    schedule(ctx)
    prefetch.recall(ctx)
    settle(ctx)
    s = ctx.s
    if s.outcomes and s.config.learning.enabled:  # (else maybe_learn has nothing to do)
        cycles.maybe_learn(ctx, None if tick else list(ctx.touched))
    ctx.touched = {}
