"""The learning update: pure functions, documented in ``docs/learning.md``.

An agent's outcomes are scored per capability the task required:
a completion scores its reported ``quality`` (1.0 when none is given), a failure
the agent caused (its own report or a timeout) scores 0.0. A learning cycle moves
each observed capability's proficiency toward the mean observed score at that
capability's learning rate::

    new = clamp(old + learning_rate * (observed - old), 0, 1)

- bounded: a convex combination of two numbers in [0, 1] stays in [0, 1];
- monotone in outcomes: a better outcome raises ``observed`` and so ``new``;
- deterministic given the log: the inputs are folded from logged events, and the
  resulting values are recorded in ``learning_cycle_completed``;
- bounded memory: at most ``max_window`` scores (the newest) wait per agent and
  capability for the next cycle, and none are kept while learning is off.

Declared and learned proficiency: what an agent sends when it registers is a
*prior* (``declared_proficiency``); the hub's effective ``proficiency`` starts there
and moves with the cycles. Registering again (every reconnect and hub restart)
with the same prior keeps the learned value (:func:`merge_capabilities`); a changed
prior replaces it; an operator resets it explicitly (``agent_learning_reset``).

:class:`LearningMixin` is the part of the :class:`~hivehub.core.hive.Hive` that
runs the cycles: it folds outcomes, starts and completes cycles, and applies
their events (see ``_state.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime

import msgspec
from msgspec import Struct

from . import events as ev
from ._state import HiveState
from .commands import CompleteLearning, ResetLearning
from .errors import AgentNotFound, InvalidInput, InvalidTransition
from .model import AgentCapability, AgentStatus, Capability, Task

AS = AgentStatus


class LearningConfig(Struct, frozen=True):
    enabled: bool = True
    #: a cycle starts once an agent has this many new outcomes ...
    min_outcomes: int = 20
    #: ... or this many seconds after its last cycle, given at least one outcome
    interval_seconds: float = 300.0
    #: scores kept per agent and capability until a cycle uses them (the newest;
    #: at least ``min_outcomes``), so an agent that cannot learn for a while (busy
    #: in a cycle, offline, failed) holds a bounded window, not every outcome
    max_window: int = 1000

    @property
    def window(self) -> int:
        return max(self.max_window, self.min_outcomes, 1)


def outcome_score(success: bool, quality: float | None) -> float:
    if not success:
        return 0.0
    return 1.0 if quality is None else quality


def updated_proficiency(old: float, learning_rate: float, scores: list[float]) -> float:
    """The new proficiency after one cycle over ``scores`` (non-empty)."""
    observed = sum(scores) / len(scores)
    new = old + learning_rate * (observed - old)
    return min(1.0, max(0.0, new))


def merge_capabilities(held: Sequence[AgentCapability], declared: Sequence[Capability]) -> list[AgentCapability]:
    """The capabilities an agent has after declaring ``declared``.

    Each declared proficiency is the capability's prior. A capability whose prior
    is the one already held keeps its effective (possibly learned) proficiency; a
    new capability, or a changed prior, starts at the declared value. The learning
    rate is taken as declared either way. Capabilities not declared are dropped."""
    old = {c.name: c for c in held}
    out = []
    for c in declared:
        prev = old.get(c.name)
        effective = prev.proficiency if prev is not None and prev.prior == c.proficiency else c.proficiency
        out.append(AgentCapability(c.name, effective, c.learning_rate, c.proficiency))
    return out


def with_priors(caps: Sequence[AgentCapability]) -> list[AgentCapability]:
    """``caps`` with every prior filled in (events logged before priors existed have
    none: then the proficiency they carry is the prior)."""
    return [
        c if c.declared_proficiency is not None else msgspec.structs.replace(c, declared_proficiency=c.proficiency)
        for c in caps
    ]


class Cycle(Struct):
    """A learning cycle in progress (folded from ``learning_cycle_started``)."""

    cycle_id: str
    agent_id: str
    started_at: datetime
    target: str
    window: dict[str, list[float]]
    #: ``started_at`` on the monotonic axis (the duration is measured on it)
    started_mono: float = 0.0


class LearningMixin(HiveState):
    outcomes: dict[str, dict[str, deque[float]]]  # agent -> capability -> newest scores
    last_cycle_at: dict[str, datetime]
    #: volatile: agent -> when (monotonic) its last cycle started, else when it was created
    _learn_since: dict[str, float]
    cycles: dict[str, Cycle]
    cycle_durations_ms: list[float]

    def _maybe_learn(self, only: set[str] | None) -> None:
        """Start a cycle for each agent with enough new outcomes (or old enough ones).
        ``only``: the agents this command touched (every agent on a Tick)."""
        cfg = self.config.learning
        if not cfg.enabled or not self.outcomes or only == set():
            return
        now, mono = self._now, self._mono
        assert now is not None and mono is not None
        busy = {c.agent_id for c in self.cycles.values()}
        todo = self.outcomes.items() if only is None else [(k, self.outcomes[k]) for k in only if k in self.outcomes]
        for agent_id, window in list(todo):
            a = self.agents.get(agent_id)
            if a is None or agent_id in busy or a.status not in (AS.IDLE, AS.ACTIVE):
                continue
            n = max((len(v) for v in window.values()), default=0)
            if n == 0:
                continue
            last = self._learn_since.get(agent_id, mono)
            if n < cfg.min_outcomes and mono - last < cfg.interval_seconds:
                continue
            target = max(sorted(window), key=lambda k: len(window[k]))
            durations = self.cycle_durations_ms
            est = (sum(durations) / len(durations)) / 60000 if durations else 0.0
            self._emit(
                ev.LearningCycleStarted(
                    timestamp=now,
                    cycle_id=f"learn-{self._new_id()}",
                    agent_id=agent_id,
                    learning_type="capability_improvement",
                    target_capability=target,
                    estimated_duration_minutes=round(est, 6),
                )
            )
            self._emit_status(a, AS.LEARNING, "learning_cycle_started")

    def _on_complete_learning(self, cmd: CompleteLearning) -> None:
        if cmd.cycle_id not in self.cycles:
            raise InvalidTransition(f"no learning cycle {cmd.cycle_id} in progress", cycle_id=cmd.cycle_id)
        self._complete_cycle(cmd.cycle_id)

    def _complete_cycle(self, cycle_id: str) -> None:
        now, mono = self._now, self._mono
        assert now is not None and mono is not None
        c = self.cycles[cycle_id]
        a = self.agents.get(c.agent_id)
        improvements: dict[str, ev.Improvement] = {}
        if a is not None:
            for name, scores in sorted(c.window.items()):
                cap = a.capability(name)
                if cap is None or not scores:
                    continue
                new = round(updated_proficiency(cap.proficiency, cap.learning_rate, scores), 6)
                improvements[f"{name}_proficiency"] = ev.Improvement(
                    old_value=cap.proficiency, new_value=new, improvement=round(new - cap.proficiency, 6)
                )
        self._emit(
            ev.LearningCycleCompleted(
                timestamp=now,
                cycle_id=cycle_id,
                agent_id=c.agent_id,
                improvements=improvements,
                duration_ms=round(max(0.0, mono - c.started_mono) * 1000, 3),
            )
        )
        if a is not None:
            if a.status == AS.LEARNING:
                self._emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "learning_cycle_completed")
            self._emit_performance(a, "learning_cycle_completed")

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

    def _on_reset_learning(self, cmd: ResetLearning) -> None:
        a = self.agents.get(cmd.agent_id)
        if a is None:
            raise AgentNotFound(f"no agent {cmd.agent_id}", agent_id=cmd.agent_id)
        names = [c.name for c in a.capabilities] if cmd.capabilities is None else list(dict.fromkeys(cmd.capabilities))
        unknown = [n for n in names if a.capability(n) is None]
        if unknown:
            raise InvalidInput(
                f"agent {a.id} has no capability {unknown[0]}", agent_id=a.id, unknown=unknown,
                capabilities=[c.name for c in a.capabilities],
            )
        now = self._now
        assert now is not None
        changes: dict[str, ev.Improvement] = {}
        for n in names:
            c = a.capability(n)
            assert c is not None
            changes[n] = ev.Improvement(
                old_value=c.proficiency, new_value=c.prior, improvement=round(c.prior - c.proficiency, 6)
            )
        self._emit(
            ev.AgentLearningReset(timestamp=now, agent_id=a.id, capabilities=changes, requested_by=cmd.requested_by)
        )

    # ---------------------------------------------------------- appliers

    def _a_learning_started(self, d: ev.LearningCycleStarted) -> None:
        since = self._at(d.timestamp)
        window = {name: list(scores) for name, scores in self.outcomes.pop(d.agent_id, {}).items()}
        self.cycles[d.cycle_id] = Cycle(d.cycle_id, d.agent_id, d.timestamp, d.target_capability, window, since)
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
