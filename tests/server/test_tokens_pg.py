"""The token table on a real PostgreSQL (127.0.0.1:5432, db ``test``), each test on
a schema of its own: what ``hive token`` and every replica's TokenStore share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from hivehub.server.tokens import TokenStore

PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture
def db() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG}?schema={schema}"

    async def drop() -> None:
        c = await asyncpg.connect(PG)
        await c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await c.close()

    asyncio.run(drop())


def opened(db: str, **kw: object) -> TokenStore:
    s = TokenStore(db, **kw)  # type: ignore[arg-type]
    s.open()
    return s


def test_create_before_any_hub_then_revoke(db: str) -> None:
    token, tid = TokenStore(db).create("operator", note="ci")  # the schema does not exist yet
    s = opened(db)
    assert s.enabled and s.authenticate(token) is not None
    assert s.authenticate(token.replace(token[-4:], "AAAA")) is None
    assert TokenStore(db).revoke(token)
    assert not TokenStore(db).revoke(tid)  # already revoked
    assert opened(db).authenticate(token) is None
    (row,) = TokenStore(db).list()
    assert row["id"] == tid and row["role"] == "operator" and row["note"] == "ci" and row["revoked_at"]
    # revoking every token does not open the hub again (auto)
    assert opened(db).enabled


def test_auth_on_is_persisted(db: str) -> None:
    assert not opened(db).enabled  # auto, no token: open
    opened(db, mode="on")
    assert opened(db).enabled  # the next start in auto stays on


def test_replicas_starting_together_create_the_tables_once(db: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: TokenStore(db).create("viewer", note=str(i)), range(4)))
    s = opened(db)
    assert all(s.authenticate(t) is not None for t, _ in made)
    assert sorted(r["note"] for r in TokenStore(db).list()) == ["0", "1", "2", "3"]


async def test_watch_sees_a_revocation_on_the_loop(db: str) -> None:
    token, tid = TokenStore(db).create("admin")
    s = TokenStore(db, poll_seconds=0.05)
    s.open()  # a start-up step, called on the loop (the hub's on_startup)
    gone: list[object] = []
    s.on_revoked.append(gone.extend)
    task = asyncio.create_task(s.watch())
    try:
        await asyncio.to_thread(TokenStore(db).revoke, tid)
        for _ in range(100):
            if gone:
                break
            await asyncio.sleep(0.02)
        assert [str(i) for i in gone] == [f"admin:{tid}"]
        assert s.authenticate(token) is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
