"""One contract, every backend: memory, SQLite and PostgreSQL (a real server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hivehub.core.errors import StoreUnavailable
from hivehub.store import StoredEvent, open_store
from hivehub.store.base import KEEP_SNAPSHOTS, EventStore, NewEvent, Snapshot

PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request, tmp_path) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        s = open_store("memory")
    elif request.param == "sqlite":
        s = open_store(str(tmp_path / "log.db"))
    else:
        s = open_store(f"{PG}?schema=t_{uuid.uuid4().hex[:12]}")
    await s.open()
    try:
        yield s
    finally:
        if request.param == "postgres":
            import asyncpg

            schema = s.schema  # type: ignore[attr-defined]
            await s.close()
            c = await asyncpg.connect(PG)
            await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await c.close()
        else:
            await s.close()


def ev(seq: int, typ: str = "task_created") -> StoredEvent:
    return StoredEvent(seq, typ, f'{{"type":"{typ}","sequence":{seq}}}'.encode())


async def test_empty(store: EventStore) -> None:
    assert await store.bounds() == (0, 0)
    assert await store.read(0) == []


async def test_append_and_read_in_order(store: EventStore) -> None:
    await store.append([ev(1), ev(2), ev(3, "task_assigned")])
    await store.append([ev(4)])
    got = await store.read(0)
    assert [e.sequence for e in got] == [1, 2, 3, 4]
    assert got[2] == ev(3, "task_assigned")
    assert [e.sequence for e in await store.read(2)] == [3, 4]
    assert [e.sequence for e in await store.read(0, limit=2)] == [1, 2]
    assert await store.read(4) == []
    assert await store.bounds() == (1, 4)


async def test_gaps_and_duplicates_are_refused_whole(store: EventStore) -> None:
    await store.append([ev(1), ev(2)])
    with pytest.raises(StoreUnavailable):
        await store.append([ev(4)])  # gap
    with pytest.raises(StoreUnavailable):
        await store.append([ev(2), ev(3)])  # duplicate
    assert [e.sequence for e in await store.read(0)] == [1, 2]
    await store.append([ev(3)])
    assert (await store.bounds())[1] == 3


async def test_bodies_are_kept_byte_for_byte(store: EventStore) -> None:
    body = '{"type":"x","data":{"s":"ünïcødé ✓","n":1.5e300}}'.encode()
    await store.append([StoredEvent(1, "x", body)])
    assert (await store.read(0))[0].body == body


async def test_many_events_page_through(store: EventStore) -> None:
    await store.append([ev(i) for i in range(1, 2501)])
    seen, after = [], 0
    while True:
        page = await store.read(after, 1000)
        if not page:
            break
        seen += [e.sequence for e in page]
        after = page[-1].sequence
    assert seen == list(range(1, 2501))


async def test_ping(store: EventStore) -> None:
    await store.ping()


async def test_reopen_keeps_everything(tmp_path) -> None:
    for url in (str(tmp_path / "re.db"), f"{PG}?schema=t_{uuid.uuid4().hex[:12]}"):
        s = open_store(url)
        await s.open()
        await s.append([ev(1), ev(2)])
        await s.close()
        s2 = open_store(url)
        await s2.open()
        assert [e.sequence for e in await s2.read(0)] == [1, 2]
        await s2.append([ev(3)])
        assert await s2.bounds() == (1, 3)
        if url.startswith("postgresql"):
            import asyncpg

            schema = s2.schema  # type: ignore[attr-defined]
            await s2.close()
            c = await asyncpg.connect(PG)
            await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await c.close()
        else:
            await s2.close()


def task_ev(seq: int, typ: str, task_id: str) -> NewEvent:
    data = f'{{"task":{{"id":"{task_id}"}}}}' if typ == "task_created" else f'{{"task_id":"{task_id}"}}'
    return NewEvent(seq, typ, f'{{"type":"{typ}","data":{data},"sequence":{seq}}}'.encode(), task_id)


async def test_task_events_are_one_tasks_history_in_order(store: EventStore) -> None:
    await store.append(
        [task_ev(1, "task_created", "a"), task_ev(2, "task_created", "b"), ev(3, "agent_created")]
    )
    await store.append([task_ev(4, "task_assigned", "a"), task_ev(5, "task_completed", "a")])
    got = await store.task_events("a")
    assert [(e.sequence, e.type) for e in got] == [
        (1, "task_created"),
        (4, "task_assigned"),
        (5, "task_completed"),
    ]
    assert got[0].body == task_ev(1, "task_created", "a").body
    assert [e.sequence for e in await store.task_events("b")] == [2]
    assert await store.task_events("nope") == []
    await store.append(
        [NewEvent(6, "task_created", b'{"type":"task_created"}', "n\x00l")]
    )  # NUL is a valid id
    assert [e.sequence for e in await store.task_events("n\x00l")] == [6]
    # read answers the same rows as before the index existed
    assert (await store.read(0))[3] == StoredEvent(4, "task_assigned", task_ev(4, "task_assigned", "a").body)
    for row in await store.read(0):  # the replay path unpacks rows of exactly three fields
        seq, typ, body = row
    for row in await store.task_events("a"):
        seq, typ, body = row


OLD_ROWS = [
    task_ev(1, "task_created", "old"),
    ev(2, "agent_created"),
    task_ev(3, "task_completed", "old"),
    StoredEvent(
        4, "task_created", b'{"type":"task_created","data":{"task":{"id":"nul\\u0000"}},"sequence":4}'
    ),
]


async def test_a_log_written_before_the_task_index_is_backfilled(tmp_path) -> None:
    import sqlite3

    path = str(tmp_path / "v1.db")
    c = sqlite3.connect(path)  # the schema of version 1, as an older hub wrote it
    c.execute("CREATE TABLE events (sequence INTEGER PRIMARY KEY, type TEXT NOT NULL, body BLOB NOT NULL)")
    c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    c.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    c.executemany("INSERT INTO events VALUES (?, ?, ?)", [r[:3] for r in OLD_ROWS])
    c.commit()
    c.close()
    s = open_store(path)
    await s.open()
    try:
        assert [e.sequence for e in await s.task_events("old")] == [1, 3]
        assert [e.sequence for e in await s.task_events("nul\x00")] == [4]
        await s.append([task_ev(5, "task_started", "old")])
        assert [e.sequence for e in await s.task_events("old")] == [1, 3, 5]
    finally:
        await s.close()
    s2 = open_store(path)  # reopening does not migrate again
    await s2.open()
    assert [e.sequence for e in await s2.task_events("old")] == [1, 3, 5]
    await s2.close()


async def test_a_postgres_log_written_before_the_task_index_is_backfilled() -> None:
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    c = await asyncpg.connect(PG)
    try:
        await c.execute(f'CREATE SCHEMA "{schema}"')
        await c.execute(f'SET search_path TO "{schema}"')
        await c.execute(
            "CREATE TABLE events (sequence BIGINT PRIMARY KEY, type TEXT NOT NULL, body BYTEA NOT NULL)"
        )
        await c.execute(
            "CREATE TABLE schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        await c.execute("INSERT INTO schema_migrations(version) VALUES (1), (2)")
        await c.executemany("INSERT INTO events VALUES ($1, $2, $3)", [r[:3] for r in OLD_ROWS])
        s = open_store(f"{PG}?schema={schema}")
        await s.open()
        try:
            assert [e.sequence for e in await s.task_events("old")] == [1, 3]
            assert [e.sequence for e in await s.task_events("nul\x00")] == [4]
            await s.append([task_ev(5, "task_started", "old")])
            assert [e.sequence for e in await s.task_events("old")] == [1, 3, 5]
        finally:
            await s.close()
    finally:
        await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await c.close()


async def test_final_statuses_fold_each_named_task_from_its_own_events(store: EventStore) -> None:
    from hivehub.core.commands import CancelTask
    from hivehub.core.events import encode_event
    from hivehub.core.model import TaskStatus as TS
    from hivehub.core.tasklog import task_id_of

    from ..core._harness import NO_HEARTBEAT_EXPIRY, Sim

    s = Sim(NO_HEARTBEAT_EXPIRY)
    s.register("a", t=0, max_tasks=10)
    s.submit("done", t=1)
    s.progress("done", 0.5, t=1)
    s.complete("done", t=2)
    s.submit("failed", t=1, max_retries=0)
    s.fail("failed", t=2, retryable=False)
    s.submit("retrying", t=1)
    s.fail("retrying", t=2)  # a retry is scheduled: pending again
    s.submit("running", t=1)
    s.start("running", t=2)
    s.submit("cancelled", {"nobody": 0.5}, t=1)
    s.do(CancelTask(task_id="cancelled", cancelled_by="u"), 2)
    s.submit("x\x00", t=3)  # shares its index key with the next id (task_key)
    s.complete("x\x00", t=3)
    s.submit("x\ufffd", {"nobody": 0.5}, t=3)
    half = len(s.log) // 2  # two appends: a task's events span batches
    rows = [NewEvent(e.sequence, e.type, encode_event(e), task_id_of(e.data)) for e in s.log]
    await store.append(rows[:half])
    await store.append(rows[half:])

    ids = ["done", "failed", "retrying", "running", "cancelled", "x\x00", "nope"]
    assert await store.final_statuses(ids) == {
        "done": TS.COMPLETED,
        "failed": TS.FAILED,
        "retrying": TS.PENDING,
        "running": TS.RUNNING,
        "cancelled": TS.CANCELLED,
        "x\x00": TS.COMPLETED,  # not the pending task that shares its key
    }
    assert await store.final_statuses(["x\ufffd"]) == {"x\ufffd": TS.PENDING}
    assert await store.final_statuses([]) == {}
    assert await store.final_statuses(["nope"]) == {}
    many = [f"n{i}" for i in range(1200)] + ["done"]  # more ids than one SQLite statement binds
    assert await store.final_statuses(many) == {"done": TS.COMPLETED}


# ---------------------------------------------------------------- snapshots


def snap(seq: int, body: bytes = b"state") -> Snapshot:
    return Snapshot(seq, 1, "schema", "config", f"head-{seq}", body)


async def test_no_snapshots_at_first(store: EventStore) -> None:
    assert await store.snapshots() == []


async def test_snapshots_come_back_newest_first_and_only_the_newest_are_kept(store: EventStore) -> None:
    await store.append([ev(i) for i in range(1, 31)])
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value: kept byte for byte
    await store.save_snapshot(snap(10))
    await store.save_snapshot(snap(20, big))
    assert await store.snapshots() == [snap(20, big), snap(10)]
    await store.save_snapshot(snap(30))
    got = await store.snapshots()
    assert [s.sequence for s in got] == [30, 20][:KEEP_SNAPSHOTS]
    assert got[0] == snap(30)
    assert got[1].body == big


async def test_a_snapshot_at_the_same_sequence_replaces_the_old_one(store: EventStore) -> None:
    await store.append([ev(1)])
    await store.save_snapshot(snap(1, b"old"))
    await store.save_snapshot(snap(1, b"new"))
    assert await store.snapshots() == [snap(1, b"new")]


async def test_snapshots_survive_a_reopen(tmp_path) -> None:
    path = str(tmp_path / "log.db")
    s = open_store(path)
    await s.open()
    await s.append([ev(1), ev(2)])
    await s.save_snapshot(snap(2))
    await s.close()
    s = open_store(path)
    await s.open()
    try:
        assert await s.snapshots() == [snap(2)]
    finally:
        await s.close()
