"""The bus contract: committed events, in sequence order, to every replica.

The log (the store) is the truth; the bus is the fast path. A subscriber that
sees a gap (an event whose sequence is not ``last + 1``, e.g. after trimming or
a missed publish) fills it from the store, so the bus only needs to be ordered,
not complete. Redis Streams is the default scale-out bus: stream entry ids are
set to the event sequence, so "resume after N" is ``XREAD`` from ``N-0``,
exactly, and the stream is ordered and replayable (see docs/deployment.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ..store.base import StoredEvent


class EventBus(Protocol):
    async def open(self) -> None: ...

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Publish committed events (in sequence order)."""

    def subscribe(self, after: int) -> AsyncIterator[StoredEvent]:
        """Events with ``sequence > after``, in order, forever (until closed)."""

    async def close(self) -> None: ...


def open_bus(url: str | None) -> EventBus:
    """``memory`` (default, one process) or ``redis://host:port/db?stream=name``."""
    if not url or url in ("memory", "memory:"):
        from .memory import MemoryEventBus

        return MemoryEventBus()
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisEventBus

        return RedisEventBus(url)
    raise ValueError(f"unknown bus {url!r}: use 'memory' or redis://host:port")
