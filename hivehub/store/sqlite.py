"""SQLite store: WAL mode, one writer, batched commits.

Commits run inline on the event loop: in WAL mode with ``synchronous=NORMAL`` a
commit appends to the WAL without fsync (tens of microseconds for a batch),
which is cheaper than handing each batch to a thread (measured: the hand-off
and GIL contention cost more than the commit). What can take long is moved
off the loop: checkpoints (automatic checkpointing is off on the writer; a
background thread runs a PASSIVE checkpoint every second) and waiting for a
lock held by another process (the writer's busy timeout is 0; the wait is an
``asyncio.sleep`` retry loop bounded by ``busy_timeout_ms``). Reads use a second
connection on their own thread so a replay never blocks the loop.

``synchronous=NORMAL`` in WAL keeps every committed batch across a process
crash (kill -9); only an OS crash or power loss may lose the last ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..core.errors import StoreUnavailable
from ..core.model import TaskStatus
from ..core.summary import AgentPoint, SeriesRow
from . import history_sql as H
from . import sqlite_snapshots as SN
from .base import (
    BACKFILL_BATCH,
    STATUS_TYPES,
    NewEvent,
    Snapshot,
    StoredEvent,
    TaskPage,
    TaskQuery,
    capped,
    history_rows,
    statuses_of,
    task_id_of_row,
    task_key,
)
from .sqlite_schema import MIGRATIONS, SCHEMA

_T = TypeVar("_T")
log = logging.getLogger("hivehub.store")

#: ids per ``final_statuses`` query (SQLite limits the bound parameters of one statement)
_IDS_PER_QUERY = 500


_INSERT_SUMMARY = (
    f"INSERT INTO task_summary({H.SELECT_COLUMNS}) VALUES ({', '.join('?' * len(H.SQL_COLUMNS))})"
)
_INSERT_POINT = (
    f"INSERT INTO agent_points({', '.join(H.POINT_COLUMNS)}) VALUES ({', '.join('?' * len(H.POINT_COLUMNS))})"
)
_LIKE_COLUMNS = ("id", "type", "description", "error_code", "error_message")


def _text(p: H.Placeholders, text: str) -> str:
    """A substring of the id, type, description or error, ignoring case, shorter than
    a trigram: a scan (``_fts`` answers the longer ones through the index)."""
    needle = text.lower()
    return "(" + " OR ".join(f"instr(lower(coalesce({c}, '')), {p(needle)}) > 0" for c in _LIKE_COLUMNS) + ")"


def _fts(q: TaskQuery) -> str | None:
    """The trigram index's query for a search of 3 characters or more: the whole
    text as one phrase (a substring)."""
    if q.text is None or len(q.text) < 3:
        return None
    return '"' + q.text.replace('"', '""') + '"'


def _ident(task_id: str) -> str | None:
    return task_id


#: The history tables are written behind the log, not in the events' transaction:
#: the changes of the events committed meanwhile are held in memory and written in
#: one transaction HISTORY_FLUSH_SECONDS after the first of them, or once
#: HISTORY_FLUSH_EVENTS are held, and before any history read (so a read sees every
#: committed event). One flush writes each task's row once for all its events of the
#: batch (``history_sql.plan``) and feeds the trigram index in one segment; in the
#: events' own small transactions the history cost more than half of the hub's CPU
#: per task (docs/history.md). Nothing is lost in a crash: ``meta.history_sequence``
#: says how far the tables are, and the next open brings them up to the log from
#: there (``_backfill``).
HISTORY_FLUSH_SECONDS = 0.25
HISTORY_FLUSH_EVENTS = 4096


_TEXT_COLUMNS = "seq, id, type, description, error_code, error_message"
_INSERT_TEXT = f"INSERT INTO task_fts(rowid, {_TEXT_COLUMNS[5:]}) VALUES (?, ?, ?, ?, ?, ?)"
#: (an external-content FTS5 table forgets a row given the text it indexed)
_DELETE_TEXT = (
    f"INSERT INTO task_fts(task_fts, rowid, {_TEXT_COLUMNS[5:]}) VALUES ('delete', ?, ?, ?, ?, ?, ?)"
)


def _text_rows(c: sqlite3.Connection, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The indexed text of the rows of these task ids (those that exist)."""
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[i : i + _IDS_PER_QUERY]
        marks = ", ".join("?" * len(chunk))
        out += c.execute(f"SELECT {_TEXT_COLUMNS} FROM task_summary WHERE id IN ({marks})", chunk).fetchall()
    return out


def write_history(
    c: sqlite3.Connection, events: Sequence[StoredEvent | NewEvent], through: int | None = None
) -> None:
    """The history writes of a batch, inside the caller's transaction; the tables are
    then at sequence ``through`` (default: the batch's last)."""
    todo = H.plan(events)
    if todo.creates:
        # a duplicate id replaces the row, and its text in the index
        replaced = _text_rows(c, [r.id for r in todo.creates])
        if replaced:
            c.executemany(_DELETE_TEXT, replaced)
            c.executemany("DELETE FROM task_summary WHERE seq = ?", [(r[0],) for r in replaced])
        c.executemany(_INSERT_SUMMARY, [H.row_values(r, _ident) for r in todo.creates])
        c.executemany(
            _INSERT_TEXT,
            [
                (r.created_sequence, r.id, r.type, r.description, r.error_code, r.error_message)
                for r in todo.creates
            ],
        )
    for cols, group in todo.updates.items():
        texty = "error_code" in cols or "error_message" in cols
        before = {r[1]: r for r in _text_rows(c, [ch.task_id for ch in group])} if texty else {}
        c.executemany(H.update_sql(group[0], False), [H.update_params(ch, _ident) for ch in group])
        if texty:
            # re-index a row only when its error text changed (every completion sets
            # it to NULL, which it was already for most tasks)
            old, new = [], []
            for ch in group:
                o = before.get(ch.task_id)
                if o is None:
                    continue
                code, message = ch.set.get("error_code", o[4]), ch.set.get("error_message", o[5])
                if (code, message) != (o[4], o[5]):
                    old.append(o)
                    new.append((*o[:4], code, message))
            if old:
                c.executemany(_DELETE_TEXT, old)
                c.executemany(_INSERT_TEXT, new)
    if todo.points:
        c.executemany(_INSERT_POINT, [H.point_values(pt) for pt in todo.points])
    if through is None and events:
        through = events[-1].sequence
    if through is not None:
        c.execute("UPDATE meta SET value = ? WHERE key = 'history_sequence'", (str(through),))


class SQLiteEventStore:
    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self._wx = ThreadPoolExecutor(1, thread_name_prefix="hive-sqlite-w")
        self._rx = ThreadPoolExecutor(1, thread_name_prefix="hive-sqlite-r")
        self._last = 0
        self._ck: sqlite3.Connection | None = None
        #: the snapshot writer's own connection, used on the writer thread: a
        #: snapshot of many MiB is written off the event loop (the loop's appends
        #: wait for its lock without blocking, as for another process's)
        self._sn: sqlite3.Connection | None = None
        self._saving = asyncio.Lock()  # one snapshot written at a time (its pieces are orphans until done)
        #: the size of a snapshot's pieces (``sqlite_snapshots.py``), and the pause after each
        self.snapshot_chunk_bytes = SN.CHUNK_BYTES
        self.snapshot_pause = SN.PAUSE_S
        self._ck_task: asyncio.Task[None] | None = None
        #: history changes committed to the log, not yet to the history tables
        #: (HISTORY_FLUSH_SECONDS), and the sequence the tables will be at once written
        self._hist: list[NewEvent] = []
        self._hist_through = 0
        self._hist_timer: asyncio.TimerHandle | None = None

    def _connect(self, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        timeout = self.busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
        c.execute(f"PRAGMA busy_timeout={int(timeout)}")
        return c

    def _open_sync(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._w = self._connect()
        self._migrate(self._w)
        self._backfill(self._w)
        row = self._w.execute("SELECT MAX(sequence) FROM events").fetchone()
        self._last = row[0] or 0
        # from here on the writer never waits for a lock inside sqlite (it would
        # block the event loop) and never checkpoints (the checkpointer does)
        self._w.execute("PRAGMA busy_timeout=0")
        self._w.execute("PRAGMA wal_autocheckpoint=0")
        self._r = self._connect()
        self._ck = self._connect()
        self._sn = self._connect()

    @staticmethod
    def _migrate(c: sqlite3.Connection) -> None:
        c.execute("BEGIN IMMEDIATE")  # two processes opening one file migrate once
        try:
            for stmt in SCHEMA:
                c.execute(stmt)
            c.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')")
            (current,) = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            for version, statements in MIGRATIONS:
                if version <= int(current):
                    continue
                for stmt in statements:
                    c.execute(stmt)
                c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    @staticmethod
    def _backfill(c: sqlite3.Connection) -> None:
        """Bring the history tables up to the log (a log written before them, or by a
        writer that did not keep them), one batch of events per transaction."""
        while True:
            c.execute("BEGIN IMMEDIATE")
            try:
                (at,) = c.execute("SELECT value FROM meta WHERE key = 'history_sequence'").fetchone()
                rows = [
                    StoredEvent(q, t, bytes(b))
                    for q, t, b in c.execute(
                        "SELECT sequence, type, body FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
                        (int(at), BACKFILL_BATCH),
                    )
                ]
                if rows:
                    write_history(c, history_rows(rows))
                    c.execute(
                        "UPDATE meta SET value = ? WHERE key = 'history_sequence'", (str(rows[-1].sequence),)
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            if len(rows) < BACKFILL_BATCH:
                return

    async def open(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._wx, self._open_sync)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        self._ck_task = asyncio.create_task(self._checkpointer(), name="hive-sqlite-checkpoint")

    async def _checkpointer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            try:
                await loop.run_in_executor(self._wx, self._checkpoint_sync)
            except sqlite3.Error:
                pass  # busy or locked: the next round tries again

    def _checkpoint_sync(self) -> None:
        assert self._ck is not None
        self._ck.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _append_sync(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        assert self._w is not None
        if events and events[0].sequence != self._last + 1:
            raise StoreUnavailable(f"sequence {events[0].sequence} does not follow {self._last}")
        c = self._w
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany(
                "INSERT INTO events(sequence, type, body, task_id) VALUES (?, ?, ?, ?)",
                [(e.sequence, e.type, e.body, task_key(task_id_of_row(e))) for e in events],
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        if not events:
            return
        self._last = events[-1].sequence
        held = self._hist
        for e in events:
            if isinstance(e, NewEvent) and (e.summary is not None or e.points):
                held.append(e)
        self._hist_through = self._last
        if len(held) >= HISTORY_FLUSH_EVENTS:
            self._flush_history()
        elif self._hist_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # (called outside a loop: a tool writing a log)
                self._flush_history()
            else:
                self._hist_timer = loop.call_later(HISTORY_FLUSH_SECONDS, self._flush_history)

    def _flush_history(self) -> None:
        """Write the held history changes (see HISTORY_FLUSH_SECONDS); on the writer,
        in the event loop's thread like ``_append_sync``. A failure (another process
        holding the lock, a full disk) keeps them for the next try."""
        if self._hist_timer is not None:
            self._hist_timer.cancel()
            self._hist_timer = None
        c = self._w
        if c is None or (not self._hist and not self._hist_through):
            return
        held, through = self._hist, self._hist_through
        try:
            c.execute("BEGIN IMMEDIATE")
            try:
                write_history(c, held, through)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            log.warning("cannot write the task history yet (%s); trying again", exc)
            try:
                self._hist_timer = asyncio.get_running_loop().call_later(
                    HISTORY_FLUSH_SECONDS, self._flush_history
                )
            except RuntimeError:
                pass
            return
        self._hist = []
        self._hist_through = 0

    async def append(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        if not events:
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.busy_timeout_ms / 1000
        while True:
            try:
                self._append_sync(events)
                return
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or loop.time() >= give_up:
                    raise StoreUnavailable(f"cannot write the event log: {exc}") from exc
                await asyncio.sleep(0.005)  # another process holds the lock: wait without blocking
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"cannot write the event log: {exc}") from exc

    def _ping_sync(self) -> None:
        assert self._w is not None
        self._w.execute("BEGIN IMMEDIATE")
        self._w.execute("ROLLBACK")

    async def ping(self) -> None:
        try:
            self._ping_sync()  # busy_timeout is 0 on the writer: this never waits
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"the event log is not writable: {exc}") from exc

    def _read_sync(self, after: int, limit: int) -> list[StoredEvent]:
        assert self._r is not None
        rows = self._r.execute(
            "SELECT sequence, type, body FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
            (after, limit),
        ).fetchall()
        return [StoredEvent(s, t, bytes(b)) for s, t, b in rows]

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rx, self._read_sync, after, limit)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    def _read_raw_sync(self, after: int, limit: int) -> list[tuple[int, str, bytes]]:
        assert self._r is not None
        return self._r.execute(
            "SELECT sequence, type, body FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?",
            (after, limit),
        ).fetchall()

    async def read_raw(self, after: int = 0, limit: int = 1000) -> list[tuple[int, str, bytes]]:
        """``read`` as plain tuples: the replay path, where a namedtuple per row shows."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._rx, self._read_raw_sync, after, limit
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    def _task_events_sync(self, task_id: str) -> list[StoredEvent]:
        assert self._r is not None
        rows = self._r.execute(
            "SELECT sequence, type, body FROM events WHERE task_id = ? ORDER BY sequence",
            (task_key(task_id),),
        ).fetchall()
        return [StoredEvent(s, t, bytes(b)) for s, t, b in rows]

    async def task_events(self, task_id: str) -> list[StoredEvent]:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rx, self._task_events_sync, task_id)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    def _final_statuses_sync(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        assert self._r is not None
        keys = sorted({k for k in map(task_key, task_ids) if k is not None})
        types = ", ".join("?" * len(STATUS_TYPES))
        bodies: list[bytes] = []
        for lo in range(0, len(keys), _IDS_PER_QUERY):
            chunk = keys[lo : lo + _IDS_PER_QUERY]
            # the (task_id, sequence) index answers each id; each task's rows come in log order
            bodies += (
                bytes(b)
                for (b,) in self._r.execute(
                    f"SELECT body FROM events WHERE task_id IN ({', '.join('?' * len(chunk))})"
                    f" AND type IN ({types}) ORDER BY task_id, sequence",
                    (*chunk, *STATUS_TYPES),
                )
            )
        return statuses_of(bodies, task_ids)

    async def final_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        if not task_ids:
            return {}
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._rx, self._final_statuses_sync, task_ids
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    def _history_tasks_sync(self, q: TaskQuery) -> TaskPage:
        assert self._r is not None
        fts = _fts(q)
        pages = [
            self._r.execute(sql, params).fetchall() for sql, params in H.page_queries(q, False, _text, fts)
        ]
        tasks, nxt = H.merge_pages(pages, q.limit)
        total = None
        if q.with_total:
            sql, params = H.count_query(q, False, _text, fts)
            # (fetchall, not fetchone: an unfinished statement would hold its read
            # transaction open, and later reads would see that old snapshot)
            ((n,),) = self._r.execute(sql, params).fetchall()
            total = capped(n, q)
        return TaskPage(tasks, nxt, total)

    async def history_tasks(self, q: TaskQuery) -> TaskPage:
        return await self._reading(self._history_tasks_sync, q)

    def _series_rows_sync(
        self, start: float, end: float, agent_id: str | None
    ) -> tuple[list[SeriesRow], dict[str, int]]:
        assert self._r is not None
        *alive, before = H.series_queries(start, end, agent_id, False)
        rows = [SeriesRow(*r) for sql, params in alive for r in self._r.execute(sql, params)]
        return rows, {st: n for st, n in self._r.execute(*before).fetchall() if n}

    async def series_rows(
        self, start: float, end: float, agent_id: str | None = None
    ) -> tuple[list[SeriesRow], dict[str, int]]:
        return await self._reading(self._series_rows_sync, start, end, agent_id)

    def _agent_points_sync(self, agent_id: str, since: float | None) -> list[AgentPoint]:
        assert self._r is not None
        rows = self._r.execute(
            f"SELECT {', '.join(H.POINT_COLUMNS)} FROM agent_points WHERE agent_id = ? AND (capability IS NOT NULL OR at >= ?)"
            " ORDER BY sequence",
            (agent_id, since if since is not None else float("-inf")),
        )
        return [AgentPoint(*r) for r in rows]

    async def agent_points(self, agent_id: str, since: float | None = None) -> list[AgentPoint]:
        return await self._reading(self._agent_points_sync, agent_id, since)

    async def _reading(self, fn: Callable[..., _T], *args: Any) -> _T:
        self._flush_history()  # every committed event is in the tables the read sees
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rx, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the history: {exc}") from exc

    def _bounds_sync(self) -> tuple[int, int]:
        assert self._r is not None
        # two single aggregates: SQLite answers each from the primary key, whereas
        # MIN and MAX in one SELECT scan the table
        lo, hi = self._r.execute(
            "SELECT (SELECT MIN(sequence) FROM events), (SELECT MAX(sequence) FROM events)"
        ).fetchone()
        return (lo or 0, hi or 0)

    async def bounds(self) -> tuple[int, int]:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rx, self._bounds_sync)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    async def _on_writer(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._wx, fn, *args)

    async def save_snapshot(self, snap: Snapshot) -> None:
        """Written in pieces, in short transactions, then made current in one
        (``sqlite_snapshots.py``): event commits go on meanwhile."""
        assert self._sn is not None
        try:
            async with self._saving:
                w = await SN.save(
                    self._on_writer, self._sn, snap, self.snapshot_chunk_bytes, self.snapshot_pause
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot write a snapshot: {exc}") from exc
        log.info(
            "snapshot at %d stored in %d pieces, the longest transaction %.1f ms",
            snap.sequence,
            w.pieces,
            w.longest_ms,
        )

    async def snapshots(self) -> list[Snapshot]:
        return await self._reading(SN.read_sync, self._r)

    def _close_sync(self) -> None:
        for c in (self._w, self._r, self._ck, self._sn):
            if c is not None:
                c.close()
        self._w = self._r = self._ck = self._sn = None

    async def close(self) -> None:
        self._flush_history()
        if self._ck_task is not None:
            self._ck_task.cancel()
            try:
                await self._ck_task
            except asyncio.CancelledError:
                pass
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._wx, self._close_sync)
        self._wx.shutdown(wait=True)
        self._rx.shutdown(wait=True)
