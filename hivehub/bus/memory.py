"""In-process bus: a full member of the contract (tests, single process).

Nothing else can reach it, so ``bind`` has nothing to check against."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Sequence

from ..store.base import StoredEvent


class MemoryEventBus:
    def __init__(self) -> None:
        self._events: list[StoredEvent] = []
        self._seqs: list[int] = []
        self._changed = asyncio.Condition()
        self._closed = False
        self.cluster_id: str | None = None
        self.foreign_entries = 0

    def bind(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id

    async def open(self) -> None:
        pass

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        async with self._changed:
            self._events.extend(events)
            self._seqs.extend(e.sequence for e in events)
            self._changed.notify_all()

    async def subscribe(self, after: int) -> AsyncIterator[StoredEvent]:
        while not self._closed:
            i = bisect.bisect_right(self._seqs, after)
            batch = self._events[i:]
            for e in batch:
                yield e
                after = e.sequence
            if not batch:
                async with self._changed:
                    if bisect.bisect_right(self._seqs, after) == len(self._seqs) and not self._closed:
                        await self._changed.wait()

    async def close(self) -> None:
        self._closed = True
        async with self._changed:
            self._changed.notify_all()
