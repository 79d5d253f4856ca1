"""The store contract: an append-only log of encoded events with gapless sequences.

The hub owns sequence numbers (the core assigns them); the store keeps them and
refuses a gap or a duplicate, so two writers can never interleave silently.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple, Protocol

from ..core.events import TaskCreated, decode_event
from ..core.model import TaskStatus
from ..core.summary import AgentPoint, SeriesRow, SummaryChange, TaskSummary, history_of
from ..core.tasklog import STATUS_EVENTS, TASK_EVENTS, fold_statuses


class StoredEvent(NamedTuple):
    sequence: int
    type: str
    body: bytes  # the encoded envelope, exactly the bytes /ws sends


class Snapshot(NamedTuple):
    """The folded state at ``sequence`` (``hivehub.store.snapshot``), stored beside the log.

    ``format``, ``schema`` and ``config`` say which hub can use it; ``head`` is the
    digest of the body of the event at ``sequence``: the hub trusts a snapshot only
    when the log holds that very event there (``HubService._rebuild``)."""

    sequence: int
    format: int
    schema: str
    config: str
    head: str
    body: bytes


#: snapshots a store keeps, newest first: the latest, and one to fall back on
#: when the latest cannot be used (corrupt, or written by another version)
KEEP_SNAPSHOTS = 2


class NewEvent(NamedTuple):
    """An event to append, with the task it changes (``hivehub.core.tasklog.task_id_of``),
    which the store indexes for ``task_events``, and what it changes in the history
    tables (``hivehub.core.summary.history_of``), which the store applies in the same
    transaction. Reads answer :class:`StoredEvent` (three fields, which the replay
    path unpacks)."""

    sequence: int
    type: str
    body: bytes
    task_id: str | None = None
    summary: SummaryChange | None = None
    points: tuple[AgentPoint, ...] = ()


class TaskQuery(NamedTuple):
    """A page of the task history (``GET /api/history/tasks``), newest first.

    ``text``: a case-insensitive substring of the id, type, description or error
    (code or message). ``before``: the cursor, a ``created_sequence`` (keyset:
    stable while new tasks arrive). Times are unix seconds on ``created_at``,
    ``created_from`` included, ``created_to`` excluded."""

    statuses: tuple[str, ...] = ()
    type: str | None = None
    agent_id: str | None = None
    owner: str | None = None
    text: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    before: int | None = None
    limit: int = 50
    #: count the matching tasks (``total``); a store may answer ``None`` instead
    with_total: bool = True


class TaskPage(NamedTuple):
    tasks: list[TaskSummary]
    #: the ``before`` of the next page, ``None`` on the last one
    next_before: int | None
    total: int | None


def history_rows(events: Iterable[StoredEvent]) -> list[NewEvent]:
    """The history changes of events read back from the log (the backfill of a store
    whose history tables are behind it). A body that does not decode (written by a
    newer hub, or not an event) changes nothing."""
    out = []
    for e in events:
        try:
            event = decode_event(e.body)
        except Exception:
            continue
        summary, points = history_of(event)
        if summary is not None or points:
            out.append(NewEvent(e.sequence, e.type, e.body, None, summary, points))
    return out


#: ``total`` is counted up to this many matching tasks; beyond, a store answers
#: ``None`` (counting a million index entries costs more than the page itself),
#: except for the count of every task, which is cheap
TOTAL_CAP = 10_000


def unfiltered(q: TaskQuery) -> bool:
    return not (q.statuses or q.type or q.agent_id or q.owner or q.text) and (
        q.created_from is None and q.created_to is None
    )


def capped(n: int, q: TaskQuery) -> int | None:
    """``n`` as ``total``: ``None`` over the cap (unless unfiltered)."""
    return n if n <= TOTAL_CAP or unfiltered(q) else None


def matches(row: TaskSummary, q: TaskQuery) -> bool:
    """``q``'s filters on one row (the memory store; the SQL stores say the same in SQL)."""
    if q.statuses and row.status not in q.statuses:
        return False
    if q.type is not None and row.type != q.type:
        return False
    if q.agent_id is not None and row.agent_id != q.agent_id:
        return False
    if q.owner is not None and row.owner != q.owner:
        return False
    if q.created_from is not None and row.created_at < q.created_from:
        return False
    if q.created_to is not None and row.created_at >= q.created_to:
        return False
    if q.text:
        needle = q.text.lower()
        fields = (row.id, row.type, row.description, row.error_code or "", row.error_message or "")
        if not any(needle in f.lower() for f in fields):
            return False
    return True


#: rows per transaction of the backfill of the history tables
BACKFILL_BATCH = 5000


#: Event types that change a task, and where their body names it (the backfill of
#: the ``task_id`` column for logs written before it existed), derived from the one
#: list of task events in ``core.tasklog``.
TASK_ID_PATHS: dict[str, tuple[str, ...]] = {
    cls.TYPE: ("data", "task", "id") if cls is TaskCreated else ("data", "task_id") for cls in TASK_EVENTS
}


def task_id_of_row(e: StoredEvent | NewEvent) -> str | None:
    return e.task_id if isinstance(e, NewEvent) else None


def task_key(task_id: str | None) -> str | None:
    """The ``task_id`` as the SQL stores index it: NUL (valid in an id, but not in
    PostgreSQL text, and cut short by SQLite's JSON functions) becomes U+FFFD.
    Two ids may then share a key; ``HubService.task`` keeps only the
    events that name its task exactly."""
    return task_id.replace("\x00", "\ufffd") if task_id is not None and "\x00" in task_id else task_id


#: the event types ``final_statuses`` reads (the ones that may change a task's status)
STATUS_TYPES: tuple[str, ...] = tuple(cls.TYPE for cls in STATUS_EVENTS)


def statuses_of(bodies: Iterable[bytes], task_ids: Collection[str]) -> dict[str, TaskStatus]:
    """Fold the final statuses of ``task_ids`` from encoded events, oldest first
    (``final_statuses`` of every store). Only ids named exactly are kept: two ids may
    share an index key (:func:`task_key`)."""
    wanted = set(task_ids)
    folded = fold_statuses(decode_event(b) for b in bodies)
    return {i: st for i, st in folded.items() if i in wanted}


#: the same substitution inside a JSON body, for the SQL backfill of old logs
JSON_NUL, JSON_NUL_KEY = "\\u0000", "\\ufffd"


class EventStore(Protocol):
    async def open(self) -> None: ...

    async def append(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        """Durably append a batch, all or nothing. Raises StoreUnavailable."""

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events with ``sequence > after``, oldest first, at most ``limit``."""

    async def task_events(self, task_id: str) -> list[StoredEvent]:
        """Every event whose ``task_id`` is ``task_id``, oldest first (one task's history)."""

    async def final_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        """The status each of ``task_ids`` has in the log, folded from its own events
        (``hivehub.core.tasklog.fold_statuses``); an id the log has no task for is
        absent. One indexed read for the batch (the core's forgotten tasks,
        ``HiveConfig.remember_evicted``). Raises StoreUnavailable."""

    async def bounds(self) -> tuple[int, int]:
        """(first retained sequence, last sequence); (0, 0) when empty."""

    async def ping(self) -> None:
        """Check that a write could succeed now. Raises StoreUnavailable."""

    async def history_tasks(self, q: TaskQuery) -> TaskPage:
        """A page of the task summary table, newest first. Raises StoreUnavailable."""

    async def series_rows(
        self, start: float, end: float, agent_id: str | None = None
    ) -> tuple[list[SeriesRow], dict[str, int]]:
        """The tasks alive in ``[start, end)`` (created before ``end``, not finished
        before ``start``) and the count of tasks finished before ``start`` by final
        status (``hivehub.core.summary.fold_series``); only ``agent_id``'s when given."""

    async def agent_points(self, agent_id: str, since: float | None = None) -> list[AgentPoint]:
        """The agent's proficiency readings (all of them: a learning cycle is rare) and
        its performance reports at or after ``since`` (one per finished task), oldest first."""

    async def save_snapshot(self, snap: Snapshot) -> None:
        """Store ``snap`` in one transaction and drop all but the newest
        :data:`KEEP_SNAPSHOTS` (by sequence). Called only once the log holds
        ``snap.sequence``. Raises StoreUnavailable."""

    async def snapshots(self) -> list[Snapshot]:
        """The stored snapshots, newest (highest sequence) first."""

    async def close(self) -> None: ...
