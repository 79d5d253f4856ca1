"""The hive: a pure state machine over agents and tasks.

Call order (see ``docs/architecture.md``)::

    events = hive.handle(cmd, now, mono)  # validate (raise HiveError, nothing changed) then decide
    # ... adapter persists `events`, then publishes them
    hive.next_deadline()                  # the monotonic reading at which to send Tick next

``handle`` runs the command's decision with a :class:`~hivehub.core.context.Decision`,
which applies each event it emits at once (``apply`` is the only mutator of
projected state), so later decisions in the same command see earlier ones.
Replaying the log is ``apply`` over it.

Two clocks (``docs/architecture.md``, "Time"): every command brings the wall
clock ``now`` (logged timestamps, days in the status) and a monotonic reading
``mono`` (seconds on any fixed axis). Every duration and deadline -- liveness,
task timeouts, retry delays, execution times, rebalancing and learning
intervals -- is measured on the monotonic axis, so a step of the system clock
changes no decision. Logged wall times enter that axis through ``_at``
(``state.py``).

The :class:`Hive` only composes; the parts, by responsibility::

    config.py        HiveConfig and its parts
    state.py         every field (projection, timers, volatile) and the reads
    projection.py    apply: the appliers        indexes.py  the scheduler's indexes, the timers
    readyqueue.py    one ready group's entries in order (run + heap)
    transitions.py   the task and agent (start, finish) tables
    context.py       Decision: one command's readings, emit
    agents.py        agent decisions            tasks.py    task decisions
    cycles.py        learning-cycle decisions   scheduler.py assignment, idle <-> active
    quotas.py        quota pools, budgets, why a task waits    usage.py  pricing, usage totals
    human.py         approval, a person's input
    tick.py          time: retries, timeouts, liveness, rebalancing
    learning.py, coordination.py, observations.py, policies.py   pure rules
    rounding.py      round3/round4: round(x, n) of a float without the decimal round trip
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from . import agents, cycles, human, quotas, tasks, tick
from . import events as ev
from .commands import (
    AgentDisconnected,
    ApproveTask,
    CancelTask,
    Command,
    CompleteLearning,
    CompleteTask,
    DeleteBudget,
    DeleteQuota,
    EvictAgent,
    FailTask,
    Heartbeat,
    Observe,
    ProvideInput,
    Recover,
    RegisterAgent,
    RejectTask,
    ReleaseTask,
    RemoveAgent,
    ReportProgress,
    RequestInput,
    ResetLearning,
    RetryTask,
    SetBudget,
    SetQuota,
    StartTask,
    SubmitTask,
    SubmitTasks,
    Tick,
    UpdateAgent,
)
from .config import HiveConfig
from .context import Decision
from .errors import FactsRequired, InvalidInput
from .model import Cycle, Task, TaskStatus
from .observations import OBSERVATIONS, alert_key, is_cleared, same_alert
from .projection import Projection
from .scheduler import conclude
from .transitions import AGENT_TRANSITIONS, TASK_TRANSITIONS, check_task_transition

__all__ = [
    "AGENT_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Cycle",
    "Hive",
    "HiveConfig",
    "check_task_transition",
]


def _on_observe(ctx: Decision, cmd: Observe) -> None:
    """Record an adapter's observation: a module status only when it changes, an
    alert only when raised, changed or cleared (``observations.py``)."""
    d = cmd.data
    if not isinstance(d, OBSERVATIONS):
        raise InvalidInput(f"{d.TYPE} is not an observation")
    s = ctx.s
    if isinstance(d, ev.ModuleStatusChanged) and s.modules.get(d.module, "healthy") == d.new_status:
        return  # no change: nothing to record
    key = alert_key(d)
    if key is not None:
        active = s.alerts.get(key)
        if is_cleared(d):
            if active is None:
                return  # clearing what is not active
        elif active is not None and same_alert(active, d):
            return  # raising what already is, unchanged (a changed one is an update)
    ctx.emit(msgspec.structs.replace(d, timestamp=ctx.now))


#: the decision for each command
HANDLERS: dict[type[Command], Callable[[Decision, Any], None]] = {
    RegisterAgent: agents.on_register,
    UpdateAgent: agents.on_update,
    RemoveAgent: agents.on_remove,
    Heartbeat: agents.on_heartbeat,
    AgentDisconnected: agents.on_disconnected,
    EvictAgent: agents.on_evict,
    Recover: agents.on_recover,
    SubmitTask: tasks.on_submit,
    SubmitTasks: tasks.on_submit_many,
    CancelTask: tasks.on_cancel,
    RetryTask: tasks.on_retry,
    StartTask: tasks.on_start,
    ReportProgress: tasks.on_progress,
    CompleteTask: tasks.on_complete,
    FailTask: tasks.on_fail,
    ReleaseTask: tasks.on_release,
    Tick: tick.on_tick,
    CompleteLearning: cycles.on_complete_learning,
    ResetLearning: cycles.on_reset_learning,
    Observe: _on_observe,
    SetQuota: quotas.on_set_quota,
    DeleteQuota: quotas.on_delete_quota,
    SetBudget: quotas.on_set_budget,
    DeleteBudget: quotas.on_delete_budget,
    ApproveTask: human.on_approve,
    RejectTask: human.on_reject,
    RequestInput: human.on_request_input,
    ProvideInput: human.on_provide_input,
}


class Hive(Projection):
    """The I/O-free core: ``handle`` decides, ``apply`` folds (see the module docstring)."""

    def __init__(
        self,
        config: HiveConfig | None = None,
        *,
        new_id: Callable[[], str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config, new_id=new_id, rng=rng)

    def handle(
        self,
        cmd: Command,
        now: datetime,
        mono: float | None = None,
        *,
        facts: Mapping[str, TaskStatus | None] | None = None,
    ) -> list[ev.Event]:
        """Validate ``cmd`` and decide. Raises :class:`HiveError` before emitting
        anything when the command is not acceptable; otherwise returns the events
        (already applied), including assignments the scheduler made after it.

        Call order: ``ids = hive.unknown_task_ids(cmd)``; when not empty, read their
        final statuses from the log (after it holds everything applied so far), then
        ``handle(cmd, now, mono, facts=...)`` with nothing applied in between.

        Args:
            now: the wall clock; stamps the events.
            mono: a monotonic reading (seconds) that every duration and deadline is
                measured on. ``None``: ``now`` on the replay axis (``now - mono_offset``),
                for callers with one clock (tests, tools).
            facts: for each id of ``unknown_task_ids(cmd)``, the final status the log
                folds for it, or ``None`` when the log has no such task.

        Raises:
            FactsRequired: an id of ``unknown_task_ids(cmd)`` is missing from ``facts``
                (nothing changed)."""
        if self.forgotten:
            missing = self.unknown_task_ids(cmd, facts)
            if missing:
                raise FactsRequired(missing)
        mono = mono if mono is not None else now.timestamp() - self.mono_offset
        ctx = Decision(self, self.apply, now, mono, cmd.id, self._backoff)
        self._now, self._mono = now, mono  # appliers convert logged times relative to these
        self._facts = dict(facts) if facts else {}
        try:
            HANDLERS[type(cmd)](ctx, cmd)
            conclude(ctx, tick=isinstance(cmd, Tick))
            return ctx.out
        finally:
            self._now = self._mono = self._facts = None

    def unknown_task_ids(
        self, cmd: Command, facts: Mapping[str, TaskStatus | None] | None = None
    ) -> tuple[str, ...]:
        """The task ids ``cmd`` names that only the log can tell about now: neither in
        memory nor remembered (``remember_evicted``), nor already in ``facts``.
        Always empty until the core has forgotten something; never a hub-generated
        id. The caller passes their final statuses to :meth:`handle` as ``facts``."""
        if not self.forgotten:
            return ()
        known = facts or {}
        out = {
            i: None for i in tasks.named_task_ids(self, cmd) if not self.is_remembered(i) and i not in known
        }
        return tuple(out)

    def refresh_liveness(self, now: datetime, mono: float) -> None:
        """Volatile: count every agent as heard from now (a replica took over the
        scheduler; agents connected elsewhere are alive and get one heartbeat
        timeout to show it). Changes no logged state."""
        agents.refresh_liveness(self, now, mono)

    def blocked_reason(self, t: Task, now: datetime) -> str | None:
        """Why a task waits, derived at read time (``quotas.blocked_reason``)."""
        return quotas.blocked_reason(self, t, now)

    @staticmethod
    def alert_key(d: ev.EventData) -> str | None:
        return alert_key(d)
