"""SQLite store: WAL mode, one writer thread, batched commits.

One connection writes on a dedicated thread (sqlite3 connections must not be
shared across threads without care, and one writer is what WAL wants); reads
use a second connection on their own thread so a replay never waits behind a
commit. ``synchronous=NORMAL`` in WAL survives a process crash (kill -9) with
every committed batch; only an OS crash may lose the last ones.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ..core.errors import StoreUnavailable
from .base import StoredEvent

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        sequence INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]
SCHEMA_VERSION = "1"


class SQLiteEventStore:
    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._w: sqlite3.Connection | None = None
        self._r: sqlite3.Connection | None = None
        self._wx = ThreadPoolExecutor(1, thread_name_prefix="hive-sqlite-w")
        self._rx = ThreadPoolExecutor(1, thread_name_prefix="hive-sqlite-r")
        self._last = 0

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=NORMAL")
        c.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        return c

    def _open_sync(self) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._w = self._connect()
        for stmt in SCHEMA:
            self._w.execute(stmt)
        self._w.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
        row = self._w.execute("SELECT MAX(sequence) FROM events").fetchone()
        self._last = row[0] or 0
        self._r = self._connect()

    async def open(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._wx, self._open_sync)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc

    def _append_sync(self, events: Sequence[StoredEvent]) -> None:
        assert self._w is not None
        if events and events[0].sequence != self._last + 1:
            raise StoreUnavailable(f"sequence {events[0].sequence} does not follow {self._last}")
        c = self._w
        c.execute("BEGIN IMMEDIATE")
        try:
            c.executemany("INSERT INTO events(sequence, type, body) VALUES (?, ?, ?)", events)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        self._last = events[-1].sequence if events else self._last

    async def append(self, events: Sequence[StoredEvent]) -> None:
        if not events:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._wx, self._append_sync, events)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot write the event log: {exc}") from exc

    def _ping_sync(self) -> None:
        assert self._w is not None
        self._w.execute("BEGIN IMMEDIATE")
        self._w.execute("ROLLBACK")

    async def ping(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._wx, self._ping_sync)
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

    def _bounds_sync(self) -> tuple[int, int]:
        assert self._r is not None
        lo, hi = self._r.execute("SELECT MIN(sequence), MAX(sequence) FROM events").fetchone()
        return (lo or 0, hi or 0)

    async def bounds(self) -> tuple[int, int]:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._rx, self._bounds_sync)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc

    def _close_sync(self) -> None:
        for c in (self._w, self._r):
            if c is not None:
                c.close()
        self._w = self._r = None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._wx, self._close_sync)
        self._wx.shutdown(wait=True)
        self._rx.shutdown(wait=True)
