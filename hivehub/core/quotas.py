"""Quota pools and budgets: what the scheduler may spend, and why a task waits.

**Pools** (``quota_set``): the provider limits an agent's model calls draw from
(``AgentSpec.quota``). Each limit per minute is a token bucket: it refills at
``limit / 60`` per second up to a capacity of 10 seconds' worth (at least 1). An
assignment is allowed when the level is at least ``min(cost, capacity)`` and may
take it negative (debt), so one task bigger than the capacity is not starved and
the long-run rate equals the limit. ``max_concurrent`` counts attempts in flight.
At ``task_assigned`` the attempt reserves 1 request and its token estimate
(``usage.estimate_tokens``); at the attempt's end it settles with the real usage
(the difference is debited or refunded; no usage reported: the reservation
stands, unless the attempt never started). A ``RATE_LIMITED`` failure pauses the
pool until its ``next_retry_at``. Every time comes from an event's timestamp
through ``HiveState._at``, so a replay folds the same levels.

**Budgets** (``budget_set``): per owner (``Task.owner``) per UTC day. An owner's
ready task runs only when what the owner spent today (folded from the usage of
ended attempts), plus what its attempts in flight reserve, plus this task's
reservation fits; else it waits (``blocked_reason == "budget"``), and the owner
gets one ``system_alert`` (``alert_key`` ``budget:<owner>``), cleared when its
tasks can run again (a new day, a raised or deleted budget). Since an admitted
attempt never pushes spent + reserved past the limit, the overspend is bounded by
what the attempts in flight use beyond their reservations (nothing, for tasks
whose ``max_tokens`` / ``max_cost_usd`` the agent enforces).

Reads (``has_room``, ``fits_budget``, ``blocked_reason``) are pure; the folds
(``hold``, ``end_attempt``, ``fold_quota``) are called by ``apply`` only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import msgspec

from . import events as ev
from . import usage as us
from .commands import DeleteBudget, DeleteQuota, SetBudget, SetQuota
from .errors import BudgetNotFound, InvalidInput, QuotaInUse, QuotaNotFound
from .model import ONLINE, Agent, Budget, Quota, Reservation, Task, TaskStatus, Usage, UsageTotals
from .pools import Bucket, DaySpend, Hold, Pool

if TYPE_CHECKING:
    from .context import Decision
    from .state import HiveState

__all__ = [
    "blocked_reason",
    "budget_alerts",
    "end_attempt",
    "fits_budget",
    "has_room",
    "hold",
    "on_delete_budget",
    "on_delete_quota",
    "on_set_budget",
    "on_set_quota",
    "reservation",
    "room_at",
]

#: seconds of a limit a bucket holds when full
BURST_SECONDS = 10.0
#: the pause of a RATE_LIMITED report that gives no retry_after
DEFAULT_RETRY_AFTER = 5.0


# ---------------------------------------------------------------- buckets


def _capacity(limit: int) -> float:
    return max(limit * BURST_SECONDS / 60.0, 1.0)


def _level(b: Bucket, limit: int, mono: float) -> float:
    return min(_capacity(limit), b.level + max(0.0, mono - b.at) * limit / 60.0)


def _debit(b: Bucket, limit: int, mono: float, amount: float) -> None:
    b.level = min(_capacity(limit), _level(b, limit, mono) - amount)
    b.at = max(b.at, mono)


def has_room(s: HiveState, name: str, tokens: int, mono: float) -> bool:
    """The pool admits one more attempt of ``tokens`` at ``mono``."""
    return room_at(s, name, tokens, mono) == mono


def room_at(s: HiveState, name: str, tokens: int, mono: float) -> float | None:
    """The earliest monotonic time (``mono`` or later) the pool admits an attempt of
    ``tokens``; ``None``: only an attempt ending makes room (``max_concurrent``)."""
    q = s.quotas.get(name)
    p = s._pools.get(name)
    if q is None or p is None:
        return mono  # not a pool (any more): no limit
    if q.max_concurrent is not None and p.in_flight >= q.max_concurrent:
        return None
    when = mono
    if p.paused_until is not None and p.paused_until > when:
        when = p.paused_until
    for b, limit, cost in ((p.requests, q.requests_per_minute, 1), (p.tokens, q.tokens_per_minute, tokens)):
        if b is None or limit is None:
            continue
        need = min(float(cost), _capacity(limit))
        level = _level(b, limit, when)
        if level < need:
            when = when + (need - level) * 60.0 / limit
    return when


# ---------------------------------------------------------------- budgets


def reservation(s: HiveState, t: Task, quota: str | None) -> Reservation:
    return us.reservation_for(t, s.usage_by_type.get(t.type), s.config.default_estimated_tokens, quota)


def fits_budget(s: HiveState, owner: str, res: Reservation, day: date) -> bool:
    """The owner's budget for ``day`` has room for ``res`` (no budget: always)."""
    b = s.budgets.get(owner)
    if b is None:
        return True
    spent = s._spent.get(owner)
    spent_tokens, spent_cost = (
        (spent.tokens, spent.cost_usd) if spent is not None and spent.day == day else (0, 0.0)
    )
    h = s._reserved.get(owner) or Hold()
    if b.tokens_per_day is not None and spent_tokens + h.tokens + res.budget_tokens > b.tokens_per_day:
        return False
    return b.cost_usd_per_day is None or spent_cost + h.cost_usd + res.cost_usd <= b.cost_usd_per_day + 1e-12


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(us.utc_day(now) + timedelta(days=1), time(), UTC)


def _budget_blocked(s: HiveState, owner: str, day: date) -> bool:
    """Some ready group of the owner waits on its budget (its head does not fit)."""
    if owner not in s.budgets:
        return False
    for (o, _), heap in s._ready.items():
        if o == owner and heap:
            t = s.tasks[heap.top()[2]]
            if not fits_budget(s, owner, reservation(s, t, None), day):
                return True
    return False


def budget_alerts(ctx: Decision) -> bool:
    """Raise ``budget:<owner>`` when an owner's ready work waits on its budget, and
    clear it once it no longer does (called after every scheduling pass).
    Returns whether some owner waits (then the next UTC midnight wakes the scheduler)."""
    s = ctx.s
    owners = set(s.budgets) | {k[7:] for k in s.alerts if k.startswith("budget:")}
    day = us.utc_day(ctx.now)
    any_blocked = False
    for owner in sorted(owners):
        key = f"budget:{owner}"
        blocked = _budget_blocked(s, owner, day)
        any_blocked = any_blocked or blocked
        active = key in s.alerts
        if blocked == active:
            continue
        b = s.budgets.get(owner)
        ctx.emit(
            ev.SystemAlert(
                timestamp=ctx.now,
                level="warning" if blocked else "info",
                title="Budget exhausted" if blocked else "Budget available",
                message=f"tasks of {owner} wait: its daily budget is spent"
                if blocked
                else f"tasks of {owner} can run again",
                details={
                    "owner": owner,
                    "tokens_per_day": b.tokens_per_day if b else None,
                    "cost_usd_per_day": b.cost_usd_per_day if b else None,
                },
                alert_key=key,
                state="active" if blocked else "cleared",
            )
        )
    return any_blocked


# ---------------------------------------------------------------- why a task waits


def blocked_reason(s: HiveState, t: Task, now: datetime) -> str | None:
    """Why a task is not running (derived at read time, never stored): ``"approval"``,
    ``"input"`` (its agent waits for a person's answer),
    ``"dependencies"``, ``"budget"``, ``"quota:<name>"`` (every online candidate's pool
    is out of room or paused), ``"no_agent"`` (no online agent meets the
    requirements), else ``None`` (waiting its turn, a retry delay, or running)."""
    if t.status == TaskStatus.AWAITING_APPROVAL:
        return "approval"
    if t.status == TaskStatus.INPUT_REQUIRED:
        return "input"
    if t.status != TaskStatus.PENDING:
        return None
    if not s._deps_met(t):
        return "dependencies"
    res = reservation(s, t, None)
    if not fits_budget(s, t.owner, res, us.utc_day(now)):
        return "budget"
    cands = [a for a in s._candidates(t.required_capabilities) if a.status in ONLINE]
    if not cands:
        return "no_agent"
    mono = s._at(now)
    pools: set[str] = set()
    for a in cands:
        if a.quota is None or has_room(s, a.quota, res.tokens, mono):
            return None
        pools.add(a.quota)
    return f"quota:{min(pools)}"


# ---------------------------------------------------------------- reads for adapters


def pool_reading(s: HiveState, name: str) -> tuple[int, datetime | None]:
    """A pool's attempts in flight and the wall time its pause ends (``None``: not paused)."""
    p = s._pools.get(name)
    if p is None:
        return 0, None
    until = None
    if p.paused_until is not None:
        until = datetime.fromtimestamp(p.paused_until + s.mono_offset, UTC)
    return p.in_flight, until


def budget_reading(s: HiveState, owner: str, now: datetime) -> tuple[date, int, float, int, float, bool]:
    """An owner's budget on ``now``'s UTC day: (day, spent tokens, spent cost,
    reserved tokens, reserved cost, blocked: some ready task of it waits on it)."""
    day = us.utc_day(now)
    spent = s._spent.get(owner)
    st, sc = (spent.tokens, spent.cost_usd) if spent is not None and spent.day == day else (0, 0.0)
    h = s._reserved.get(owner) or Hold()
    return day, st, sc, h.tokens, h.cost_usd, _budget_blocked(s, owner, day)


# ---------------------------------------------------------------- folds (apply only)


def hold(s: HiveState, t: Task, res: Reservation, at: datetime) -> None:
    """``task_assigned``: the attempt takes its reservation."""
    s._reservations[t.id] = (t.owner, res)
    h = s._reserved.setdefault(t.owner, Hold())
    h.tokens += res.budget_tokens
    h.cost_usd = round(h.cost_usd + res.cost_usd, 9)
    h.attempts += 1
    q = s.quotas.get(res.quota) if res.quota is not None else None
    p = s._pools.get(res.quota) if res.quota is not None else None
    if q is None or p is None:
        return
    mono = s._at(at)
    p.in_flight += 1
    if p.requests is not None and q.requests_per_minute is not None:
        _debit(p.requests, q.requests_per_minute, mono, 1)
    if p.tokens is not None and q.tokens_per_minute is not None:
        _debit(p.tokens, q.tokens_per_minute, mono, res.tokens)


def end_attempt(s: HiveState, t: Task, d: ev.EventData) -> None:
    """The held attempt of ``t`` ends (or moves, for a rebalancing ``task_assigned``):
    fold its usage into the totals and settle its reservation. Called before the
    event is folded into the task (``t.status`` is the attempt's)."""
    u: Usage | None = getattr(d, "usage", None)
    s._attempt_usage.pop(t.id, None)
    if u is not None:
        _fold_usage(s, t, getattr(d, "agent_id", None), u, d.timestamp)
    held = s._reservations.pop(t.id, None)
    if held is None:
        return
    owner, res = held
    h = s._reserved[owner]
    h.tokens -= res.budget_tokens
    h.cost_usd = round(h.cost_usd - res.cost_usd, 9)
    h.attempts -= 1
    if not h.attempts:
        del s._reserved[owner]
    q = s.quotas.get(res.quota) if res.quota is not None else None
    p = s._pools.get(res.quota) if res.quota is not None else None
    if q is None or p is None:
        return
    mono = s._at(d.timestamp)
    p.in_flight = max(0, p.in_flight - 1)
    started = t.status == TaskStatus.RUNNING
    limited = isinstance(d, ev.TaskFailed) and d.failure_kind in ev.RATE_LIMITED_KINDS
    # no usage reported: a started attempt keeps its reservation (it may have spent
    # it); one that never started, or that the provider refused (429), spent nothing
    actual = u.total_tokens if u is not None else (res.tokens if started and not limited else 0)
    if p.tokens is not None and q.tokens_per_minute is not None and actual != res.tokens:
        _debit(p.tokens, q.tokens_per_minute, mono, actual - res.tokens)
    if not started and u is None and p.requests is not None and q.requests_per_minute is not None:
        _debit(p.requests, q.requests_per_minute, mono, -1)  # never called the model: refund
    if limited and isinstance(d, ev.TaskFailed) and d.next_retry_at is not None:
        until = s._at(d.next_retry_at)
        if p.paused_until is None or until > p.paused_until:
            p.paused_until = until


def _fold_usage(s: HiveState, t: Task, agent_id: str | None, u: Usage, at: datetime) -> None:
    a: Agent | None = s.agents.get(agent_id) if agent_id is not None else None
    if a is not None:
        us.fold(a.metrics.usage, u)
    us.fold(s.usage_by_model.setdefault(u.model, UsageTotals()), u)
    us.fold(s.usage_by_type.setdefault(t.type, UsageTotals()), u)
    us.fold(s.usage_by_owner.setdefault(t.owner, UsageTotals()), u)
    day = us.utc_day(at)
    spent = s._spent.get(t.owner)
    if spent is None or day > spent.day:
        spent = s._spent[t.owner] = DaySpend(day)
    spent.tokens += u.total_tokens
    if u.cost_usd is not None:
        spent.cost_usd = round(spent.cost_usd + u.cost_usd, 9)


def fold_quota(s: HiveState, d: ev.QuotaSet) -> None:
    """``quota_set``: a new pool starts full; a changed one keeps its levels (refilled
    to now at the old rate, then capped at the new capacity)."""
    mono = s._at(d.timestamp)
    old = s.quotas.get(d.name)
    p = s._pools.setdefault(d.name, Pool())
    for attr, limit in (("requests", d.requests_per_minute), ("tokens", d.tokens_per_minute)):
        b: Bucket | None = getattr(p, attr)
        old_limit = getattr(old, f"{attr}_per_minute") if old is not None else None
        if limit is None:
            setattr(p, attr, None)
        elif b is None or old_limit is None:
            setattr(p, attr, Bucket(_capacity(limit), mono))
        else:
            setattr(p, attr, Bucket(min(_capacity(limit), _level(b, old_limit, mono)), max(b.at, mono)))
    s.quotas[d.name] = Quota(
        d.name, d.requests_per_minute, d.tokens_per_minute, d.max_concurrent, d.requested_by
    )
    s._dirty = True


# ---------------------------------------------------------------- decisions


def _check_limits(**limits: int | float | None) -> None:
    given = {k: v for k, v in limits.items() if v is not None}
    if not given:
        raise InvalidInput(f"set at least one of {', '.join(limits)}")
    for k, v in given.items():
        if isinstance(v, bool) or v <= 0 or (k != "cost_usd_per_day" and not isinstance(v, int)):
            raise InvalidInput(
                f"{k} must be a positive {'number' if k == 'cost_usd_per_day' else 'integer'}", **{k: v}
            )


def on_set_quota(ctx: Decision, cmd: SetQuota) -> None:
    if not cmd.name:
        raise InvalidInput("a quota pool needs a name")
    _check_limits(
        requests_per_minute=cmd.requests_per_minute,
        tokens_per_minute=cmd.tokens_per_minute,
        max_concurrent=cmd.max_concurrent,
    )
    q = ctx.s.quotas.get(cmd.name)
    limits = (cmd.requests_per_minute, cmd.tokens_per_minute, cmd.max_concurrent)
    if q is not None and (q.requests_per_minute, q.tokens_per_minute, q.max_concurrent) == limits:
        return  # unchanged: nothing to record
    ctx.emit(
        ev.QuotaSet(
            timestamp=ctx.now,
            name=cmd.name,
            requests_per_minute=cmd.requests_per_minute,
            tokens_per_minute=cmd.tokens_per_minute,
            max_concurrent=cmd.max_concurrent,
            requested_by=cmd.requested_by,
        )
    )


def on_delete_quota(ctx: Decision, cmd: DeleteQuota) -> None:
    s = ctx.s
    if cmd.name not in s.quotas:
        raise QuotaNotFound(f"no quota pool {cmd.name}", quota=cmd.name)
    users = sorted(a.id for a in s.agents.values() if a.quota == cmd.name)
    if users:
        raise QuotaInUse(
            f"quota pool {cmd.name} is in use by {len(users)} registered agent(s)",
            quota=cmd.name,
            agents=users[:20],
        )
    # an attempt in flight still holds a reservation of the pool (its agent may have
    # re-registered without it): a pool deleted now and created again would not know
    # it (in flight 0, the tokens never settled), so the pool stays until it ends
    held = sorted(tid for tid, (_, r) in s._reservations.items() if r.quota == cmd.name)
    if held:
        raise QuotaInUse(
            f"quota pool {cmd.name} is in use by {len(held)} attempt(s) in flight",
            quota=cmd.name,
            tasks=held[:20],
        )
    ctx.emit(ev.QuotaDeleted(timestamp=ctx.now, name=cmd.name, requested_by=cmd.requested_by))


def on_set_budget(ctx: Decision, cmd: SetBudget) -> None:
    if not cmd.owner:
        raise InvalidInput("a budget needs an owner")
    _check_limits(tokens_per_day=cmd.tokens_per_day, cost_usd_per_day=cmd.cost_usd_per_day)
    b = ctx.s.budgets.get(cmd.owner)
    if b is not None and (b.tokens_per_day, b.cost_usd_per_day) == (cmd.tokens_per_day, cmd.cost_usd_per_day):
        return
    ctx.emit(
        ev.BudgetSet(
            timestamp=ctx.now,
            owner=cmd.owner,
            tokens_per_day=cmd.tokens_per_day,
            cost_usd_per_day=cmd.cost_usd_per_day,
            requested_by=cmd.requested_by,
        )
    )


def on_delete_budget(ctx: Decision, cmd: DeleteBudget) -> None:
    if cmd.owner not in ctx.s.budgets:
        raise BudgetNotFound(f"no budget for {cmd.owner}", owner=cmd.owner)
    ctx.emit(ev.BudgetDeleted(timestamp=ctx.now, owner=cmd.owner, requested_by=cmd.requested_by))


def budget_of(d: ev.BudgetSet) -> Budget:
    return Budget(d.owner, d.tokens_per_day, d.cost_usd_per_day, d.requested_by)


def copy_totals(t: UsageTotals) -> UsageTotals:
    return msgspec.structs.replace(t)
