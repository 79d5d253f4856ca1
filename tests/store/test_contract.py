"""One contract, every backend: memory, SQLite and PostgreSQL (a real server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hivehub.core.errors import StoreUnavailable
from hivehub.store import StoredEvent, open_store
from hivehub.store.base import EventStore

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
