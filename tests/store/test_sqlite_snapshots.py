"""SQLite snapshots written in pieces (``store/sqlite_snapshots.py``): read back byte
for byte, event commits go on between the pieces, and a crash mid-write (kill -9)
leaves the previous snapshot current."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hivehub.store import sqlite_snapshots as SN
from hivehub.store.base import Snapshot, StoredEvent
from hivehub.store.sqlite import SQLiteEventStore


def snap(seq: int, body: bytes) -> Snapshot:
    return Snapshot(seq, 1, "schema", "config", f"head-{seq}", body)


def body(n: int, seed: int) -> bytes:
    return bytes((i * 31 + seed) % 251 for i in range(n))


def pieces(db: Path) -> list[tuple[int, int]]:
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT blob, COUNT(*) FROM snapshot_chunks GROUP BY blob ORDER BY blob").fetchall()
    finally:
        c.close()


async def opened(db: Path, chunk: int, pause: float = 0.0) -> SQLiteEventStore:
    s = SQLiteEventStore(str(db))
    s.snapshot_chunk_bytes, s.snapshot_pause = chunk, pause
    await s.open()
    return s


async def test_a_body_in_pieces_reads_back_whole_and_dropped_ones_leave_no_pieces(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    s = await opened(db, chunk=1000)
    try:
        a, b, c = snap(10, body(4500, 1)), snap(20, body(1000, 2)), snap(30, b"")
        await s.save_snapshot(a)
        assert pieces(db) == [(1, 5)]
        await s.save_snapshot(b)
        await s.save_snapshot(c)
        assert await s.snapshots() == [c, b]
        assert pieces(db) == [(2, 1), (3, 1)]  # a's are gone with its row
    finally:
        await s.close()


async def test_a_row_written_before_the_pieces_is_read_as_before(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    s = await opened(db, chunk=1000)
    await s.close()
    c = sqlite3.connect(db)
    c.execute("INSERT INTO snapshots VALUES (5, 1, 'schema', 'config', 'head-5', ?)", (b"inline",))
    c.commit()
    c.close()
    s = await opened(db, chunk=1000)
    try:
        assert await s.snapshots() == [snap(5, b"inline")]
        await s.save_snapshot(snap(6, body(2500, 3)))
        assert await s.snapshots() == [snap(6, body(2500, 3)), snap(5, b"inline")]
    finally:
        await s.close()


async def test_events_commit_between_the_pieces_of_a_snapshot(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    s = await opened(db, chunk=1000, pause=0.02)
    try:
        await s.save_snapshot(snap(1, b"first"))
        writing = asyncio.create_task(s.save_snapshot(snap(2, body(100_000, 4))))  # 100 pieces
        while len(pieces(db)) < 2:  # the new blob's first pieces are in
            await asyncio.sleep(0.005)
        await s.append([StoredEvent(1, "task_created", b"{}"), StoredEvent(2, "task_created", b"{}")])
        assert [e.sequence for e in await s.read(0)] == [1, 2]
        assert not writing.done() and await s.snapshots() == [snap(1, b"first")]
        await writing
        assert [x.sequence for x in await s.snapshots()] == [2, 1]
    finally:
        await s.close()


_WRITER = """
import asyncio, sys
from hivehub.store.base import Snapshot
from hivehub.store.sqlite import SQLiteEventStore

async def main():
    s = SQLiteEventStore(sys.argv[1])
    s.snapshot_chunk_bytes, s.snapshot_pause = 1000, 0.05
    await s.open()
    await s.save_snapshot(Snapshot(1, 1, "schema", "config", "head-1", b"previous"))
    print("saved", flush=True)
    await s.save_snapshot(Snapshot(2, 1, "schema", "config", "head-2", bytes(200_000)))
    print("finished", flush=True)  # (200 pieces, 10 s: killed long before)

asyncio.run(main())
"""


async def test_a_crash_mid_write_leaves_the_previous_snapshot_current(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout is not None and p.stdout.readline() == "saved\n"
        give_up = time.monotonic() + 30
        while not (len(got := pieces(db)) == 2 and got[1][1] >= 3):  # mid-write of the second
            assert time.monotonic() < give_up and p.poll() is None
            await asyncio.sleep(0.01)
        p.send_signal(signal.SIGKILL)
    finally:
        p.kill()
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
    s = await opened(db, chunk=1000)
    try:
        assert await s.snapshots() == [snap(1, b"previous")]
        await s.save_snapshot(snap(3, body(1500, 5)))  # and the unfinished pieces are swept
        assert await s.snapshots() == [snap(3, body(1500, 5)), snap(1, b"previous")]
        assert [n for _, n in pieces(db)] == [1, 2]
        c = sqlite3.connect(db)
        assert SN.orphans_sync(c) == []
        c.close()
    finally:
        await s.close()
