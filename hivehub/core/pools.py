"""The accounting records of quota pools and budgets (folded by ``quotas.py``).

Plain structs, so ``state.py`` can hold them without importing the rules.
"""

from __future__ import annotations

from datetime import date

from msgspec import Struct

__all__ = ["Bucket", "DaySpend", "Hold", "Pool"]


class Bucket(Struct):
    level: float
    at: float  # monotonic


class Pool(Struct):
    """A pool's accounting (projection): its buckets, attempts in flight, pause."""

    requests: Bucket | None = None
    tokens: Bucket | None = None
    in_flight: int = 0
    paused_until: float | None = None  # monotonic


class Hold(Struct):
    """What an owner's attempts in flight reserve of its budget."""

    tokens: int = 0
    cost_usd: float = 0.0
    attempts: int = 0


class DaySpend(Struct):
    """What an owner spent on one UTC day (the latest day it spent on)."""

    day: date
    tokens: int = 0
    cost_usd: float = 0.0
