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
  resulting values are recorded in ``learning_cycle_completed``.

:class:`LearningMixin` is the part of the :class:`~hivehub.core.hive.Hive` that
runs the cycles: it folds outcomes, starts and completes cycles, and applies
their events (see ``_state.py``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec import Struct

from . import events as ev
from ._state import HiveState
from .commands import CompleteLearning
from .errors import InvalidTransition
from .model import AgentStatus, Task

AS = AgentStatus


class LearningConfig(Struct, frozen=True):
    enabled: bool = True
    #: a cycle starts once an agent has this many new outcomes ...
    min_outcomes: int = 20
    #: ... or this many seconds after its last cycle, given at least one outcome
    interval_seconds: float = 300.0


def outcome_score(success: bool, quality: float | None) -> float:
    if not success:
        return 0.0
    return 1.0 if quality is None else quality


def updated_proficiency(old: float, learning_rate: float, scores: list[float]) -> float:
    """The new proficiency after one cycle over ``scores`` (non-empty)."""
    observed = sum(scores) / len(scores)
    new = old + learning_rate * (observed - old)
    return min(1.0, max(0.0, new))


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
    outcomes: dict[str, dict[str, list[float]]]  # agent -> capability -> scores
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
        if not t.required_capabilities or agent_id not in self.agents:
            return
        window = self.outcomes.setdefault(agent_id, {})
        for r in t.required_capabilities:
            window.setdefault(r.name, []).append(score)

    # ---------------------------------------------------------- appliers

    def _a_learning_started(self, d: ev.LearningCycleStarted) -> None:
        since = self._at(d.timestamp)
        self.cycles[d.cycle_id] = Cycle(
            d.cycle_id, d.agent_id, d.timestamp, d.target_capability, self.outcomes.pop(d.agent_id, {}), since
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
