"""The store contract: an append-only log of encoded events with gapless sequences.

The hub owns sequence numbers (the core assigns them); the store keeps them and
refuses a gap or a duplicate, so two writers can never interleave silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol


class StoredEvent(NamedTuple):
    sequence: int
    type: str
    body: bytes  # the encoded envelope, exactly the bytes /ws sends


class EventStore(Protocol):
    async def open(self) -> None: ...

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Durably append a batch, all or nothing. Raises StoreUnavailable."""

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events with ``sequence > after``, oldest first, at most ``limit``."""

    async def bounds(self) -> tuple[int, int]:
        """(first retained sequence, last sequence); (0, 0) when empty."""

    async def ping(self) -> None:
        """Check that a write could succeed now. Raises StoreUnavailable."""

    async def close(self) -> None: ...


def open_store(url: str, busy_timeout_ms: int = 5000) -> EventStore:
    """``memory:``, a SQLite path or ``sqlite:///path``, or ``postgresql://...``."""
    if url in ("memory", "memory:", ":memory:"):
        from .memory import MemoryEventStore

        return MemoryEventStore()
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresEventStore

        return PostgresEventStore(url)
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    from .sqlite import SQLiteEventStore

    return SQLiteEventStore(path, busy_timeout_ms=busy_timeout_ms)
