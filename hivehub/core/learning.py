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

This module is the pure part. The decisions (when a cycle starts, what it
records, a reset) are in ``agents.py``; folding their events is in
``projection.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .config import LearningConfig
from .model import AgentCapability, Capability, Cycle

__all__ = [
    "Cycle",
    "LearningConfig",
    "merge_capabilities",
    "outcome_score",
    "updated_proficiency",
    "with_priors",
]


def outcome_score(success: bool, quality: float | None) -> float:
    if not success:
        return 0.0
    return 1.0 if quality is None else quality


def updated_proficiency(old: float, learning_rate: float, scores: list[float]) -> float:
    """The new proficiency after one cycle over ``scores`` (non-empty)."""
    observed = sum(scores) / len(scores)
    new = old + learning_rate * (observed - old)
    return min(1.0, max(0.0, new))


def merge_capabilities(
    held: Sequence[AgentCapability], declared: Sequence[Capability]
) -> list[AgentCapability]:
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
        c
        if c.declared_proficiency is not None
        else msgspec.structs.replace(c, declared_proficiency=c.proficiency)
        for c in caps
    ]
