"""An in-memory store: a full member of the contract, used by tests and ``--db memory``."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence

from ..core.errors import StoreUnavailable
from ..core.model import TaskStatus
from .base import STATUS_TYPES, NewEvent, StoredEvent, statuses_of, task_id_of_row


class MemoryEventStore:
    def __init__(self) -> None:
        self._events: list[StoredEvent] = []
        self._seqs: list[int] = []
        self._by_task: dict[str, list[StoredEvent]] = {}
        #: tests flip this to simulate a failing disk
        self.fail_writes = False

    async def open(self) -> None:
        pass

    async def append(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        if self.fail_writes:
            raise StoreUnavailable("memory store: writes disabled")
        last = self._seqs[-1] if self._seqs else 0
        for e in events:
            if e.sequence != last + 1:
                raise StoreUnavailable(f"sequence {e.sequence} does not follow {last}")
            last = e.sequence
        for e in events:
            kept = StoredEvent(e.sequence, e.type, e.body)  # as read() answers: without task_id
            self._events.append(kept)
            self._seqs.append(e.sequence)
            task_id = task_id_of_row(e)
            if task_id is not None:
                self._by_task.setdefault(task_id, []).append(kept)

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        i = bisect.bisect_right(self._seqs, after)
        return self._events[i : i + limit]

    async def task_events(self, task_id: str) -> list[StoredEvent]:
        return list(self._by_task.get(task_id, ()))

    async def final_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        # (each task's events are in log order; the fold needs no order across tasks)
        bodies = (e.body for i in set(task_ids) for e in self._by_task.get(i, ()) if e.type in STATUS_TYPES)
        return statuses_of(bodies, task_ids)

    async def bounds(self) -> tuple[int, int]:
        if not self._seqs:
            return (0, 0)
        return (self._seqs[0], self._seqs[-1])

    async def ping(self) -> None:
        if self.fail_writes:
            raise StoreUnavailable("memory store: writes disabled")

    async def close(self) -> None:
        pass
