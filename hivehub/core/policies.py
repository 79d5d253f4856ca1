"""Pure, injectable policies: agent scoring, retry backoff, queue ordering.

Documented in ``docs/scheduling.md``; every number here is a default that
``HiveConfig`` can override.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from msgspec import Struct

from .model import Agent, Task


class ScoreWeights(Struct, frozen=True):
    proficiency: float = 0.5
    reliability: float = 0.3
    availability: float = 0.2
    #: a retry multiplies the score of an agent that already failed this task by this
    failed_before_penalty: float = 0.5


def score_agent(agent: Agent, task: Task, weights: ScoreWeights) -> tuple[float, dict[str, float]]:
    """Score one eligible agent for one task; higher is better. Returns (score, breakdown).

    - proficiency: mean proficiency over the task's required capabilities
      (1.0 when the task requires none: every agent fits equally);
    - reliability: Laplace-smoothed success rate ``(ok + 1) / (ok + failed + 2)``,
      so a new agent starts at 0.5 and evidence moves it;
    - availability: ``1 - load / max_concurrent_tasks``.
    """
    if task.required_capabilities:
        total = 0.0
        for r in task.required_capabilities:
            c = agent.capability(r.name)
            total += c.proficiency if c is not None else 0.0
        prof = total / len(task.required_capabilities)
    else:
        prof = 1.0
    m = agent.metrics
    reliability = (m.tasks_completed + 1) / (m.tasks_completed + m.tasks_failed + 2)
    availability = 1.0 - agent.load / agent.max_concurrent_tasks
    score = (
        weights.proficiency * prof
        + weights.reliability * reliability
        + weights.availability * availability
    )
    breakdown = {
        "proficiency": round(prof, 4),
        "reliability": round(reliability, 4),
        "availability": round(availability, 4),
    }
    if agent.id in task.failed_agents:
        score *= weights.failed_before_penalty
        breakdown["failed_before_penalty"] = weights.failed_before_penalty
    return score, breakdown


def base_score(agent: Agent, capability: str | None, weights: ScoreWeights) -> float:
    """``score_agent`` for a task that requires only ``capability`` (or nothing),
    without the retry penalty: the key of the scheduler's free-agent heaps."""
    if capability is None:
        prof = 1.0
    else:
        c = agent.capability(capability)
        prof = c.proficiency if c is not None else 0.0
    m = agent.metrics
    reliability = (m.tasks_completed + 1) / (m.tasks_completed + m.tasks_failed + 2)
    availability = 1.0 - agent.load / agent.max_concurrent_tasks
    return weights.proficiency * prof + weights.reliability * reliability + weights.availability * availability


Backoff = Callable[[int], float]


def exponential_backoff(base: float, cap: float, rng: random.Random) -> Backoff:
    """Delay before retry number ``n`` (1-based): ``min(cap, base * 2**(n-1))``
    with "equal jitter" (uniform in the upper half), so retries of many tasks
    failing together spread out. The chosen time is recorded in the event
    (``next_retry_at``), so replaying the log does not re-draw it."""

    def delay(n: int) -> float:
        d = min(cap, base * (2 ** max(0, n - 1)))
        return float(d / 2 + rng.random() * d / 2)

    return delay


def queue_key(created_ts: float, priority: int, aging_seconds: float) -> float:
    """Order of the ready queue, smaller first.

    Effective priority is ``priority + waited / aging_seconds``: a task gains one
    priority level per ``aging_seconds`` of waiting, so low priority cannot
    starve. Since ``now`` is common to all tasks, ordering by that is the same
    as ordering by ``created - priority * aging_seconds``, a key that never
    changes: one heap, no re-sorting as time passes. Ties: FIFO (by sequence).
    """
    return created_ts - priority * aging_seconds
