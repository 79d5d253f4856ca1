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
"""

from __future__ import annotations

from msgspec import Struct


class LearningConfig(Struct, frozen=True):
    enabled: bool = True
    #: a cycle starts once an agent has this many new outcomes ...
    min_outcomes: int = 5
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
