"""The hive: a pure state machine over agents and tasks.

Call order (see ``docs/architecture.md``)::

    events = hive.handle(cmd, now, mono)  # validate (raise HiveError, nothing changed) then decide
    # ... adapter persists `events`, then publishes them
    hive.next_deadline()                  # the monotonic reading at which to send Tick next

``handle`` emits events through :meth:`_emit`, which applies each one at once
(:meth:`apply` is the only mutator of projected state), so later decisions in
the same command see earlier ones. Replaying the log is ``apply`` over it.

Volatile state, deliberately not logged: heartbeats (``last_seen_at``) and the
heaps that index deadlines and the ready queue; all are rebuilt by ``apply``
and by the ``Recover`` command after a restart.

Two clocks (``docs/architecture.md``, "Time"): every command brings the wall
clock ``now`` (logged timestamps, days in the status) and a monotonic reading
``mono`` (seconds on any fixed axis). Every duration and deadline -- liveness,
task timeouts, retry delays, execution times, rebalancing and learning
intervals -- is measured on the monotonic axis, so a step of the system clock
changes no decision. Logged wall times enter that axis through :meth:`_at`:
live, relative to the command's own pair of readings (exact); on replay, as
``wall - mono_offset`` (the offset the adapter measured when it folded the log).

The :class:`Hive` is assembled from one mixin per responsibility, sharing the
typed base in ``_state.py``; this module keeps the command and event plumbing,
the agent and task lifecycle, and the dispatch tables::

    scheduler.py      SchedulingMixin     ready queue, capability index, assignment
    learning.py       LearningMixin       learning cycles (and the pure update)
    coordination.py   CoordinationMixin   rebalancing (and the pure plan)
    observations.py   ObservationsMixin   module status and alerts
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from msgspec import Struct

from . import events as ev
from .commands import (
    AgentDisconnected,
    CancelTask,
    Command,
    CompleteLearning,
    CompleteTask,
    EvictAgent,
    FailTask,
    Heartbeat,
    Observe,
    Recover,
    RegisterAgent,
    ReleaseTask,
    RemoveAgent,
    ReportProgress,
    ResetLearning,
    RetryTask,
    StartTask,
    SubmitTask,
    Tick,
    UpdateAgent,
)
from .coordination import CoordinationConfig, CoordinationMixin
from .errors import (
    AgentNotFound,
    AttemptRequired,
    DependencyNotFound,
    InvalidInput,
    InvalidTransition,
    NotTaskHolder,
    TaskEvicted,
    TaskExists,
    TaskNotFound,
)
from .learning import Cycle, LearningConfig, LearningMixin, merge_capabilities, outcome_score, with_priors
from .model import (
    HELD,
    ONLINE,
    TERMINAL,
    Agent,
    AgentMetrics,
    AgentStatus,
    Capability,
    Task,
    TaskError,
    TaskStatus,
    TypeStats,
    priority_value,
)
from .observations import ObservationsMixin
from .policies import ScoreWeights, exponential_backoff
from .scheduler import SchedulingMixin

__all__ = [
    "AGENT_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Cycle",
    "Hive",
    "HiveConfig",
    "check_task_transition",
]

TS = TaskStatus
AS = AgentStatus

#: Every legal task transition and the event that makes it. The table is the documentation.
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
}

#: Every legal agent status transition.
AGENT_TRANSITIONS: frozenset[tuple[AgentStatus, AgentStatus]] = frozenset(
    {
        (AS.IDLE, AS.ACTIVE),
        (AS.ACTIVE, AS.IDLE),
        (AS.IDLE, AS.LEARNING),
        (AS.ACTIVE, AS.LEARNING),
        (AS.LEARNING, AS.IDLE),
        (AS.LEARNING, AS.ACTIVE),
        (AS.IDLE, AS.OFFLINE),
        (AS.ACTIVE, AS.OFFLINE),
        (AS.LEARNING, AS.OFFLINE),
        (AS.OFFLINE, AS.IDLE),
        (AS.OFFLINE, AS.ACTIVE),
        (AS.IDLE, AS.FAILED),
        (AS.ACTIVE, AS.FAILED),
        (AS.OFFLINE, AS.FAILED),
        (AS.FAILED, AS.IDLE),
        (AS.FAILED, AS.ACTIVE),
    }
)


def check_task_transition(task: Task, to: TaskStatus) -> None:
    if (task.status, to) not in TASK_TRANSITIONS:
        raise InvalidTransition(
            f"task {task.id} is {task.status}; cannot go to {to}",
            task_id=task.id,
            status=str(task.status),
            to=str(to),
        )


def _check_capability_names(caps: list[Capability]) -> None:
    """One entry per capability name: the capability index and matching key on the
    name, so a second entry would shadow the first (and tasks could pend forever)."""
    seen: set[str] = set()
    for c in caps:
        if c.name in seen:
            raise InvalidInput(f"capability {c.name!r} is listed more than once", capability=c.name)
        seen.add(c.name)


class HiveConfig(Struct, frozen=True):
    #: an agent not heard from for this long goes offline and its tasks are re-queued
    heartbeat_timeout: float = 15.0
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    #: one priority level gained per this many seconds of waiting
    aging_seconds: float = 60.0
    weights: ScoreWeights = ScoreWeights()
    learning: LearningConfig = LearningConfig()
    #: least seconds between two agent_performance_updated for completions of one agent
    performance_interval: float = 1.0
    coordination: CoordinationConfig = CoordinationConfig()
    #: finished tasks kept in memory; older ones are evicted (the log keeps them all;
    #: ``GET /api/tasks/{id}`` folds an evicted one from its events in the store)
    retain_finished: int = 10_000


class Hive(SchedulingMixin, LearningMixin, CoordinationMixin, ObservationsMixin):
    """The I/O-free core. See the module docstring for the call order."""

    def __init__(
        self,
        config: HiveConfig | None = None,
        *,
        new_id: Callable[[], str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or HiveConfig()
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self._rng = rng or random.Random()
        # Event message ids: a per-instance random prefix (drawn from the injected
        # rng, so tests stay deterministic) and the sequence. Unique across
        # restarts, and far cheaper than a uuid4 per event on the hot path.
        self._msg_prefix = f"{self._rng.getrandbits(64):016x}"
        self._backoff = exponential_backoff(
            self.config.retry_base_seconds, self.config.retry_cap_seconds, self._rng
        )
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, Task] = {}
        # --- retention (folded from the log, so a replay evicts the same tasks) ---
        #: finished tasks still in memory, oldest finish first (a retry takes one out)
        self._finished: dict[str, None] = {}
        #: evicted task id -> its final status: what the core still needs to know
        #: (the id is taken; whether a dependent's dependency completed). The value
        #: is a shared enum member, so an entry costs the id string and a dict slot.
        self.evicted: dict[str, TaskStatus] = {}
        self.sequence = 0
        self.task_counts: Counter[TaskStatus] = Counter()
        self.completed_by_day: Counter[date] = Counter()
        self.failed_by_day: Counter[date] = Counter()
        # --- indexes (derived, rebuilt by apply) ---
        self._cap_index: dict[str, set[str]] = {}
        self._free: dict[str, list[tuple[float, str, int]]] = {}
        self._ver: dict[str, int] = {}
        self._online_prof: dict[str, list[float]] = {}
        self._online_caps: dict[str, dict[str, float]] = {}
        self._online: set[str] = set()
        self._eligible: set[str] = set()
        self._changed_agents: set[str] = set()
        self._perf_at: dict[str, float] = {}  # volatile: when (monotonic) each agent's metrics were last reported
        self._ready: dict[tuple[tuple[str, float], ...], list[tuple[float, int, str]]] = {}
        self._ready_seq = 0
        self._queued: dict[str, int] = {}  # task id -> ready entry seq (lazy deletion)
        # Deadlines and durations run on the monotonic axis (see the module docstring).
        #: wall seconds minus monotonic seconds, measured by the adapter when it folds
        #: the log; converts logged wall times to the monotonic axis on replay
        self.mono_offset = 0.0
        self._delayed: list[tuple[float, str, int]] = []  # retries (due, task, attempt)
        self._deadlines: list[tuple[float, str, int]] = []  # timeouts (due, task, attempt)
        self._liveness: list[tuple[float, str]] = []  # (due, agent)
        self._seen: dict[str, float] = {}  # agent -> when last heard from (monotonic)
        self._held_since: dict[str, float] = {}  # held task -> assigned, then started (monotonic)
        # agents with an entry in _liveness: at most one each, so a heartbeat flood
        # cannot grow the heap (a popped entry of a live agent is pushed again)
        self._live_armed: set[str] = set()
        # dependency id -> dependents, insertion-ordered (a set's order would vary with hashing)
        self._waiting: dict[str, dict[str, None]] = {}
        self._dirty = True
        # --- learning (folded from outcomes) ---
        self.outcomes: dict[str, dict[str, deque[float]]] = {}  # agent -> capability -> newest scores
        self.last_cycle_at: dict[str, datetime] = {}
        self._learn_since: dict[str, float] = {}
        self.cycles: dict[str, Cycle] = {}
        self.cycle_durations_ms: list[float] = []
        # --- self-monitoring (folded from observations) ---
        self.modules: dict[str, str] = {}
        self.alerts: dict[str, ev.EventData] = {}  # key -> the active system/resource alert
        # --- coordination (volatile triggers) ---
        self._rebalance_trigger: str | None = "startup"
        self._next_rebalance_at: float | None = None  # monotonic
        # --- per-handle scratch ---
        self._out: list[ev.Event] = []
        self._now: datetime | None = None
        self._mono: float | None = None
        self._cause: str | None = None
        self._touched: dict[str, str] = {}

    # ------------------------------------------------------------------ API

    def handle(self, cmd: Command, now: datetime, mono: float | None = None) -> list[ev.Event]:
        """Validate ``cmd`` and decide. Raises :class:`HiveError` before emitting
        anything when the command is not acceptable; otherwise returns the events
        (already applied), including assignments the scheduler made after it.

        Args:
            now: the wall clock; stamps the events.
            mono: a monotonic reading (seconds) that every duration and deadline is
                measured on. ``None``: ``now`` on the replay axis (``now - mono_offset``),
                for callers with one clock (tests, tools)."""
        self._out = []
        self._now = now
        self._mono = mono if mono is not None else now.timestamp() - self.mono_offset
        self._cause = cmd.id
        self._touched = {}
        try:
            handler = self._handlers[type(cmd)]
            handler(self, cmd)
            self._schedule()
            self._settle_agents()
            self._maybe_learn(None if isinstance(cmd, Tick) else set(self._touched))
            return self._out
        finally:
            self._out = []
            self._now = None
            self._mono = None

    def next_deadline(self) -> float | None:
        """The earliest monotonic reading at which a Tick would change something."""
        cands = []
        for heap in (self._delayed, self._deadlines, self._liveness):
            if heap:
                cands.append(heap[0][0])
        return min(cands) if cands else None

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the projections. The only mutator of projected state."""
        if event.sequence != self.sequence + 1:
            raise ValueError(f"event sequence {event.sequence} after {self.sequence}: gap or duplicate")
        self.sequence = event.sequence
        d = event.data
        self._appliers[type(d)](self, d)
        if len(self._finished) > self.config.retain_finished:
            self._evict()
        # the scheduler's free-agent index re-reads the agents this touched, once,
        # before it next picks (several events of one command touch the same agent)
        agent_id = getattr(d, "agent_id", None)
        if agent_id is None and isinstance(d, ev.AgentCreated):
            agent_id = d.agent.id
        if isinstance(agent_id, str):
            self._changed_agents.add(agent_id)
            if isinstance(d, ev.TaskAssigned) and d.previous_agent_id:
                self._changed_agents.add(d.previous_agent_id)

    # ---------------------------------------------------------- queries

    def matching_agents(self, required: list[Any]) -> int:
        """Online agents that currently meet every requirement."""
        return self.count_matching(required)

    def refresh_liveness(self, now: datetime, mono: float) -> None:
        """Volatile: count every agent as heard from now (a replica took over the
        scheduler; agents connected elsewhere are alive and get one heartbeat
        timeout to show it). Changes no logged state."""
        self._clamp_replayed(mono)
        for a in self.agents.values():
            self._see(a, now, mono)

    def _clamp_replayed(self, mono: float) -> None:
        """After folding the log (restart, failover): a logged time converted to the
        monotonic axis may lie ahead of ``mono`` if the wall clock was stepped back
        since it was logged. Nothing has happened in the future: clamp to now, so an
        agent or a held task gets at most one window from now, never a longer one."""
        for k, v in self._seen.items():
            if v > mono:
                self._seen[k] = mono
        # the one liveness entry per agent is due from its (possibly clamped) _seen
        hb = self.config.heartbeat_timeout
        self._liveness = [(self._seen[k] + hb, k) for k in self._live_armed if k in self._seen]
        heapq.heapify(self._liveness)
        for k, v in self._held_since.items():
            if v > mono:
                self._held_since[k] = mono
                t = self.tasks[k]
                heapq.heappush(self._deadlines, (mono + t.timeout_seconds, t.id, t.attempt))

    def _at(self, wall: datetime) -> float:
        """A logged wall-clock time on the monotonic axis of deadlines and durations.

        Inside ``handle`` it is taken relative to the command's own readings, so a
        time the command emits (``now``, ``now + backoff``) lands exactly where the
        monotonic clock says. Outside (replaying the log, a follower folding events)
        it is ``wall - mono_offset``: exact for events logged since the offset was
        measured, and off by any clock step before that (only until each deadline
        is next re-armed)."""
        if self._now is not None and self._mono is not None:
            return self._mono + (wall - self._now).total_seconds()
        return wall.timestamp() - self.mono_offset

    def status(self, now: datetime) -> dict[str, Any]:
        """The hive's status folded from the log (``GET /api/hive/status``)."""
        online = [a for a in self.agents.values() if a.status in ONLINE]
        active = [a for a in online if a.status == AS.ACTIVE]
        slots = sum(a.max_concurrent_tasks for a in online)
        held = self.task_counts[TS.ASSIGNED] + self.task_counts[TS.RUNNING]
        return {
            "sequence": self.sequence,
            "metrics": {
                "total_agents": len(self.agents),
                "online_agents": len(online),
                "active_agents": len(active),
                "idle_agents": sum(1 for a in online if a.status == AS.IDLE),
                "offline_agents": sum(1 for a in self.agents.values() if a.status == AS.OFFLINE),
                "total_tasks": len(self.tasks) + len(self.evicted),
                "pending_tasks": self.task_counts[TS.PENDING],
                "assigned_tasks": self.task_counts[TS.ASSIGNED],
                "running_tasks": self.task_counts[TS.RUNNING],
                "completed_tasks": self.task_counts[TS.COMPLETED],
                "failed_tasks": self.task_counts[TS.FAILED],
                "cancelled_tasks": self.task_counts[TS.CANCELLED],
                "completed_tasks_today": self.completed_by_day[now.date()],
                "failed_tasks_today": self.failed_by_day[now.date()],
                # share of online task slots in use: the hive's own load
                "system_load": round(held / slots, 4) if slots else 0.0,
            },
        }

    # ---------------------------------------------------------- emitting

    def _emit(self, data: ev.EventData) -> None:
        assert self._now is not None
        data.caused_by = self._cause
        event = ev.Event(
            type=data.TYPE,
            data=data,
            timestamp=self._now,
            message_id=f"{self._msg_prefix}-{self.sequence + 1}",
            sequence=self.sequence + 1,
        )
        self.apply(event)
        self._out.append(event)

    def _touch(self, agent_id: str | None, reason: str) -> None:
        if agent_id is not None and agent_id in self.agents:
            self._touched[agent_id] = reason

    def _settle_agents(self) -> None:
        """idle <-> active follows load. Computed once per command, after scheduling,
        so a completion immediately followed by a new assignment does not flap."""
        for agent_id, reason in self._touched.items():
            a = self.agents.get(agent_id)
            if a is None or a.status not in (AS.IDLE, AS.ACTIVE):
                continue
            want = AS.ACTIVE if a.current_tasks else AS.IDLE
            if want != a.status:
                self._emit_status(a, want, reason)

    def _emit_status(self, a: Agent, new: AgentStatus, reason: str) -> None:
        assert self._now is not None
        if (a.status, new) not in AGENT_TRANSITIONS:
            raise InvalidTransition(f"agent {a.id} is {a.status}; cannot go to {new}")
        self._emit(
            ev.AgentStatusChanged(
                timestamp=self._now, agent_id=a.id, old_status=a.status, new_status=new, reason=reason
            )
        )

    # ---------------------------------------------------------- lookups

    def _agent(self, agent_id: str) -> Agent:
        a = self.agents.get(agent_id)
        if a is None:
            raise AgentNotFound(f"no agent {agent_id}", agent_id=agent_id)
        return a

    def has_task(self, task_id: str) -> bool:
        """The id names a task, in memory or evicted (so it cannot be used again)."""
        return task_id in self.tasks or task_id in self.evicted

    def _task(self, task_id: str) -> Task:
        t = self.tasks.get(task_id)
        if t is None:
            if task_id in self.evicted:
                raise TaskEvicted(
                    f"task {task_id} ended {self.evicted[task_id]} and was evicted from memory"
                    f" (retain_finished={self.config.retain_finished}); it can no longer change",
                    task_id=task_id,
                    status=str(self.evicted[task_id]),
                )
            raise TaskNotFound(f"no task {task_id}", task_id=task_id)
        return t

    def _held(self, task_id: str, agent_id: str, attempt: int | None) -> Task:
        """The task, when ``agent_id`` holds ``attempt`` and it is the current one.

        Raises TaskNotFound for an unknown task, then AttemptRequired when the
        report names no attempt: a report without
        one cannot be told apart from a stale report of an earlier attempt (a late
        completion of attempt 1 would complete attempt 2), so it is never guessed.
        Raises NotTaskHolder when the agent does not hold that attempt now."""
        if task_id in self.evicted:  # finished long ago: a stale report, as before eviction
            raise NotTaskHolder(
                f"agent {agent_id} does not hold task {task_id}",
                task_id=task_id,
                agent_id=agent_id,
                attempt=attempt,
                status=str(self.evicted[task_id]),
            )
        t = self._task(task_id)
        if attempt is None:
            raise AttemptRequired(
                f"a report about task {task_id} must name its attempt", task_id=task_id, agent_id=agent_id
            )
        if t.assigned_agent_id != agent_id or t.status not in HELD or attempt != t.attempt:
            raise NotTaskHolder(
                f"agent {agent_id} does not hold task {task_id} attempt {attempt}",
                task_id=task_id,
                agent_id=agent_id,
                attempt=attempt,
                current_attempt=t.attempt,
                status=str(t.status),
            )
        return t

    # ---------------------------------------------------------- agent commands

    def _on_register(self, cmd: RegisterAgent) -> None:
        now = self._now
        assert now is not None
        spec = cmd.spec
        _check_capability_names(spec.capabilities)
        existing = self.agents.get(spec.id) if spec.id else None
        if existing is None:
            agent = Agent(
                id=spec.id or self._new_id(),
                name=spec.name,
                type=spec.type,
                capabilities=merge_capabilities([], spec.capabilities),
                status=AS.IDLE,
                max_concurrent_tasks=spec.max_concurrent_tasks,
                created_at=now,
                last_seen_at=now,
                metrics=AgentMetrics(),
                metadata=dict(spec.metadata),
            )
            self._emit(ev.AgentCreated(timestamp=now, agent=agent))
            return
        a = existing
        # Every reconnect and hub restart registers again with the agent's own
        # numbers: they are priors, and an unchanged prior keeps what was learned.
        capabilities = merge_capabilities(a.capabilities, spec.capabilities)
        if (a.name, a.capabilities, a.max_concurrent_tasks) != (
            spec.name,
            capabilities,
            spec.max_concurrent_tasks,
        ):
            self._emit(
                ev.AgentUpdated(
                    timestamp=now,
                    agent_id=a.id,
                    name=spec.name,
                    capabilities=capabilities,
                    max_concurrent_tasks=spec.max_concurrent_tasks,
                )
            )
        self._see(a, now, self._mono)
        if cmd.running is not None:
            # The agent tells us what it still runs; a running attempt it does not
            # know about was lost with its previous connection.
            for task_id in list(a.current_tasks):
                t = self.tasks[task_id]
                if t.status == TS.RUNNING and cmd.running.get(task_id) != t.attempt:
                    self._fail_attempt(
                        t,
                        TaskError("AGENT_LOST", "the agent reconnected without this task"),
                        retryable=True,
                        kind="agent_lost",
                    )
        if a.status in (AS.OFFLINE, AS.FAILED):
            self._emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "reconnected")
        self._dirty = True

    def _on_update(self, cmd: UpdateAgent) -> None:
        a = self._agent(cmd.agent_id)
        p = cmd.patch
        if p.name is None and p.capabilities is None and p.max_concurrent_tasks is None:
            raise InvalidInput("nothing to update", agent_id=a.id)
        if p.capabilities is not None:
            _check_capability_names(p.capabilities)
        assert self._now is not None
        self._emit(
            ev.AgentUpdated(
                timestamp=self._now,
                agent_id=a.id,
                name=p.name,
                capabilities=merge_capabilities(a.capabilities, p.capabilities) if p.capabilities is not None else None,
                max_concurrent_tasks=p.max_concurrent_tasks,
            )
        )

    def _on_remove(self, cmd: RemoveAgent) -> None:
        a = self._agent(cmd.agent_id)
        now = self._now
        assert now is not None
        moved = 0
        for task_id in list(a.current_tasks):
            t = self.tasks[task_id]
            self._emit(
                ev.TaskReleased(
                    timestamp=now,
                    task_id=t.id,
                    agent_id=a.id,
                    attempt_number=t.attempt,
                    reason="agent_removed",
                )
            )
            moved += 1
        self._emit(
            ev.AgentRemoved(
                timestamp=now,
                agent_id=a.id,
                reason=cmd.reason,
                cleanup_summary=ev.CleanupSummary(tasks_reassigned=moved, data_removed=True),
            )
        )

    def _on_heartbeat(self, cmd: Heartbeat) -> None:
        a = self._agent(cmd.agent_id)
        assert self._now is not None
        self._see(a, self._now, self._mono)
        if a.status == AS.OFFLINE:
            self._emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "heartbeat")
            self._dirty = True

    def _on_disconnected(self, cmd: AgentDisconnected) -> None:
        a = self.agents.get(cmd.agent_id)
        if a is None:
            return
        assert self._now is not None
        self._see(a, self._now, self._mono)
        if a.status in ONLINE:
            # Its tasks stay held for one heartbeat timeout: a quick reconnect keeps them.
            self._emit_status(a, AS.OFFLINE, "disconnected")

    def _on_evict(self, cmd: EvictAgent) -> None:
        a = self._agent(cmd.agent_id)
        if a.status in ONLINE:
            self._emit_status(a, AS.OFFLINE, cmd.reason)
        # Unlike a disconnect, nothing is held for a reconnect: the connection that
        # could come back with these attempts is the one that lost its access.
        for task_id in list(a.current_tasks):
            self._fail_attempt(
                self.tasks[task_id],
                TaskError("AGENT_LOST", f"agent {a.id} lost its access ({cmd.reason})", {"agent_id": a.id}),
                retryable=True,
                kind="agent_lost",
            )
        self._dirty = True

    def _on_recover(self, cmd: Recover) -> None:
        now = self._now
        assert now is not None
        for cycle_id in list(self.cycles):
            self._complete_cycle(cycle_id)
        mono = self._mono
        assert mono is not None
        self._clamp_replayed(mono)
        for a in list(self.agents.values()):
            self._see(a, now, mono)
            if a.status in ONLINE:
                self._emit_status(a, AS.OFFLINE, "hub_restarted")

    def _see(self, a: Agent, now: datetime, mono: float | None) -> None:
        """Volatile: the agent was heard from (not logged; see module docstring).

        Liveness runs on the monotonic reading; ``last_seen_at`` is the wall clock
        of the same moment, for display (it may go back if the clock was stepped)."""
        assert mono is not None
        if mono >= self._seen.get(a.id, mono):
            self._seen[a.id] = mono
            a.last_seen_at = now
        self._arm_liveness(a)

    def _arm_liveness(self, a: Agent) -> None:
        """Volatile: make sure the agent has its one entry in the liveness heap.

        The entry may be due earlier than ``_seen + timeout`` (the agent was heard
        from since it was pushed); the Tick that pops it pushes it again at the new
        due time, so the heap holds at most one entry per agent."""
        if a.id in self._live_armed:
            return
        self._live_armed.add(a.id)
        heapq.heappush(self._liveness, (self._seen[a.id] + self.config.heartbeat_timeout, a.id))

    # ---------------------------------------------------------- task commands

    def _on_submit(self, cmd: SubmitTask) -> None:
        now = self._now
        assert now is not None
        s = cmd.spec
        task_id = s.id or self._new_id()
        if self.has_task(task_id):
            raise TaskExists(f"task {task_id} already exists", task_id=task_id)
        for dep in s.depends_on:
            if dep == task_id:
                raise InvalidInput("a task cannot depend on itself", task_id=task_id)
            if not self.has_task(dep):
                raise DependencyNotFound(f"depends_on names unknown task {dep}", dependency=dep)
        task = Task(
            id=task_id,
            description=s.description,
            type=s.type,
            priority=priority_value(s.priority),
            status=TS.PENDING,
            required_capabilities=list(s.required_capabilities),
            input=s.input,
            timeout_seconds=s.timeout_seconds,
            max_retries=s.max_retries,
            created_at=now,
            updated_at=now,
            depends_on=list(dict.fromkeys(s.depends_on)),
            created_by=cmd.created_by,
            metadata=dict(s.metadata),
        )
        self._emit(
            ev.TaskCreated(
                timestamp=now, task=task, matching_agents=self.matching_agents(task.required_capabilities)
            )
        )
        dead = [d for d in task.depends_on if self._task_status(d) in (TS.FAILED, TS.CANCELLED)]
        if dead:
            self._fail_dependents_of(dead[0], self._task_status(dead[0]), only=[self.tasks[task_id]])

    def _on_cancel(self, cmd: CancelTask) -> None:
        t = self._task(cmd.task_id)
        check_task_transition(t, TS.CANCELLED)
        assert self._now is not None
        agent_id = t.assigned_agent_id
        self._emit(
            ev.TaskCancelled(
                timestamp=self._now,
                task_id=t.id,
                reason=cmd.reason,
                cancelled_by=cmd.cancelled_by,
                agent_id=agent_id,
                previous_status=t.status,
            )
        )
        self._touch(agent_id, "task_cancelled")
        self._fail_dependents_of(t.id, t.status)

    def _on_retry(self, cmd: RetryTask) -> None:
        t = self._task(cmd.task_id)
        if t.status not in (TS.FAILED, TS.CANCELLED):
            raise InvalidTransition(f"task {t.id} is {t.status}; only failed or cancelled tasks can be retried")
        for dep in t.depends_on:
            # An evicted dependency can never be retried, so a dependent waiting on one would pend forever.
            if self.evicted.get(dep, TS.COMPLETED) != TS.COMPLETED:
                raise TaskEvicted(
                    f"task {t.id} depends on {dep}, which ended {self.evicted[dep]} and was evicted from memory",
                    task_id=t.id,
                    dependency=dep,
                )
        assert self._now is not None
        self._emit(
            ev.TaskRetried(
                timestamp=self._now, task_id=t.id, previous_status=t.status, requested_by=cmd.requested_by
            )
        )

    def _on_start(self, cmd: StartTask) -> None:
        t = self._held(cmd.task_id, cmd.agent_id, cmd.attempt)
        a = self._agent(cmd.agent_id)
        assert self._now is not None
        self._see(a, self._now, self._mono)
        if t.status == TS.RUNNING:
            return  # a repeated report: idempotent
        self._emit(
            ev.TaskStarted(timestamp=self._now, task_id=t.id, agent_id=a.id, attempt_number=t.attempt)
        )

    def _ensure_started(self, t: Task) -> None:
        """Agents may report progress or an outcome without a separate start report."""
        if t.status == TS.ASSIGNED:
            assert self._now is not None and t.assigned_agent_id is not None
            self._emit(
                ev.TaskStarted(
                    timestamp=self._now, task_id=t.id, agent_id=t.assigned_agent_id, attempt_number=t.attempt
                )
            )

    def _on_progress(self, cmd: ReportProgress) -> None:
        t = self._held(cmd.task_id, cmd.agent_id, cmd.attempt)
        now = self._now
        assert now is not None
        self._see(self.agents[cmd.agent_id], now, self._mono)
        self._ensure_started(t)
        eta = None
        if cmd.progress > 0 and t.started_at is not None:
            # Linear extrapolation from observed progress (elapsed on the monotonic clock).
            elapsed = self._held_for(t)
            eta = now + timedelta(seconds=elapsed * (1 - cmd.progress) / cmd.progress)
        self._emit(
            ev.TaskProgress(
                timestamp=now,
                task_id=t.id,
                agent_id=cmd.agent_id,
                progress=cmd.progress,
                current_step=cmd.current_step,
                estimated_completion=eta,
                attempt_number=t.attempt,
            )
        )

    def _on_complete(self, cmd: CompleteTask) -> None:
        t = self._held(cmd.task_id, cmd.agent_id, cmd.attempt)
        now = self._now
        assert now is not None
        a = self.agents[cmd.agent_id]
        self._see(a, now, self._mono)
        self._ensure_started(t)
        assert t.started_at is not None
        self._emit(
            ev.TaskCompleted(
                timestamp=now,
                task_id=t.id,
                agent_id=a.id,
                execution_time_ms=round(self._held_for(t) * 1000, 3),
                result=cmd.result,
                attempt_number=t.attempt,
                quality=cmd.quality,
            )
        )
        self._emit_performance(a, "completed", t.type)
        self._touch(a.id, "task_completed")

    def _on_fail(self, cmd: FailTask) -> None:
        t = self._held(cmd.task_id, cmd.agent_id, cmd.attempt)
        assert self._now is not None
        self._see(self.agents[cmd.agent_id], self._now, self._mono)
        self._ensure_started(t)
        self._fail_attempt(t, cmd.error, retryable=cmd.retryable, kind="reported")

    def _on_release(self, cmd: ReleaseTask) -> None:
        t = self._held(cmd.task_id, cmd.agent_id, cmd.attempt)
        assert self._now is not None
        self._emit(
            ev.TaskReleased(
                timestamp=self._now,
                task_id=t.id,
                agent_id=cmd.agent_id,
                attempt_number=t.attempt,
                reason=cmd.reason,
            )
        )
        self._touch(cmd.agent_id, "task_released")

    def _held_for(self, t: Task) -> float:
        """Seconds (monotonic) since the held task was started, or assigned if not yet."""
        assert self._mono is not None
        return max(0.0, self._mono - self._held_since.get(t.id, self._mono))

    def _on_tick(self, cmd: Tick) -> None:
        now, mono = self._now, self._mono
        assert now is not None and mono is not None
        # Due retries become ready.
        while self._delayed and self._delayed[0][0] <= mono:
            _, task_id, attempt = heapq.heappop(self._delayed)
            t = self.tasks.get(task_id)
            if t is not None and t.status == TS.PENDING and t.attempt == attempt and task_id not in self._queued:
                if self._deps_met(t):
                    self._enqueue(t)
        # Timeouts.
        while self._deadlines and self._deadlines[0][0] <= mono:
            _, task_id, attempt = heapq.heappop(self._deadlines)
            t = self.tasks.get(task_id)
            if t is None or t.status not in HELD or t.attempt != attempt:
                continue
            elapsed = self._held_for(t)
            if elapsed < t.timeout_seconds:
                continue  # stale entry (re-pushed when the task started)
            self._emit(
                ev.ErrorOccurred(
                    timestamp=now,
                    error_id=self._new_id(),
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
            self._fail_attempt(
                t,
                TaskError(
                    "TASK_TIMEOUT",
                    f"no result within timeout_seconds={t.timeout_seconds}",
                    {"timeout_seconds": t.timeout_seconds, "execution_time_seconds": round(elapsed, 3)},
                ),
                retryable=True,
                kind="timeout",
            )
        # Liveness.
        limit = self.config.heartbeat_timeout
        while self._liveness and self._liveness[0][0] <= mono:
            _, agent_id = heapq.heappop(self._liveness)
            self._live_armed.discard(agent_id)
            a = self.agents.get(agent_id)
            if a is None:
                continue  # removed
            if self._seen.get(agent_id, mono) + limit > mono:
                self._arm_liveness(a)  # heard from since: due again one timeout after that
                continue
            if a.status in ONLINE:
                self._emit_status(a, AS.OFFLINE, "heartbeat_timeout")
            for task_id in list(a.current_tasks):
                self._fail_attempt(
                    self.tasks[task_id],
                    TaskError(
                        "AGENT_LOST",
                        f"agent {a.id} silent for more than {self.config.heartbeat_timeout}s",
                        {"agent_id": a.id, "last_seen_at": a.last_seen_at.isoformat()},
                    ),
                    retryable=True,
                    kind="agent_lost",
                )
        self._schedule()
        self._maybe_rebalance()

    # ---------------------------------------------------------- outcomes

    def _fail_attempt(self, t: Task, error: TaskError, *, retryable: bool, kind: str) -> None:
        now = self._now
        assert now is not None
        agent_id = t.assigned_agent_id
        failures = t.failures + 1
        retry = retryable and failures <= t.max_retries
        next_at = now + timedelta(seconds=self._backoff(failures)) if retry else None
        running = t.status == TS.RUNNING
        self._emit(
            ev.TaskFailed(
                timestamp=now,
                task_id=t.id,
                agent_id=agent_id,
                attempt_number=t.attempt,
                error=error,
                retry_scheduled=retry,
                next_retry_at=next_at,
                failure_kind=kind,
                execution_time_ms=round(self._held_for(t) * 1000, 3) if running else None,
            )
        )
        if agent_id is not None and agent_id in self.agents:
            self._emit_performance(self.agents[agent_id], "failed", t.type)
            self._touch(agent_id, "task_failed")
        if not retry:
            self._fail_dependents_of(t.id, t.status)

    def _task_status(self, task_id: str) -> TaskStatus:
        t = self.tasks.get(task_id)
        return t.status if t is not None else self.evicted[task_id]

    def _fail_dependents_of(self, root_id: str, root_status: TaskStatus, only: list[Task] | None = None) -> None:
        """A dependency failed for good or was cancelled: its waiting dependents fail, transitively.

        Takes the root's id and status, not the task: it may already be evicted."""
        now = self._now
        assert now is not None
        todo = only if only is not None else [self.tasks[d] for d in self._waiting.pop(root_id, ())]
        for d in todo:
            if d.status != TS.PENDING:
                continue
            self._emit(
                ev.TaskFailed(
                    timestamp=now,
                    task_id=d.id,
                    agent_id=None,
                    attempt_number=d.attempt,
                    error=TaskError(
                        "DEPENDENCY_FAILED",
                        f"dependency {root_id} ended {root_status}",
                        {"dependency": root_id, "dependency_status": str(root_status)},
                    ),
                    retry_scheduled=False,
                    failure_kind="dependency_failed",
                )
            )
            self._fail_dependents_of(d.id, d.status)

    def _emit_performance(self, a: Agent, outcome: str, task_type: str | None = None) -> None:
        """Report an agent's metrics as they stand after an outcome or a learning cycle.

        Completions are reported at most once per ``performance_interval`` per agent
        (the figures are cumulative, so a skipped report loses nothing; the folded
        metrics are always exact); failures and learning cycles always are."""
        now, mono = self._now, self._mono
        assert now is not None and mono is not None
        if outcome == "completed":
            last = self._perf_at.get(a.id)
            if last is not None and mono - last < self.config.performance_interval:
                return
        self._perf_at[a.id] = mono
        m = a.metrics
        ok, bad = m.tasks_completed, m.tasks_failed
        self._emit(
            ev.AgentPerformanceUpdated(
                timestamp=now,
                agent_id=a.id,
                metrics=ev.PerformanceMetrics(
                    tasks_completed=ok,
                    tasks_failed=bad,
                    success_rate=round(ok / (ok + bad), 4) if ok + bad else 0.0,
                    average_response_time_ms=round(m.total_execution_ms / ok, 3) if ok else 0.0,
                    capability_improvements=m.capability_improvements,
                ),
                task_type=task_type,
                outcome=outcome,
            )
        )

    # ---------------------------------------------------------- appliers

    def _set_task_status(self, t: Task, to: TaskStatus, at: datetime) -> None:
        check_task_transition(t, to)
        if t.status in TERMINAL:
            self._finished.pop(t.id, None)  # retried: no longer finished
        elif to in TERMINAL:
            self._finished[t.id] = None
        self.task_counts[t.status] -= 1
        self.task_counts[to] += 1
        t.status = to
        t.updated_at = at
        if to != TS.PENDING:
            self._queued.pop(t.id, None)
        if to not in HELD:
            self._held_since.pop(t.id, None)
        if to == TS.COMPLETED:
            self.completed_by_day[at.date()] += 1
        elif to == TS.FAILED:
            self.failed_by_day[at.date()] += 1

    def _evict(self) -> None:
        """Drop the oldest finished tasks beyond ``retain_finished`` (called by ``apply``,
        so it depends on the log alone and a replay evicts the same tasks). A finished
        task holds no agent slot, queue entry or waiting dependent (all released when
        it finished); stale heap entries for it are skipped like any other.
        ``task_counts`` keep counting evicted tasks: they count every task."""
        while len(self._finished) > self.config.retain_finished:
            task_id = next(iter(self._finished))
            del self._finished[task_id]
            t = self.tasks.pop(task_id)
            self.evicted[task_id] = t.status
            self._waiting.pop(task_id, None)

    def _release_from_agent(self, t: Task) -> None:
        """Free the agent's slot. ``assigned_agent_id`` stays (a finished task
        remembers who ran it) until the task is re-queued."""
        if t.assigned_agent_id is not None:
            a = self.agents.get(t.assigned_agent_id)
            if a is not None and t.id in a.current_tasks:
                a.current_tasks.remove(t.id)
                self._dirty = True

    def _requeue(self, t: Task, at: datetime, due: datetime | None) -> None:
        self._set_task_status(t, TS.PENDING, at)
        t.assigned_agent_id = None
        t.started_at = None
        t.assigned_at = None
        t.progress = 0.0
        t.current_step = None
        t.estimated_completion = None
        t.next_retry_at = due
        if due is not None and due > at:
            heapq.heappush(self._delayed, (self._at(due), t.id, t.attempt))
        elif self._deps_met(t):
            self._enqueue(t)

    def _a_agent_created(self, d: ev.AgentCreated) -> None:
        # Copy everything the projection mutates, so emitted events stay as they were.
        # (Capability objects are shared: they are replaced, never mutated.)
        src = d.agent
        a = msgspec.structs.replace(
            src,
            current_tasks=[],
            capabilities=with_priors(src.capabilities),
            metrics=msgspec.structs.replace(src.metrics),
            type_stats={k: msgspec.structs.replace(v) for k, v in src.type_stats.items()},
            metadata=dict(src.metadata),
        )
        self.agents[a.id] = a
        self._index_agent(a)
        self._rebalance_trigger = "agent_joined"
        self._seen[a.id] = self._at(a.last_seen_at)
        self._learn_since[a.id] = self._at(a.created_at)
        self._arm_liveness(a)
        self._dirty = True

    def _a_agent_updated(self, d: ev.AgentUpdated) -> None:
        a = self.agents[d.agent_id]
        if d.name is not None:
            a.name = d.name
        if d.capabilities is not None:
            self._unindex_agent(a)
            a.capabilities = with_priors(d.capabilities)
            self._index_agent(a)
        if d.max_concurrent_tasks is not None:
            a.max_concurrent_tasks = d.max_concurrent_tasks
        self._dirty = True

    def _a_agent_status(self, d: ev.AgentStatusChanged) -> None:
        a = self.agents[d.agent_id]
        old, a.status = a.status, AgentStatus(d.new_status)
        if old == AS.OFFLINE and a.status in ONLINE:
            self._rebalance_trigger = "agent_joined"
            a.draining = False
        elif a.status == AS.OFFLINE:
            self._rebalance_trigger = "agent_left"
        if {old, a.status} - {AS.IDLE, AS.ACTIVE}:
            self._dirty = True  # eligibility changed (idle <-> active does not change it)

    def _a_agent_removed(self, d: ev.AgentRemoved) -> None:
        self.outcomes.pop(d.agent_id, None)
        self.last_cycle_at.pop(d.agent_id, None)
        self._seen.pop(d.agent_id, None)
        self._learn_since.pop(d.agent_id, None)
        self._perf_at.pop(d.agent_id, None)
        a = self.agents.pop(d.agent_id)
        self._unindex_agent(a)
        self._dirty = True

    def _a_agent_performance(self, d: ev.AgentPerformanceUpdated) -> None:
        pass  # metrics are folded from task_completed / task_failed; this event reports them

    def _a_task_created(self, d: ev.TaskCreated) -> None:
        src = d.task
        t = msgspec.structs.replace(
            src,
            required_capabilities=list(src.required_capabilities),
            depends_on=list(src.depends_on),
            failed_agents=list(src.failed_agents),
            metadata=dict(src.metadata),
            created_sequence=self.sequence,
        )
        self.tasks[t.id] = t
        self.task_counts[t.status] += 1
        unmet = [x for x in t.depends_on if x in self.tasks and self.tasks[x].status != TS.COMPLETED]
        for x in unmet:
            self._waiting.setdefault(x, {})[t.id] = None
        if not unmet and self._deps_met(t):  # (an evicted failed dependency: it fails at once)
            self._enqueue(t)

    def _a_task_assigned(self, d: ev.TaskAssigned) -> None:
        t = self.tasks[d.task_id]
        a = self.agents[d.agent_id]
        if t.status == TS.ASSIGNED:
            self._release_from_agent(t)  # a rebalancing move
        self._set_task_status(t, TS.ASSIGNED, d.timestamp)
        t.assigned_agent_id = a.id
        t.assigned_at = d.timestamp
        t.attempt = d.attempt_number
        t.estimated_completion = d.estimated_completion
        t.next_retry_at = None
        a.current_tasks.append(t.id)
        since = self._held_since[t.id] = self._at(d.timestamp)
        heapq.heappush(self._deadlines, (since + t.timeout_seconds, t.id, t.attempt))

    def _a_task_started(self, d: ev.TaskStarted) -> None:
        t = self.tasks[d.task_id]
        self._set_task_status(t, TS.RUNNING, d.timestamp)
        t.started_at = d.timestamp
        since = self._held_since[t.id] = self._at(d.timestamp)
        heapq.heappush(self._deadlines, (since + t.timeout_seconds, t.id, t.attempt))

    def _a_task_progress(self, d: ev.TaskProgress) -> None:
        t = self.tasks[d.task_id]
        t.progress = d.progress
        t.current_step = d.current_step
        t.estimated_completion = d.estimated_completion
        t.updated_at = d.timestamp

    def _a_task_completed(self, d: ev.TaskCompleted) -> None:
        t = self.tasks[d.task_id]
        a = self.agents.get(d.agent_id)
        self._set_task_status(t, TS.COMPLETED, d.timestamp)
        t.result = d.result
        t.error = None
        t.progress = 1.0
        t.completed_at = d.timestamp
        self._release_from_agent(t)
        if a is not None:
            m = a.metrics
            m.tasks_completed += 1
            m.total_execution_ms += d.execution_time_ms
            m.average_response_time_ms = round(m.total_execution_ms / m.tasks_completed, 3)
            m.success_rate = round(m.tasks_completed / (m.tasks_completed + m.tasks_failed), 4)
            st = a.type_stats.setdefault(t.type, TypeStats())
            st.completed += 1
            st.total_ms += d.execution_time_ms
            self._record_outcome(t, a.id, outcome_score(True, d.quality))
        for dep_id in self._waiting.get(t.id, ()):
            dt = self.tasks.get(dep_id)
            if dt is not None and dt.status == TS.PENDING and self._deps_met(dt):
                self._enqueue(dt)
        self._waiting.pop(t.id, None)

    def _a_task_failed(self, d: ev.TaskFailed) -> None:
        t = self.tasks[d.task_id]
        a = self.agents.get(d.agent_id) if d.agent_id else None
        t.error = d.error
        if d.failure_kind != "dependency_failed":
            t.failures += 1
        if d.agent_id and d.agent_id not in t.failed_agents:
            # from the event alone (not whether the agent still exists): fold_task agrees
            t.failed_agents.append(d.agent_id)
        if a is not None:
            m = a.metrics
            m.tasks_failed += 1
            m.success_rate = round(m.tasks_completed / (m.tasks_completed + m.tasks_failed), 4)
            a.type_stats.setdefault(t.type, TypeStats()).failed += 1
            if d.failure_kind in ("reported", "timeout"):
                self._record_outcome(t, a.id, outcome_score(False, None))
        self._release_from_agent(t)
        if d.retry_scheduled:
            self._requeue(t, d.timestamp, d.next_retry_at)
        else:
            self._set_task_status(t, TS.FAILED, d.timestamp)
            t.completed_at = d.timestamp

    def _a_task_cancelled(self, d: ev.TaskCancelled) -> None:
        t = self.tasks[d.task_id]
        self._set_task_status(t, TS.CANCELLED, d.timestamp)
        t.cancelled_by = d.cancelled_by
        t.completed_at = d.timestamp
        self._release_from_agent(t)

    def _a_task_retried(self, d: ev.TaskRetried) -> None:
        t = self.tasks[d.task_id]
        t.failures = 0
        t.error = None
        t.result = None
        t.cancelled_by = None
        t.completed_at = None
        t.failed_agents = []
        self._requeue(t, d.timestamp, None)
        for x in t.depends_on:
            if x in self.tasks and self.tasks[x].status != TS.COMPLETED:
                self._waiting.setdefault(x, {})[t.id] = None

    def _a_task_released(self, d: ev.TaskReleased) -> None:
        t = self.tasks[d.task_id]
        a = self.agents.get(d.agent_id)
        if a is not None and d.reason == "agent_shutdown":
            a.draining = True  # do not hand the work straight back to an agent that is leaving
        self._release_from_agent(t)
        self._requeue(t, d.timestamp, None)

    def _a_noop(self, d: ev.EventData) -> None:
        pass

    _handlers: dict[type[Command], Callable[[Hive, Any], None]] = {
        RegisterAgent: _on_register,
        UpdateAgent: _on_update,
        RemoveAgent: _on_remove,
        Heartbeat: _on_heartbeat,
        AgentDisconnected: _on_disconnected,
        EvictAgent: _on_evict,
        Recover: _on_recover,
        SubmitTask: _on_submit,
        CancelTask: _on_cancel,
        RetryTask: _on_retry,
        StartTask: _on_start,
        ReportProgress: _on_progress,
        CompleteTask: _on_complete,
        FailTask: _on_fail,
        ReleaseTask: _on_release,
        Tick: _on_tick,
        CompleteLearning: LearningMixin._on_complete_learning,
        ResetLearning: LearningMixin._on_reset_learning,
        Observe: ObservationsMixin._on_observe,
    }

    _appliers: dict[type[ev.EventData], Callable[[Hive, Any], None]] = {
        ev.AgentCreated: _a_agent_created,
        ev.AgentUpdated: _a_agent_updated,
        ev.AgentStatusChanged: _a_agent_status,
        ev.AgentRemoved: _a_agent_removed,
        ev.AgentPerformanceUpdated: _a_agent_performance,
        ev.TaskCreated: _a_task_created,
        ev.TaskAssigned: _a_task_assigned,
        ev.TaskStarted: _a_task_started,
        ev.TaskProgress: _a_task_progress,
        ev.TaskCompleted: _a_task_completed,
        ev.TaskFailed: _a_task_failed,
        ev.TaskCancelled: _a_task_cancelled,
        ev.TaskRetried: _a_task_retried,
        ev.TaskReleased: _a_task_released,
        ev.LearningCycleCompleted: LearningMixin._a_learning_completed,
        ev.HiveStatusUpdate: _a_noop,
        ev.SystemAlert: ObservationsMixin._a_alert,
        ev.ResourceAlert: ObservationsMixin._a_alert,
        ev.ModuleStatusChanged: ObservationsMixin._a_module_status,
        ev.InterModuleMessage: _a_noop,
        ev.CoordinationEvent: _a_noop,
        ev.LearningCycleStarted: LearningMixin._a_learning_started,
        ev.AgentLearningReset: LearningMixin._a_learning_reset,
        ev.ErrorOccurred: _a_noop,
    }
