"""An in-memory store: a full member of the contract, used by tests and ``--db memory``."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Sequence

import msgspec

from ..core.errors import StoreUnavailable
from ..core.model import TaskStatus
from ..core.summary import FINAL, AgentPoint, SeriesRow, TaskSummary, apply_change
from .base import (
    KEEP_SNAPSHOTS,
    STATUS_TYPES,
    NewEvent,
    Snapshot,
    StoredEvent,
    TaskPage,
    TaskQuery,
    capped,
    matches,
    statuses_of,
    task_id_of_row,
)


class MemoryEventStore:
    def __init__(self) -> None:
        self._events: list[StoredEvent] = []
        self._seqs: list[int] = []
        self._by_task: dict[str, list[StoredEvent]] = {}
        #: the history tables (core/summary.py): rows by task id, and the ids in
        #: created order (the summary's key, ``created_sequence``)
        self._summary: dict[str, TaskSummary] = {}
        self._created: list[tuple[int, str]] = []
        self._points: dict[str, list[AgentPoint]] = {}
        #: newest first (``EventStore.snapshots``)
        self._snapshots: list[Snapshot] = []
        #: tests flip this to simulate a failing disk
        self.fail_writes = False

    async def open(self) -> None:
        pass

    async def save_snapshot(self, snap: Snapshot) -> None:
        if self.fail_writes:
            raise StoreUnavailable("memory store: writes disabled")
        kept = [x for x in self._snapshots if x.sequence != snap.sequence]
        self._snapshots = sorted([snap, *kept], key=lambda x: -x.sequence)[:KEEP_SNAPSHOTS]

    async def snapshots(self) -> list[Snapshot]:
        return list(self._snapshots)

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
            if isinstance(e, NewEvent):
                if e.summary is not None:
                    old = self._summary.get(e.summary.task_id) if e.summary.create is not None else None
                    row = apply_change(self._summary, e.summary)
                    if e.summary.create is not None and row is not None:
                        if old is not None:  # (a duplicate id replaces the row, as the SQL stores do)
                            self._created.remove((old.created_sequence, old.id))
                        self._created.append((row.created_sequence, row.id))
                for p in e.points:
                    self._points.setdefault(p.agent_id, []).append(p)

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        i = bisect.bisect_right(self._seqs, after)
        return self._events[i : i + limit]

    async def task_events(self, task_id: str) -> list[StoredEvent]:
        return list(self._by_task.get(task_id, ()))

    async def final_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        # (each task's events are in log order; the fold needs no order across tasks)
        bodies = (e.body for i in set(task_ids) for e in self._by_task.get(i, ()) if e.type in STATUS_TYPES)
        return statuses_of(bodies, task_ids)

    async def history_tasks(self, q: TaskQuery) -> TaskPage:
        hi = len(self._created) if q.before is None else bisect.bisect_left(self._created, (q.before, ""))
        page: list[TaskSummary] = []
        total = 0
        for i in range(len(self._created) - 1, -1, -1):
            row = self._summary[self._created[i][1]]
            if not matches(row, q):
                continue
            total += 1
            if i < hi and len(page) <= q.limit:
                page.append(row)
            elif not q.with_total and len(page) > q.limit:
                break
        more = len(page) > q.limit
        page = page[: q.limit]
        return TaskPage(
            [msgspec.structs.replace(r) for r in page],
            page[-1].created_sequence if more else None,
            capped(total, q) if q.with_total else None,
        )

    async def series_rows(
        self, start: float, end: float, agent_id: str | None = None
    ) -> tuple[list[SeriesRow], dict[str, int]]:
        rows: list[SeriesRow] = []
        before: dict[str, int] = {}
        for r in self._summary.values():
            if agent_id is not None and r.agent_id != agent_id:
                continue
            if r.finished_at is not None and r.status in FINAL and r.finished_at < start:
                before[r.status] = before.get(r.status, 0) + 1
            elif r.created_at < end:
                rows.append(
                    SeriesRow(
                        r.status,
                        r.created_at,
                        r.started_at,
                        r.finished_at,
                        r.retried_at,
                        r.latency_ms,
                        r.tokens,
                        r.cost_usd,
                    )
                )
        return rows, before

    async def agent_points(self, agent_id: str, since: float | None = None) -> list[AgentPoint]:
        return [
            p
            for p in self._points.get(agent_id, ())
            if since is None or p.capability is not None or p.at >= since
        ]

    async def bounds(self) -> tuple[int, int]:
        if not self._seqs:
            return (0, 0)
        return (self._seqs[0], self._seqs[-1])

    async def ping(self) -> None:
        if self.fail_writes:
            raise StoreUnavailable("memory store: writes disabled")

    async def close(self) -> None:
        pass
