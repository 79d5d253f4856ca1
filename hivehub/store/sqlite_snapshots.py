"""Snapshots in SQLite, written in pieces so the event writer is never locked out for long.

A snapshot body of many MiB written in one transaction holds the write lock for
as long as that takes (about a second for 36 MiB, measured), and every commit
of events waits as long. So the body is written to ``snapshot_chunks`` under a
new blob id, :data:`CHUNK_BYTES` at a time, one short transaction each with a
pause between them (the event writer polls a held lock every 5 ms,
``SQLiteEventStore.append``, so it gets in), and only then made current: one
small transaction inserts the row in ``snapshots`` (its ``body`` empty) and in
``snapshot_blobs`` the blob it is in, and drops the rows beyond ``KEEP_SNAPSHOTS``.

A crash before that last transaction leaves pieces no row names: the previous
snapshots are still the current ones. Such pieces, and those of the rows
dropped, are deleted one per transaction too, after the next write (not at
open: a start does not wait for it).
A row written before the pieces existed holds its body inline (no
``snapshot_blobs`` row) and is read as before.

The functions named ``*_sync`` run on the store's writer thread (``_sn``, the
snapshot writer's connection) or reader thread (``read_sync``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import KEEP_SNAPSHOTS, Snapshot

__all__ = ["CHUNK_BYTES", "PAUSE_S", "Written", "read_sync", "save", "sweep"]

#: the size of one piece of a body, each written in a transaction of its own
CHUNK_BYTES = 1 << 20
#: the pause after each piece, in which the event writer takes the lock (it tries every 5 ms)
PAUSE_S = 0.01

Run = Callable[..., Awaitable[Any]]


class Written:
    """What writing one snapshot took: its pieces, and the longest transaction (ms)."""

    def __init__(self) -> None:
        self.pieces = 0
        self.longest_ms = 0.0

    def timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - t0) * 1000)


def _tx(c: sqlite3.Connection, fn: Callable[..., Any], *args: Any) -> Any:
    c.execute("BEGIN IMMEDIATE")
    try:
        out = fn(c, *args)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return out


def _first_piece(c: sqlite3.Connection, data: bytes) -> int:
    (a,) = c.execute("SELECT COALESCE(MAX(blob), 0) FROM snapshot_chunks").fetchone()
    (b,) = c.execute("SELECT COALESCE(MAX(blob), 0) FROM snapshot_blobs").fetchone()
    blob = int(max(a, b)) + 1
    c.execute("INSERT INTO snapshot_chunks(blob, n, data) VALUES (?, 0, ?)", (blob, data))
    return blob


def _piece(c: sqlite3.Connection, blob: int, n: int, data: bytes) -> None:
    c.execute("INSERT INTO snapshot_chunks(blob, n, data) VALUES (?, ?, ?)", (blob, n, data))


def _publish(c: sqlite3.Connection, snap: Snapshot, blob: int) -> None:
    c.execute(
        "INSERT OR REPLACE INTO snapshots(sequence, format, schema, config, head, body) VALUES (?, ?, ?, ?, ?, ?)",
        (snap.sequence, snap.format, snap.schema, snap.config, snap.head, b""),
    )
    c.execute("INSERT OR REPLACE INTO snapshot_blobs(sequence, blob) VALUES (?, ?)", (snap.sequence, blob))
    c.execute(
        "DELETE FROM snapshots WHERE sequence NOT IN"
        " (SELECT sequence FROM snapshots ORDER BY sequence DESC LIMIT ?)",
        (KEEP_SNAPSHOTS,),
    )
    c.execute("DELETE FROM snapshot_blobs WHERE sequence NOT IN (SELECT sequence FROM snapshots)")


def orphans_sync(c: sqlite3.Connection) -> list[tuple[int, int]]:
    """The pieces no snapshot row names (a write that did not finish, rows dropped)."""
    return c.execute(
        "SELECT blob, n FROM snapshot_chunks WHERE blob NOT IN (SELECT blob FROM snapshot_blobs) ORDER BY blob, n"
    ).fetchall()


def _delete(c: sqlite3.Connection, blob: int, n: int) -> None:
    c.execute("DELETE FROM snapshot_chunks WHERE blob = ? AND n = ?", (blob, n))


async def save(
    run: Run, c: sqlite3.Connection, snap: Snapshot, chunk_bytes: int = CHUNK_BYTES, pause: float = PAUSE_S
) -> Written:
    """Write ``snap`` in pieces, then make it current (see the module docstring);
    ``run(fn, *args)`` runs ``fn`` on the writer thread."""
    w = Written()
    body = memoryview(snap.body)
    blob = 0
    for lo in range(0, max(1, len(body)), chunk_bytes):
        data = bytes(body[lo : lo + chunk_bytes])
        if w.pieces == 0:
            blob = await run(w.timed, _tx, c, _first_piece, data)
        else:
            await run(w.timed, _tx, c, _piece, blob, w.pieces, data)
        w.pieces += 1
        await asyncio.sleep(pause)
    await run(w.timed, _tx, c, _publish, snap, blob)
    await sweep(run, c, pause)
    return w


async def sweep(run: Run, c: sqlite3.Connection, pause: float = PAUSE_S) -> int:
    """Delete the pieces no row names, one transaction each; returns how many."""
    gone = await run(orphans_sync, c)
    for blob, n in gone:
        await run(_tx, c, _delete, blob, n)
        await asyncio.sleep(pause)
    return len(gone)


def read_sync(c: sqlite3.Connection) -> list[Snapshot]:
    """The snapshots, newest first, bodies joined from their pieces (one read transaction)."""
    c.execute("BEGIN")
    try:
        rows = c.execute(
            "SELECT s.sequence, format, schema, config, head, body, blob"
            " FROM snapshots s LEFT JOIN snapshot_blobs b ON b.sequence = s.sequence ORDER BY s.sequence DESC"
        ).fetchall()
        out = []
        for seq, fmt, schema, config, head, body, blob in rows:
            if blob is not None:
                pieces = c.execute(
                    "SELECT data FROM snapshot_chunks WHERE blob = ? ORDER BY n", (blob,)
                ).fetchall()
                body = b"".join(p for (p,) in pieces)
            out.append(Snapshot(seq, fmt, schema, config, head, bytes(body)))
    finally:
        c.execute("COMMIT")
    return out
