"""Configuration of the core: every number a deployment may tune, with its default.

``HiveConfig`` is what the server builds from its settings (``server/config.py``);
the learning and coordination parts are nested structs of their own, so each
module reads only its part. Frozen: a hive never changes its configuration.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from .model import ModelPrice
from .policies import ScoreWeights

__all__ = ["CoordinationConfig", "HiveConfig", "LearningConfig"]


class LearningConfig(Struct, frozen=True):
    """When learning cycles run (``core/learning.py``, ``docs/learning-and-coordination.md``)."""

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


class CoordinationConfig(Struct, frozen=True):
    """When and how far the coordinator moves unstarted work (``core/coordination.py``)."""

    enabled: bool = True
    interval_seconds: float = 10.0
    min_unstarted_seconds: float = 2.0
    margin: float = 0.2


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
    #: evicted tasks whose final status the core still remembers (the newest
    #: evictions); older ones are forgotten, and a command naming one takes its
    #: final status from the log as an input (``Hive.unknown_task_ids``, the
    #: ``facts`` of ``Hive.handle``). Bounds the memory of a hub that runs for weeks.
    remember_evicted: int = 100_000
    #: USD per million tokens by model; a ``"*"`` entry prices every model not listed
    #: (``core/usage.py``). A model without a price logs ``cost_usd: null``.
    prices: dict[str, ModelPrice] = msgspec.field(default_factory=dict)
    #: tokens one attempt is assumed to use when neither the task nor its type's
    #: history says (``usage.estimate_tokens``)
    default_estimated_tokens: int = 500
    #: ``RATE_LIMITED`` reports (a provider's 429) of one task re-queued without
    #: spending a retry; each one past this spends a normal retry, so a provider that
    #: always answers 429 cannot keep a task forever
    max_rate_limited: int = 10

    def __post_init__(self) -> None:
        for name in ("retain_finished", "remember_evicted", "max_rate_limited"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)})")
        if self.default_estimated_tokens < 1:
            raise ValueError(f"default_estimated_tokens must be >= 1 (got {self.default_estimated_tokens})")
