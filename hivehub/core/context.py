"""The context of one command: what a decision reads and the one way it changes anything.

A :class:`Decision` is made by ``Hive.handle`` for each command. Decisions
(``agents.py``, ``tasks.py``, ``scheduler.py``, ``tick.py``) read the state
through ``ctx.s`` and change it only by :meth:`Decision.emit`, which stamps the
event (sequence, message id, ``caused_by``) and hands it to ``apply`` at once,
so a later decision of the same command sees the earlier ones.

The exception, by design, is liveness (:meth:`Decision.see`): a heartbeat is not
logged, so hearing from an agent updates volatile state directly.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec

from . import events as ev
from .model import Agent, AgentStatus, Task
from .policies import Backoff
from .rounding import round3, round4
from .state import HiveState
from .transitions import check_agent_transition

__all__ = ["Decision"]


class Decision:
    """One command being decided: its readings, its cause and its output.

    Args:
        s: the state (read only, except through ``apply``).
        apply: the projection's only mutator; every emitted event goes through it.
        now: the wall clock; stamps the events.
        mono: the monotonic reading every duration and deadline is measured on.
        cause: the command's id, recorded as ``caused_by``.
        backoff: the retry delay policy.
    """

    def __init__(
        self,
        s: HiveState,
        apply: Callable[[ev.Event], None],
        now: datetime,
        mono: float,
        cause: str | None,
        backoff: Backoff,
    ) -> None:
        self.s = s
        self._apply = apply
        self.now = now
        self.mono = mono
        self.cause = cause
        self.backoff = backoff
        self.out: list[ev.Event] = []
        #: agents whose load this command may have changed -> the reason (``scheduler.settle``)
        self.touched: dict[str, str] = {}

    def emit(self, data: ev.EventData) -> None:
        """Record ``data`` as the next event and apply it."""
        s = self.s
        data.caused_by = self.cause
        seq = s.sequence + 1
        event = ev.Event(data.TYPE, data, self.now, f"{s._msg_prefix}-{seq}", seq)
        self._apply(event)
        self.out.append(event)

    def emit_status(self, a: Agent, new: AgentStatus, reason: str) -> None:
        """Change an agent's status (checked against ``AGENT_TRANSITIONS`` before emitting)."""
        check_agent_transition(a, new)
        self.emit(
            ev.AgentStatusChanged(
                timestamp=self.now, agent_id=a.id, old_status=a.status, new_status=new, reason=reason
            )
        )

    def touch(self, agent_id: str | None, reason: str) -> None:
        if agent_id is not None and agent_id in self.s.agents:
            self.touched[agent_id] = reason

    def held_for(self, t: Task) -> float:
        """Seconds (monotonic) since the held task was started, or assigned if not yet."""
        return self.s._held_for(t, self.mono)

    def estimate(self, a: Agent, t: Task) -> datetime | None:
        """Completion estimate from the agent's observed durations on this task type
        (else on all types); None when the agent has no completed task yet."""
        st = a.type_stats.get(t.type)
        if st is not None and st.completed:
            mean_ms = st.total_ms / st.completed
        elif a.metrics.tasks_completed:
            mean_ms = a.metrics.total_execution_ms / a.metrics.tasks_completed
        else:
            return None
        # (milliseconds by position: the keyword form costs ~0.3 us more, per assignment)
        return self.now + timedelta(0, 0, 0, mean_ms)

    def emit_performance(self, a: Agent, outcome: str, task_type: str | None = None) -> None:
        """Report an agent's metrics as they stand after an outcome or a learning cycle.

        Completions are reported at most once per ``performance_interval`` per agent
        (the figures are cumulative, so a skipped report loses nothing; the folded
        metrics are always exact); failures and learning cycles always are."""
        if outcome == "completed":
            last = self.s._perf_at.get(a.id)
            if last is not None and self.mono - last < self.s.config.performance_interval:
                return
        m = a.metrics
        ok, bad = m.tasks_completed, m.tasks_failed
        self.emit(
            ev.AgentPerformanceUpdated(
                timestamp=self.now,
                agent_id=a.id,
                metrics=ev.PerformanceMetrics(
                    tasks_completed=ok,
                    tasks_failed=bad,
                    success_rate=round4(ok / (ok + bad)) if ok + bad else 0.0,
                    average_response_time_ms=round3(m.total_execution_ms / ok) if ok else 0.0,
                    capability_improvements=m.capability_improvements,
                    # (none until it reports usage: no zeros in every report of a non-LLM agent)
                    usage=msgspec.structs.replace(m.usage) if m.usage.requests else None,
                ),
                task_type=task_type,
                outcome=outcome,
            )
        )

    # ---------------------------------------------------------- volatile liveness

    def see(self, a: Agent) -> None:
        """Volatile: the agent was heard from now (not logged; see ``state.py``).

        Liveness runs on the monotonic reading; ``last_seen_at`` is the wall clock
        of the same moment, for display (it may go back if the clock was stepped)."""
        see(self.s, a, self.now, self.mono)


def see(s: HiveState, a: Agent, now: datetime, mono: float) -> None:
    if mono >= s._seen.get(a.id, mono):
        s._seen[a.id] = mono
        a.last_seen_at = now
    if a.id not in s._live_armed:
        arm_liveness(s, a)


def arm_liveness(s: HiveState, a: Agent) -> None:
    """Volatile: make sure the agent has its one entry in the liveness heap.

    The entry may be due earlier than ``_seen + timeout`` (the agent was heard
    from since it was pushed); the Tick that pops it pushes it again at the new
    due time, so the heap holds at most one entry per agent."""
    if a.id in s._live_armed:
        return
    s._live_armed.add(a.id)
    heapq.heappush(s._liveness, (s._seen[a.id] + s.config.heartbeat_timeout, a.id))
