"""Pure, injectable policies: agent scoring, backoff, heartbeats, queue ordering.

The backoff and the heartbeat rule are shared by every end: the hive's task retries,
the agent SDK's reconnects and report resends (push and pull) and the Python
client's stream reconnects all use :func:`backoff`; the hub and the agents derive
the heartbeat interval from a timeout with :func:`heartbeat_interval`.

Documented in ``docs/scheduling.md``; every number here is a default that
``HiveConfig`` can override.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal

from msgspec import Struct

from .model import Agent, Task
from .rounding import round4


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
    req = task.required_capabilities
    if req:
        total = 0.0
        caps = agent.capabilities
        for r in req:
            name = r.name
            for c in caps:  # (Agent.capability, inline: the first of that name; none adds 0)
                if c.name == name:
                    total += c.proficiency
                    break
        prof = total / len(req)
    else:
        prof = 1.0
    m = agent.metrics
    reliability = (m.tasks_completed + 1) / (m.tasks_completed + m.tasks_failed + 2)
    availability = 1.0 - len(agent.current_tasks) / agent.max_concurrent_tasks
    score = (
        weights.proficiency * prof + weights.reliability * reliability + weights.availability * availability
    )
    breakdown = {
        "proficiency": round4(prof),
        "reliability": round4(reliability),
        "availability": round4(availability),
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
    return (
        weights.proficiency * prof + weights.reliability * reliability + weights.availability * availability
    )


Backoff = Callable[[int], float]

#: doublings after which the ceiling stops growing (far past any cap; no float overflow)
_MAX_DOUBLINGS = 62


def backoff(
    failures: int,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
    *,
    jitter: Literal["full", "equal"] = "full",
) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0: after the first one):
    exponential, ``ceiling = min(cap, base * 2**failures)``, with jitter so that many
    clients failing together do not retry together.

    Args:
        failures: consecutive failures before this one (negative counts as 0)
        base, cap: the first ceiling and the largest, in seconds
        rng: a uniform draw in ``[0, 1)`` (inject one for deterministic tests)
        jitter: ``"full"``: uniform in ``[0, ceiling)``, the widest spread (reconnects,
            resends); ``"equal"``: uniform in ``[ceiling / 2, ceiling)``, never much
            sooner than the ceiling (task retries)
    """
    ceiling = min(cap, base * (2 ** min(max(failures, 0), _MAX_DOUBLINGS)))
    if jitter == "equal":
        return float(ceiling / 2 + rng() * ceiling / 2)
    return float(rng() * ceiling)


def exponential_backoff(base: float, cap: float, rng: random.Random) -> Backoff:
    """Delay before retry number ``n`` (1-based): :func:`backoff` after ``n - 1``
    failures with "equal jitter", so retries of many tasks failing together spread
    out. The chosen time is recorded in the event (``next_retry_at``), so replaying
    the log does not re-draw it."""

    def delay(n: int) -> float:
        return backoff(n - 1, base, cap, rng.random, jitter="equal")

    return delay


#: heartbeats per heartbeat timeout: one late or lost heartbeat never lets it pass
HEARTBEATS_PER_TIMEOUT = 3


def heartbeat_interval(
    timeout: float | None, interval: float | None = None, *, floor: float = 0.0
) -> float | None:
    """Seconds between heartbeats when the hub gives up on a silent agent after ``timeout``:
    ``interval`` (or, without one, the longest allowed), but at most a third of
    ``timeout``, and at least ``floor``.

    Without a usable ``timeout`` (None or not > 0), ``interval`` as it is (None: none).
    """
    if timeout is None or timeout <= 0:
        return interval
    longest = timeout / HEARTBEATS_PER_TIMEOUT
    return max(floor, longest if interval is None else min(interval, longest))


def queue_key(created_ts: float, priority: int, aging_seconds: float) -> float:
    """Order of the ready queue, smaller first.

    Effective priority is ``priority + waited / aging_seconds``: a task gains one
    priority level per ``aging_seconds`` of waiting, so low priority cannot
    starve. Since ``now`` is common to all tasks, ordering by that is the same
    as ordering by ``created - priority * aging_seconds``, a key that never
    changes: one heap, no re-sorting as time passes. Ties: FIFO (by sequence).
    """
    return created_ts - priority * aging_seconds
