"""The projection: folding events into the hive's state. ``apply`` is its only mutator.

``Projection.apply(event)`` is what the live hive runs for every event it emits
(``context.py``) and what a replay, a follower or a rebuild after a failed
commit runs over the log: one code path, so both hold the same state. Each
applier changes the projection and the indexes the event touches
(``indexes.py``), and arms the timers it starts (retries, task deadlines); a
task's own fields follow the one rule of ``tasklog.update_task``.

``drain_timers(mono)`` is the one other mutation: time passing. It moves retries
that fell due into the ready queue (in the order their entries were made when
the failure was applied, so the moment of the move changes no decision) and
drops deadline entries whose moment has passed (a Tick has acted on each).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from . import events as ev
from . import indexes as ix
from . import quotas
from .learning import outcome_score, with_priors
from .model import HELD, ONLINE, TERMINAL, AgentStatus, Cycle, Task, TaskStatus, TypeStats
from .observations import alert_key, is_cleared
from .rounding import round3, round4
from .state import HiveState
from .tasklog import STATUS_AFTER, fold_event, new_task, status_after
from .transitions import TASK_TRANSITIONS, check_agent_transition, check_task_transition

__all__ = ["Projection"]

TS = TaskStatus
AS = AgentStatus
# The members the appliers compare with, bound once: on Python 3.11 every attribute
# of an Enum class goes through EnumType.__getattr__ (~150 ns, a global ~20 ns),
# and apply runs for every event.
_PENDING, _RUNNING, _COMPLETED, _FAILED, _CANCELLED, _INPUT_REQUIRED = (
    TS.PENDING,
    TS.RUNNING,
    TS.COMPLETED,
    TS.FAILED,
    TS.CANCELLED,
    TS.INPUT_REQUIRED,
)

#: events after which the agents they name are re-indexed (load, metrics, status or
#: capabilities changed) -> whether only the agent's load and metrics can have changed
#: (a task event: its status and capabilities did not, so its online entries stand)
_REINDEX: dict[type[ev.EventData], bool] = {
    ev.AgentCreated: False,
    ev.AgentUpdated: False,
    ev.AgentStatusChanged: False,
    ev.AgentRemoved: False,
    ev.TaskAssigned: True,
    ev.TaskCompleted: True,
    ev.TaskFailed: True,
    ev.TaskCancelled: True,
    ev.TaskReleased: True,
    ev.LearningCycleCompleted: False,
    ev.AgentLearningReset: False,
}


class Projection(HiveState):
    def apply(self, event: ev.Event) -> None:
        """Fold one event into the state. The only mutator of projected state.

        Raises ValueError on a sequence gap or duplicate, InvalidTransition on a
        status change its table does not allow (a log this core did not write)."""
        if event.sequence != self.sequence + 1:
            raise ValueError(f"event sequence {event.sequence} after {self.sequence}: gap or duplicate")
        self.sequence = event.sequence
        d = event.data
        kind = type(d)
        _APPLIERS[kind](self, d)
        if len(self._finished) > self.config.retain_finished:
            self._evict()
        load_only = _REINDEX.get(kind)
        if load_only is not None:
            agent_id = d.agent.id if kind is ev.AgentCreated else getattr(d, "agent_id", None)  # type: ignore[attr-defined]
            if agent_id is not None:
                ix.agent_changed(self, agent_id, load_only=load_only)
            if kind is ev.TaskAssigned and d.previous_agent_id:  # type: ignore[attr-defined]
                ix.agent_changed(self, d.previous_agent_id, load_only=True)  # type: ignore[attr-defined]

    def drain_timers(self, mono: float) -> None:
        """Time reached ``mono``: due retries become ready, past deadlines are dropped.

        Call order: a Tick drains retries before it decides, deadlines after it
        has acted on the due ones (``tick.py``)."""
        ix.drain_retries(self, mono)
        ix.drain_deadlines(self, mono)

    # ---------------------------------------------------------- task bookkeeping

    def _status_changed(self, t: Task, old: TaskStatus, at: datetime) -> None:
        """What a status change does beyond the task: counters, retention, queue, holds."""
        to = t.status
        if old in TERMINAL:
            self._finished.pop(t.id, None)  # retried: no longer finished
        elif to in TERMINAL:
            self._finished[t.id] = None
        counts = self.task_counts
        counts[old] = counts.get(old, 0) - 1
        counts[to] = counts.get(to, 0) + 1
        if to is not _PENDING and self._queued.pop(t.id, None) is not None:
            # (ix.dequeue, inline: it left the queue, its entry is stale -- dropped now if a top)
            ix.clean_ready(self, (t.owner, ix.signature(t)))
        if to not in HELD:
            self._held_since.pop(t.id, None)
        if self._recalls:
            self._recalls.pop(t.id, None)  # started, handed back, moved or ended: answered
        if old is _INPUT_REQUIRED:
            self._input_since.pop(t.id, None)
        if to is _COMPLETED:
            day, by_day = at.date(), self.completed_by_day
            by_day[day] = by_day.get(day, 0) + 1
        elif to is _FAILED:
            day, by_day = at.date(), self.failed_by_day
            by_day[day] = by_day.get(day, 0) + 1
        if to is _FAILED or to is _CANCELLED:
            # its dependents fail with it (decided by the command that ended it); a
            # dependent retried later waits on it again (_a_task_retried)
            self._waiting.pop(t.id, None)

    def _task_event(self, d: Any) -> tuple[Task, TaskStatus]:
        """Validate and fold a task event's own fields; returns the task and its old status."""
        t = self.tasks[d.task_id]
        old = t.status
        # (status_after, inline)
        to = STATUS_AFTER.get(type(d))
        if to is None and type(d) is ev.TaskFailed:
            to = status_after(d)
        if to is not None:
            if (old, to) not in TASK_TRANSITIONS:
                check_task_transition(t, to)  # raises
            if to is not _RUNNING and to is not _INPUT_REQUIRED:
                # the holder's slot is free (a rebalancing move: the previous holder's),
                # released before the fold forgets who held it; likewise its usage is
                # folded and its reservation settled
                if t.assigned_agent_id is not None:  # (_release_from_agent, inline)
                    a = self.agents.get(t.assigned_agent_id)
                    if a is not None and t.id in a.current_tasks:
                        a.current_tasks.remove(t.id)
                        self._dirty = True
                if old in HELD:
                    quotas.end_attempt(self, t, d)
        fold_event(t, d, to)
        if to is not None:
            self._status_changed(t, old, d.timestamp)
        return t, old

    def _release_from_agent(self, t: Task) -> None:
        """Free the agent's slot. ``assigned_agent_id`` stays (a finished task
        remembers who ran it) until the task is re-queued."""
        if t.assigned_agent_id is not None:
            a = self.agents.get(t.assigned_agent_id)
            if a is not None and t.id in a.current_tasks:
                a.current_tasks.remove(t.id)
                self._dirty = True

    def _queue(self, t: Task, at: datetime) -> None:
        """A task back in ``pending``: ready now, or at its retry time."""
        due = t.next_retry_at
        if due is not None and due > at:
            seq = ix.next_ready_seq(self)  # its place in the queue is taken now, not when it falls due
            heapq.heappush(self._delayed, (self._at(due), t.id, t.attempt, seq))
        elif self._deps_met(t):
            ix.enqueue(self, t)

    def _hold(self, t: Task, at: datetime) -> None:
        # (_at's first case inline: the command's own time is its monotonic reading)
        since = self._held_since[t.id] = (
            self._mono if at is self._now and self._mono is not None else self._at(at)
        )
        heapq.heappush(self._deadlines, (since + t.timeout_seconds, t.id, t.attempt))

    def _evict(self) -> None:
        """Drop the oldest finished tasks beyond ``retain_finished`` (called by ``apply``,
        so it depends on the log alone and a replay evicts the same tasks). A finished
        task holds no agent slot, queue entry or waiting dependent (all released when
        it finished); stale heap entries for it are skipped like any other.
        ``task_counts`` keep counting evicted tasks: they count every task.

        The evicted index is bounded too: beyond ``remember_evicted`` its oldest
        entries are forgotten, in eviction order (so a replay forgets the same),
        and counted. Inside ``handle`` what the command forgets joins its facts:
        it still knows the status of a task it validated a moment ago."""
        while len(self._finished) > self.config.retain_finished:
            task_id, _ = self._finished.popitem(last=False)
            t = self.tasks.pop(task_id)
            self.evicted[task_id] = t.status
            self._evicted_order.append(task_id)
            self._waiting.pop(task_id, None)
        while len(self._evicted_order) > self.config.remember_evicted:
            task_id = self._evicted_order.popleft()
            status = self.evicted.pop(task_id)
            self.forgotten += 1
            if self._facts is not None:
                self._facts[task_id] = status

    def _record_outcome(self, t: Task, agent_id: str, score: float) -> None:
        cfg = self.config.learning
        # Nothing reads outcomes but the cycles: with learning off, keep none.
        if not cfg.enabled or not t.required_capabilities or agent_id not in self.agents:
            return
        window = self.outcomes.setdefault(agent_id, {})
        for r in t.required_capabilities:
            scores = window.get(r.name)
            if scores is None:
                scores = window[r.name] = deque(maxlen=cfg.window)
            scores.append(score)

    # ---------------------------------------------------------- agent appliers

    def _a_agent_created(self, d: ev.AgentCreated) -> None:
        # Copy everything the projection mutates, so emitted events stay as they were.
        # (Capability objects are shared: they are replaced, never mutated.)
        src = d.agent
        a = msgspec.structs.replace(
            src,
            current_tasks=[],
            capabilities=with_priors(src.capabilities),
            metrics=msgspec.structs.replace(src.metrics, usage=msgspec.structs.replace(src.metrics.usage)),
            type_stats={k: msgspec.structs.replace(v) for k, v in src.type_stats.items()},
            metadata=dict(src.metadata),
        )
        self.agents[a.id] = a
        ix.index_agent(self, a)
        self._rebalance_trigger = "agent_joined"
        self._seen[a.id] = self._at(a.last_seen_at)
        self._learn_since[a.id] = self._at(a.created_at)
        if a.id not in self._live_armed:  # its one liveness entry (see Decision.see)
            self._live_armed.add(a.id)
            heapq.heappush(self._liveness, (self._seen[a.id] + self.config.heartbeat_timeout, a.id))
        self._dirty = True

    def _a_agent_updated(self, d: ev.AgentUpdated) -> None:
        a = self.agents[d.agent_id]
        if d.name is not None:
            a.name = d.name
        if d.capabilities is not None:
            ix.unindex_agent(self, a)
            a.capabilities = with_priors(d.capabilities)
            ix.index_agent(self, a)
        if d.max_concurrent_tasks is not None:
            a.max_concurrent_tasks = d.max_concurrent_tasks
        if d.quota is not None:
            a.quota = d.quota or None
        if d.prefetch is not None:
            a.prefetch = d.prefetch
        self._dirty = True

    def _a_agent_status(self, d: ev.AgentStatusChanged) -> None:
        a = self.agents[d.agent_id]
        new = AgentStatus(d.new_status)
        check_agent_transition(a, new)
        old, a.status = a.status, new
        if old == AS.OFFLINE and new in ONLINE:
            self._rebalance_trigger = "agent_joined"
            a.draining = False
        elif new == AS.OFFLINE:
            self._rebalance_trigger = "agent_left"
            if self._recalls:  # it gets no frame while away: asked again once back
                for task_id in [k for k in self._recalls if self.tasks[k].assigned_agent_id == a.id]:
                    del self._recalls[task_id]
        if {old, new} - {AS.IDLE, AS.ACTIVE}:
            self._dirty = True  # eligibility changed (idle <-> active does not change it)

    def _a_agent_removed(self, d: ev.AgentRemoved) -> None:
        self.outcomes.pop(d.agent_id, None)
        self.last_cycle_at.pop(d.agent_id, None)
        self._seen.pop(d.agent_id, None)
        self._learn_since.pop(d.agent_id, None)
        self._perf_at.pop(d.agent_id, None)
        a = self.agents.pop(d.agent_id)
        ix.unindex_agent(self, a)
        self._dirty = True

    def _a_agent_performance(self, d: ev.AgentPerformanceUpdated) -> None:
        # the metrics are folded from task_completed / task_failed; this event
        # reports them, and when (the least interval between reports runs from it)
        if d.agent_id in self.agents:
            self._perf_at[d.agent_id] = self._at(d.timestamp)

    # ---------------------------------------------------------- task appliers

    def _a_task_created(self, d: ev.TaskCreated) -> None:
        t = new_task(d, self.sequence)
        self.tasks[t.id] = t
        counts = self.task_counts
        counts[t.status] = counts.get(t.status, 0) + 1
        if t.status != TS.PENDING:
            return  # awaiting approval: it waits on its dependencies once approved
        unmet = [x for x in t.depends_on if x in self.tasks and self.tasks[x].status != TS.COMPLETED]
        for x in unmet:
            self._waiting.setdefault(x, {})[t.id] = None
        if not unmet and self._deps_met(t):  # (an evicted failed dependency: it fails at once)
            ix.enqueue(self, t)

    def _a_task_assigned(self, d: ev.TaskAssigned) -> None:
        t, _ = self._task_event(d)
        self.agents[d.agent_id].current_tasks.append(t.id)
        self._hold(t, d.timestamp)
        if d.reservation is not None:
            quotas.hold(self, t, d.reservation, d.timestamp)

    def _a_task_started(self, d: ev.TaskStarted) -> None:
        t, _ = self._task_event(d)
        self._hold(t, d.timestamp)

    def _a_task_progress(self, d: ev.TaskProgress) -> None:
        self._task_event(d)
        if d.usage is not None:
            self._attempt_usage[d.task_id] = d.usage

    def _a_task_completed(self, d: ev.TaskCompleted) -> None:
        t, _ = self._task_event(d)
        a = self.agents.get(d.agent_id)
        if a is not None:
            m = a.metrics
            m.tasks_completed += 1
            m.total_execution_ms += d.execution_time_ms
            m.average_response_time_ms = round3(m.total_execution_ms / m.tasks_completed)
            m.success_rate = round4(m.tasks_completed / (m.tasks_completed + m.tasks_failed))
            st = a.type_stats.get(t.type)
            if st is None:
                st = a.type_stats[t.type] = TypeStats()
            st.completed += 1
            st.total_ms += d.execution_time_ms
            if self.config.learning.enabled:  # (else _record_outcome keeps nothing)
                self._record_outcome(t, a.id, outcome_score(True, d.quality))
        waiting = self._waiting.pop(t.id, None)
        if waiting:
            for dep_id in waiting:
                dt = self.tasks.get(dep_id)
                if dt is not None and dt.status == _PENDING and self._deps_met(dt):
                    ix.enqueue(self, dt)

    def _a_task_failed(self, d: ev.TaskFailed) -> None:
        a = (
            self.agents.get(d.agent_id)
            if d.agent_id and d.failure_kind not in ev.RATE_LIMITED_KINDS
            else None
        )
        t, _ = self._task_event(d)
        if a is not None:  # (a provider's 429 is not the agent's failure)
            m = a.metrics
            m.tasks_failed += 1
            m.success_rate = round4(m.tasks_completed / (m.tasks_completed + m.tasks_failed))
            a.type_stats.setdefault(t.type, TypeStats()).failed += 1
            if d.failure_kind in ("reported", "timeout"):
                self._record_outcome(t, a.id, outcome_score(False, None))
        if d.retry_scheduled:
            self._queue(t, d.timestamp)

    def _a_task_cancelled(self, d: ev.TaskCancelled) -> None:
        self._task_event(d)

    def _a_task_retried(self, d: ev.TaskRetried) -> None:
        t, _ = self._task_event(d)
        self._queue(t, d.timestamp)
        for x in t.depends_on:
            if x in self.tasks and self.tasks[x].status != TS.COMPLETED:
                self._waiting.setdefault(x, {})[t.id] = None

    def _a_task_released(self, d: ev.TaskReleased) -> None:
        a = self.agents.get(d.agent_id)
        if a is not None and d.reason == "agent_shutdown":
            a.draining = True  # do not hand the work straight back to an agent that is leaving
        t, _ = self._task_event(d)
        self._queue(t, d.timestamp)

    def _a_task_recalled(self, d: ev.TaskRecalled) -> None:
        self._recalls[d.task_id] = (d.attempt_number, d.for_agent_id)

    # ---------------------------------------------------------- human appliers (core/human.py)

    def _a_task_note(self, d: ev.EventData) -> None:
        self._task_event(d)  # task_approval_requested, task_rejected: no status change

    def _a_task_approved(self, d: ev.TaskApproved) -> None:
        t, _ = self._task_event(d)  # as _a_task_created does for a pending task
        unmet = [x for x in t.depends_on if x in self.tasks and self.tasks[x].status != TS.COMPLETED]
        for x in unmet:
            self._waiting.setdefault(x, {})[t.id] = None
        if not unmet and self._deps_met(t):
            ix.enqueue(self, t)

    def _a_task_input_required(self, d: ev.TaskInputRequired) -> None:
        t, _ = self._task_event(d)
        self._input_since[t.id] = self._at(d.timestamp)
        heapq.heappush(self._input_deadlines, (self._at(d.deadline), t.id, d.deadline))

    def _a_task_input_received(self, d: ev.TaskInputReceived) -> None:
        since = self._input_since.get(d.task_id)
        t, _ = self._task_event(d)
        held = self._held_since.get(t.id)
        if since is not None and held is not None:
            # the task timeout was suspended while it waited: its deadline moves on by the wait
            held = self._held_since[t.id] = held + max(0.0, self._at(d.timestamp) - since)
            heapq.heappush(self._deadlines, (held + t.timeout_seconds, t.id, t.attempt))

    # ---------------------------------------------------------- learning appliers

    def _a_learning_started(self, d: ev.LearningCycleStarted) -> None:
        since = self._at(d.timestamp)
        window = {name: list(scores) for name, scores in self.outcomes.pop(d.agent_id, {}).items()}
        self.cycles[d.cycle_id] = Cycle(
            d.cycle_id, d.agent_id, d.timestamp, d.target_capability, window, since
        )
        self.last_cycle_at[d.agent_id] = d.timestamp
        self._learn_since[d.agent_id] = since

    def _a_learning_completed(self, d: ev.LearningCycleCompleted) -> None:
        self.cycles.pop(d.cycle_id, None)
        self.cycle_durations_ms.append(d.duration_ms)
        del self.cycle_durations_ms[:-50]
        a = self.agents.get(d.agent_id)
        if a is None:
            return
        for key, imp in d.improvements.items():
            name = key.removesuffix("_proficiency")
            for i, c in enumerate(a.capabilities):
                if c.name == name:
                    # replace, never mutate: Capability objects are shared with past events
                    a.capabilities[i] = msgspec.structs.replace(c, proficiency=imp.new_value)
                    if imp.improvement > 0:
                        a.metrics.capability_improvements += 1
        self._dirty = True

    def _a_learning_reset(self, d: ev.AgentLearningReset) -> None:
        a = self.agents.get(d.agent_id)
        if a is None:
            return
        names = set(d.capabilities)
        for i, c in enumerate(a.capabilities):
            if c.name in names:
                a.capabilities[i] = msgspec.structs.replace(c, proficiency=d.capabilities[c.name].new_value)
        # What was observed before the reset must not move the reset values again.
        pending = self.outcomes.get(d.agent_id)
        if pending is not None:
            for n in names:
                pending.pop(n, None)
            if not pending:
                del self.outcomes[d.agent_id]
        for cycle in self.cycles.values():
            if cycle.agent_id == d.agent_id:
                for n in names:
                    cycle.window.pop(n, None)
        self._dirty = True

    # ---------------------------------------------------------- quota and budget appliers

    def _a_quota_set(self, d: ev.QuotaSet) -> None:
        quotas.fold_quota(self, d)

    def _a_quota_deleted(self, d: ev.QuotaDeleted) -> None:
        self.quotas.pop(d.name, None)
        self._pools.pop(d.name, None)
        self._dirty = True

    def _a_budget_set(self, d: ev.BudgetSet) -> None:
        self.budgets[d.owner] = quotas.budget_of(d)
        self._dirty = True

    def _a_budget_deleted(self, d: ev.BudgetDeleted) -> None:
        self.budgets.pop(d.owner, None)
        self._dirty = True

    # ---------------------------------------------------------- observation appliers

    def _a_module_status(self, d: ev.ModuleStatusChanged) -> None:
        self.modules[d.module] = d.new_status

    def _a_alert(self, d: ev.EventData) -> None:
        key = alert_key(d)
        assert key is not None
        if is_cleared(d):
            self.alerts.pop(key, None)
        else:
            self.alerts[key] = d

    def _a_noop(self, d: ev.EventData) -> None:
        pass


_APPLIERS: dict[type[ev.EventData], Callable[[Projection, Any], None]] = {
    ev.AgentCreated: Projection._a_agent_created,
    ev.AgentUpdated: Projection._a_agent_updated,
    ev.AgentStatusChanged: Projection._a_agent_status,
    ev.AgentRemoved: Projection._a_agent_removed,
    ev.AgentPerformanceUpdated: Projection._a_agent_performance,
    ev.TaskCreated: Projection._a_task_created,
    ev.TaskAssigned: Projection._a_task_assigned,
    ev.TaskStarted: Projection._a_task_started,
    ev.TaskProgress: Projection._a_task_progress,
    ev.TaskCompleted: Projection._a_task_completed,
    ev.TaskFailed: Projection._a_task_failed,
    ev.TaskCancelled: Projection._a_task_cancelled,
    ev.TaskRetried: Projection._a_task_retried,
    ev.TaskReleased: Projection._a_task_released,
    ev.TaskRecalled: Projection._a_task_recalled,
    ev.TaskApprovalRequested: Projection._a_task_note,
    ev.TaskApproved: Projection._a_task_approved,
    ev.TaskRejected: Projection._a_task_note,
    ev.TaskInputRequired: Projection._a_task_input_required,
    ev.TaskInputReceived: Projection._a_task_input_received,
    ev.LearningCycleStarted: Projection._a_learning_started,
    ev.LearningCycleCompleted: Projection._a_learning_completed,
    ev.AgentLearningReset: Projection._a_learning_reset,
    ev.QuotaSet: Projection._a_quota_set,
    ev.QuotaDeleted: Projection._a_quota_deleted,
    ev.BudgetSet: Projection._a_budget_set,
    ev.BudgetDeleted: Projection._a_budget_deleted,
    ev.ModuleStatusChanged: Projection._a_module_status,
    ev.SystemAlert: Projection._a_alert,
    ev.ResourceAlert: Projection._a_alert,
    ev.HiveStatusUpdate: Projection._a_noop,
    ev.InterModuleMessage: Projection._a_noop,
    ev.CoordinationEvent: Projection._a_noop,
    ev.ErrorOccurred: Projection._a_noop,
}
