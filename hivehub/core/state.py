"""The hive's state: every field, and the reads that decisions and adapters make.

:class:`HiveState` holds three kinds of state, and says which is which:

- **projection**, folded from the log by ``apply`` (``projection.py``) and by
  nothing else: agents, tasks, counters, retention, learning, alerts, and the
  scheduler's indexes (the ready queue, the capability index, the free-agent
  heaps, the online proficiencies, the dependency index). A hive that replays
  the log holds the same projection, field for field
  (``tests/core/test_replay_property.py``).
- **timers**, filled by ``apply`` and drained by time (a ``Tick``): retries that
  are not due yet and task deadlines. The log has no "time passed" event, so a
  replay holds entries a live hive already drained; after
  ``Projection.drain_timers(mono)`` both are equal again.
- **volatile**: heartbeat liveness (``_seen``, ``_liveness``,
  ``Agent.last_seen_at``) is fed by heartbeats, which are not logged by design;
  and the scratch of one ``handle`` (``_now``, ``_mono``, ``_dirty``, the
  coordinator's timer).

Nothing here mutates: the reads are pure functions of the fields.
"""

from __future__ import annotations

import bisect
import random
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from . import events as ev
from .config import HiveConfig
from .errors import AgentNotFound, AttemptRequired, NotTaskHolder, TaskEvicted, TaskNotFound
from .learning import Cycle
from .model import (
    HELD,
    ONLINE,
    Agent,
    AgentStatus,
    Budget,
    Quota,
    RequiredCapability,
    Reservation,
    Task,
    TaskStatus,
    Usage,
    UsageTotals,
)
from .observations import active_alert_entries, requirement_label
from .policies import exponential_backoff
from .pools import DaySpend, Hold, Pool
from .readyqueue import ReadyQueue
from .usage import usage_summary

__all__ = ["HiveState", "ReadyKey", "Signature"]

TS = TaskStatus
AS = AgentStatus

#: a ready-queue group: the sorted (capability, min_proficiency) pairs a task requires
Signature = tuple[tuple[str, float], ...]
#: a ready-queue group: the owner and the signature, so a group blocked by its
#: owner's budget holds exactly that owner's tasks of those requirements
ReadyKey = tuple[str, Signature]


class HiveState:
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

        # ---- projection ------------------------------------------------------
        self.sequence = 0
        self.agents: dict[str, Agent] = {}
        self.tasks: dict[str, Task] = {}
        #: finished tasks still in memory, oldest finish first (a retry takes one out).
        #: An OrderedDict: eviction pops the oldest in O(1), where a dict's first key
        #: is found by scanning the slots deleted before it (2.5 us per eviction at
        #: the default retain_finished)
        self._finished: OrderedDict[str, None] = OrderedDict()
        #: evicted task id -> its final status: what the core still needs to know
        #: (the id is taken; whether a dependent's dependency completed). The value
        #: is a shared enum member, so an entry costs the id string and a dict slot.
        #: Bounded by ``remember_evicted``: the oldest evictions are forgotten.
        self.evicted: dict[str, TaskStatus] = {}
        #: the ids of ``evicted``, oldest eviction first (nothing else leaves it, so a
        #: FIFO: popping a dict's first key scans the deleted slots before it)
        self._evicted_order: deque[str] = deque()
        #: tasks evicted and then forgotten: only the log knows them now. Their
        #: final status is an input of the commands that name them (``facts``).
        self.forgotten = 0
        #: tasks by status, and finishes by UTC day: plain dicts (a missing key is 0:
        #: read with ``.get(k, 0)``), since ``apply`` bumps them for every status
        #: change and a Counter's item access is twice a dict's
        self.task_counts: dict[TaskStatus, int] = {}
        self.completed_by_day: dict[date, int] = {}
        self.failed_by_day: dict[date, int] = {}
        # learning (folded from outcomes)
        self.outcomes: dict[str, dict[str, deque[float]]] = {}  # agent -> capability -> newest scores
        self.last_cycle_at: dict[str, datetime] = {}
        #: agent -> when (monotonic) its last cycle started, else when it was created
        self._learn_since: dict[str, float] = {}
        self.cycles: dict[str, Cycle] = {}
        self.cycle_durations_ms: list[float] = []
        #: agent -> when (monotonic) its metrics were last reported
        self._perf_at: dict[str, float] = {}
        # self-monitoring (folded from observations)
        self.modules: dict[str, str] = {}
        self.alerts: dict[str, ev.EventData] = {}  # key -> the active system/resource alert
        # model usage, quota pools and budgets (``usage.py``, ``quotas.py``)
        self.usage_by_model: dict[str, UsageTotals] = {}
        self.usage_by_type: dict[str, UsageTotals] = {}
        self.usage_by_owner: dict[str, UsageTotals] = {}
        self.quotas: dict[str, Quota] = {}
        self.budgets: dict[str, Budget] = {}
        #: pool name -> its buckets, attempts in flight and pause
        self._pools: dict[str, Pool] = {}
        #: held task -> (owner, what its attempt reserved)
        self._reservations: dict[str, tuple[str, Reservation]] = {}
        #: owner -> what its attempts in flight reserve of its budget
        self._reserved: dict[str, Hold] = {}
        #: owner -> what it spent on the latest UTC day it spent on
        self._spent: dict[str, DaySpend] = {}
        #: held task -> the usage its attempt reported so far (progress reports)
        self._attempt_usage: dict[str, Usage] = {}
        # indexes (``indexes.py``; maintained by apply)
        self._cap_index: dict[str, set[str]] = {}  # capability -> agents declaring it
        #: capability ("" = any) -> heap of (-score, agent, version) of agents that could take work
        self._free: dict[str, list[tuple[float, str, int]]] = {}
        self._ver: dict[str, int] = {}
        self._online_prof: dict[str, list[float]] = {}  # capability -> sorted proficiencies of online agents
        self._online_caps: dict[str, dict[str, float]] = {}  # agent -> what it contributes to _online_prof
        self._online: set[str] = set()
        self._eligible: set[str] = set()  # agents that could take work now
        #: requirement signature -> its entries (queue key, seq, task); the top entry is always current
        self._ready: dict[ReadyKey, ReadyQueue] = {}
        self._ready_seq = 0
        self._queued: dict[str, int] = {}  # task id -> its current ready entry's seq (others are stale)
        #: dependency id -> dependents, insertion-ordered (a set's order would vary with hashing)
        self._waiting: dict[str, dict[str, None]] = {}
        #: held task -> assigned, then started (monotonic); moved on by the time spent
        #: waiting for input, so the task timeout and execution time leave the wait out
        self._held_since: dict[str, float] = {}
        #: input_required task -> when (monotonic) it asked (``core/human.py``)
        self._input_since: dict[str, float] = {}
        #: agents holding more tasks than slots (prefetched work waits there), in the
        #: order they came to (``indexes.agent_changed``; read by ``core/prefetch.py``)
        self._over: dict[str, None] = {}
        #: agents online, not draining, with a slot nothing assigned fills (same)
        self._open: dict[str, None] = {}
        #: recalled task -> (its attempt, the agent with a free slot it was recalled
        #: for), until the task's status next changes (``task_recalled``)
        self._recalls: dict[str, tuple[int, str]] = {}

        # ---- timers (filled by apply, drained by Tick) ---------------------------
        #: wall seconds minus monotonic seconds, measured by the adapter when it folds
        #: the log; converts logged wall times to the monotonic axis on replay
        self.mono_offset = 0.0
        self._delayed: list[tuple[float, str, int, int]] = []  # retries (due, task, attempt, ready seq)
        self._deadlines: list[tuple[float, str, int]] = []  # timeouts (due, task, attempt)
        #: input timeouts (due, task, the question's deadline: which question)
        self._input_deadlines: list[tuple[float, str, datetime]] = []

        # ---- volatile ----------------------------------------------------------
        self._seen: dict[str, float] = {}  # agent -> when last heard from (monotonic)
        self._liveness: list[tuple[float, str]] = []  # (due, agent)
        # agents with an entry in _liveness: at most one each, so a heartbeat flood
        # cannot grow the heap (a popped entry of a live agent is pushed again)
        self._live_armed: set[str] = set()
        #: a scheduling pass is owed: set by apply, cleared by the pass at the end of handle
        self._dirty = True
        self._rebalance_trigger: str | None = "startup"
        self._next_rebalance_at: float | None = None  # monotonic
        #: when (monotonic) a pool blocking ready work has room again, or the next UTC
        #: midnight for a budget: the Tick then owes a scheduling pass
        self._wake_at: float | None = None
        #: the readings of the command being handled (``None`` outside ``handle``)
        self._now: datetime | None = None
        self._mono: float | None = None
        #: the final statuses of forgotten tasks the command being handled names, as
        #: the caller read them from the log (``None``: not in the log), plus what the
        #: command itself forgets while it runs (``None`` outside ``handle``)
        self._facts: dict[str, TaskStatus | None] | None = None

    # ---------------------------------------------------------- time

    def _at(self, wall: datetime) -> float:
        """A logged wall-clock time on the monotonic axis of deadlines and durations.

        Inside ``handle`` it is taken relative to the command's own readings, so a
        time the command emits (``now``, ``now + backoff``) lands exactly where the
        monotonic clock says. Outside (replaying the log, a follower folding events)
        it is ``wall - mono_offset``: exact for events logged since the offset was
        measured, and off by any clock step before that (only until each deadline
        is next re-armed)."""
        if wall is self._now and self._mono is not None:
            return self._mono  # (the command's own time, as below: mono + 0.0)
        if self._now is not None and self._mono is not None:
            # (a difference of timestamps, not of datetimes: with one clock, where
            # mono is now - mono_offset, this is exactly the replay's value below)
            return self._mono + (wall.timestamp() - self._now.timestamp())
        return wall.timestamp() - self.mono_offset

    def next_deadline(self) -> float | None:
        """The earliest monotonic reading at which a Tick would change something."""
        heaps = (self._delayed, self._deadlines, self._liveness, self._input_deadlines)
        cands: list[float] = [heap[0][0] for heap in heaps if heap]
        if self._wake_at is not None:
            cands.append(self._wake_at)
        return min(cands) if cands else None

    # ---------------------------------------------------------- lookups

    def has_task(self, task_id: str) -> bool:
        """The id names a task, in memory, evicted, or forgotten and given as a fact
        (so it cannot be used again)."""
        return task_id in self.tasks or self.final_status(task_id) is not None

    def final_status(self, task_id: str) -> TaskStatus | None:
        """The final status of a task no longer in memory: remembered (``evicted``),
        or, once forgotten, as the command's facts give it. ``None``: not known."""
        status = self.evicted.get(task_id)
        if status is None and self._facts is not None:
            status = self._facts.get(task_id)
        return status

    def is_remembered(self, task_id: str) -> bool:
        """The core knows whether the id names a task without reading the log:
        it is in memory or evicted, or nothing was ever forgotten."""
        return not self.forgotten or task_id in self.tasks or task_id in self.evicted

    def may_be_in_log(self, task_id: str) -> bool:
        """Not in memory, but the log may hold the task: it was evicted, or it may
        be among the forgotten (``GET /api/tasks/{id}`` then reads the log)."""
        return task_id not in self.tasks and (task_id in self.evicted or self.forgotten > 0)

    def _agent(self, agent_id: str) -> Agent:
        a = self.agents.get(agent_id)
        if a is None:
            raise AgentNotFound(f"no agent {agent_id}", agent_id=agent_id)
        return a

    def _task(self, task_id: str) -> Task:
        t = self.tasks.get(task_id)
        if t is None:
            final = self.final_status(task_id)
            if final is not None:
                raise TaskEvicted(
                    f"task {task_id} ended {final} and was evicted from memory"
                    f" (retain_finished={self.config.retain_finished}); it can no longer change",
                    task_id=task_id,
                    status=str(final),
                )
            raise TaskNotFound(f"no task {task_id}", task_id=task_id)
        return t

    def _task_status(self, task_id: str) -> TaskStatus:
        """The status of a task known to exist (in memory, evicted or given as a fact)."""
        t = self.tasks.get(task_id)
        if t is not None:
            return t.status
        final = self.final_status(task_id)
        assert final is not None, f"task {task_id} is unknown"
        return final

    def _held(self, task_id: str, agent_id: str, attempt: int | None) -> Task:
        """The task, when ``agent_id`` holds ``attempt`` and it is the current one.

        Raises TaskNotFound for an unknown task, then AttemptRequired when the
        report names no attempt: a report without one cannot be told apart from a
        stale report of an earlier attempt (a late completion of attempt 1 would
        complete attempt 2), so it is never guessed. Raises NotTaskHolder when the
        agent does not hold that attempt now."""
        t = self.tasks.get(task_id)
        if t is None:
            final = self.final_status(task_id)
            if final is not None:  # finished long ago: a stale report, as before eviction
                raise NotTaskHolder(
                    f"agent {agent_id} does not hold task {task_id}",
                    task_id=task_id,
                    agent_id=agent_id,
                    attempt=attempt,
                    status=str(final),
                )
            t = self._task(task_id)  # raises
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

    def _deps_met(self, t: Task) -> bool:
        """Every dependency completed. Read by ``apply`` (no facts there: a replay has
        none), so a dependency neither in memory nor remembered counts as completed.
        That is sound: a task that may wait on a forgotten one that did not complete
        is refused (a retry) or failed at once by the command that creates it
        (``tasks._create``, which knows the status from its facts), before anything
        schedules it; and a task that ran had its dependencies completed for good."""
        for d in t.depends_on:
            dt = self.tasks.get(d)
            status = dt.status if dt is not None else self.evicted.get(d, TS.COMPLETED)
            if status != TS.COMPLETED:
                return False
        return True

    def _held_for(self, t: Task, mono: float) -> float:
        """Seconds (monotonic) since the held task was started, or assigned if not yet."""
        held = mono - self._held_since.get(t.id, mono)
        return held if held > 0.0 else 0.0  # (max(0.0, held) without the call: once per outcome)

    # ---------------------------------------------------------- matching

    def _candidates(self, required: Sequence[RequiredCapability]) -> list[Agent]:
        """Agents meeting every requirement, found through the capability index
        (the smallest posting list of the required names), not a scan of all agents."""
        if not required:
            return list(self.agents.values())
        best: set[str] | None = None
        for r in required:
            ids = self._cap_index.get(r.name)
            if not ids:
                return []
            if best is None or len(ids) < len(best):
                best = ids
        assert best is not None
        req = list(required)
        return [a for a in (self.agents[aid] for aid in best) if a.meets(req)]

    def count_matching(self, required: Sequence[RequiredCapability]) -> int:
        """Online agents meeting every requirement: a binary search for one
        requirement; the capability index for several."""
        if not required:
            return len(self._online)
        if len(required) == 1:
            lst = self._online_prof.get(required[0].name, [])
            return len(lst) - bisect.bisect_left(lst, required[0].min_proficiency)
        return sum(1 for a in self._candidates(required) if a.status in ONLINE)

    def matching_agents(self, required: Sequence[RequiredCapability]) -> int:
        """Online agents that currently meet every requirement."""
        return self.count_matching(required)

    # ---------------------------------------------------------- views

    def status(self, now: datetime) -> dict[str, Any]:
        """The hive's status folded from the log (``GET /api/hive/status``)."""
        online = [a for a in self.agents.values() if a.status in ONLINE]
        active = [a for a in online if a.status == AS.ACTIVE]
        slots = sum(a.max_concurrent_tasks for a in online)
        counts = self.task_counts
        held = sum(counts.get(st, 0) for st in HELD)
        return {
            "sequence": self.sequence,
            "metrics": {
                "total_agents": len(self.agents),
                "online_agents": len(online),
                "active_agents": len(active),
                "idle_agents": sum(1 for a in online if a.status == AS.IDLE),
                "offline_agents": sum(1 for a in self.agents.values() if a.status == AS.OFFLINE),
                "total_tasks": len(self.tasks) + len(self.evicted) + self.forgotten,
                "pending_tasks": counts.get(TS.PENDING, 0),
                "assigned_tasks": counts.get(TS.ASSIGNED, 0),
                "running_tasks": counts.get(TS.RUNNING, 0),
                "completed_tasks": counts.get(TS.COMPLETED, 0),
                "failed_tasks": counts.get(TS.FAILED, 0),
                "cancelled_tasks": counts.get(TS.CANCELLED, 0),
                "awaiting_approval_tasks": counts.get(TS.AWAITING_APPROVAL, 0),
                "input_required_tasks": counts.get(TS.INPUT_REQUIRED, 0),
                "completed_tasks_today": self.completed_by_day.get(now.date(), 0),
                "failed_tasks_today": self.failed_by_day.get(now.date(), 0),
                # share of online task slots in use: the hive's own load
                "system_load": round(held / slots, 4) if slots else 0.0,
            },
        }

    def usage_summary(self) -> dict[str, Any]:
        """Model usage folded from the log: ``{"total", "by_model", "by_type", "by_owner"}``."""
        return usage_summary(self.usage_by_model, self.usage_by_type, self.usage_by_owner)

    def active_alerts(self) -> list[dict[str, Any]]:
        """Every active alert as a plain entry (``GET /api/alerts``)."""
        return active_alert_entries(self.alerts)

    def unservable_groups(self) -> dict[str, int]:
        """Ready pending work that no online agent can serve: task count by requirement
        label. Walks the scheduler's ready groups (pending tasks only), not every task."""
        out: dict[str, int] = {}
        for (_, sig), heap in self._ready.items():
            count = sum(1 for _, seq, tid in heap if self._queued.get(tid) == seq)
            if not count:
                continue
            required = [RequiredCapability(name=n, min_proficiency=m) for n, m in sig]
            if any(a.status in ONLINE for a in self._candidates(required)):
                continue
            label = requirement_label(sig)
            out[label] = out.get(label, 0) + count
        return out
