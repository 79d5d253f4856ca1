"""The bus contract: committed events, in sequence order, to every replica.

The log (the store) is the truth; the bus is the fast path. A subscriber that
sees a gap (an event whose sequence is not ``last + 1``, e.g. after trimming or
a missed publish) fills it from the store, so the bus only needs to be ordered,
not complete. Two network buses implement it: Redis Streams (stream entry ids
are the event sequence, so "resume after N" is ``XREAD`` from ``N-1``) and
NATS JetStream (one subject per log; the event sequence travels in a header and
"resume after N" starts a consumer at the first stream message past it). See
docs/deployment.md for when to pick which.

**One bus, one log.** A network bus is shared infrastructure: two deployments
may point at the same Redis or NATS. A bus is therefore *bound* to the log it
carries (``bind(cluster_id)``, before ``open``): the cluster id is created once
in the store (``hive_cluster``, server/cluster.py), the default stream or
subject is derived from it, every entry published carries it, and a subscriber
that meets an entry of another cluster (or one without an id) raises
:class:`ForeignEntry` instead of yielding it. A foreign entry is never folded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from ..store.base import StoredEvent
from .errors import ForeignEntry

__all__ = ["EventBus", "ForeignEntry", "open_bus"]


class EventBus(Protocol):
    #: the cluster this bus carries the log of (None: not bound yet)
    cluster_id: str | None
    #: entries of another cluster its subscribers refused (``hive_bus_foreign_entries``)
    foreign_entries: int

    def bind(self, cluster_id: str) -> None:
        """Carry the log of this cluster only (call before :meth:`open`)."""

    async def open(self) -> None: ...

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        """Publish committed events (in sequence order)."""

    def subscribe(self, after: int) -> AsyncIterator[StoredEvent]:
        """Events with ``sequence > after``, in order, forever (until closed).

        Raises ForeignEntry on an entry of another cluster (nothing after it is yielded)."""

    async def close(self) -> None: ...


def open_bus(url: str | None) -> EventBus:
    """``memory`` (default, one process), ``redis://host:port/db?stream=name`` or
    ``nats://host:port?stream=NAME&subject=name``."""
    if not url or url in ("memory", "memory:"):
        from .memory import MemoryEventBus

        return MemoryEventBus()
    if url.startswith(("redis://", "rediss://")):
        from .redis import RedisEventBus

        return RedisEventBus(url)
    if url.startswith(("nats://", "tls://")):
        from .nats import NatsEventBus

        return NatsEventBus(url)
    raise ValueError(f"unknown bus {url!r}: use 'memory', redis://host:port or nats://host:port")
