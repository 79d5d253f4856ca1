"""PostgreSQL store (asyncpg): the log shared by several hub replicas.

Schema migrations are versioned (``MIGRATIONS``) and applied at start under a
transaction-scoped advisory lock, so replicas starting together migrate once.
The ``sequence`` primary key is the fence between writers: only the replica
holding the scheduler lock appends, and a stale writer's insert of a sequence
that already exists fails instead of forking the log.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.errors import StoreUnavailable
from ..core.model import TaskStatus
from .base import (
    JSON_NUL,
    JSON_NUL_KEY,
    STATUS_TYPES,
    TASK_ID_PATHS,
    NewEvent,
    StoredEvent,
    statuses_of,
    task_id_of_row,
    task_key,
)

try:
    import asyncpg
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the PostgreSQL store needs asyncpg: pip install 'hivehub[postgres]'") from exc

MIGRATION_LOCK = 0x48495645  # "HIVE"


def _task_id_expr() -> str:
    # an escaped NUL cannot become text: it is indexed as U+FFFD (base.task_key)
    cases = " ".join(
        f"WHEN '{typ}' THEN replace(convert_from(body, 'UTF8'), '{JSON_NUL}', '{JSON_NUL_KEY}')::json #>> '{{{','.join(path)}}}'"
        for typ, path in TASK_ID_PATHS.items()
    )
    return f"CASE type {cases} END"


MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS events (
                sequence BIGINT PRIMARY KEY,
                type TEXT NOT NULL,
                body BYTEA NOT NULL
            )""",
        ],
    ),
    (
        2,
        [
            """CREATE TABLE IF NOT EXISTS cluster_leader (
                id INT PRIMARY KEY CHECK (id = 1),
                replica_id TEXT NOT NULL,
                url TEXT NOT NULL,
                since TIMESTAMPTZ NOT NULL DEFAULT now()
            )""",
        ],
    ),
    (
        3,
        [
            # one task's events (GET /api/tasks/{id} of a task evicted from memory);
            # logs written before the column are backfilled from the bodies
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS task_id TEXT",
            f"UPDATE events SET task_id = {_task_id_expr()}",
            "CREATE INDEX IF NOT EXISTS events_task_id ON events(task_id, sequence) WHERE task_id IS NOT NULL",
        ],
    ),
]

_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError)


def split_url(url: str) -> tuple[str, str | None]:
    """Take our own ``schema=`` query parameter off a PostgreSQL URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresEventStore:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url, self.schema = split_url(url)
        self.min_size = min_size
        self.max_size = max_size
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        settings = {"search_path": self.schema} if self.schema else None
        try:
            if self.schema:
                conn = await asyncpg.connect(self.url)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                finally:
                    await conn.close()
            self.pool = await asyncpg.create_pool(
                self.url, min_size=self.min_size, max_size=self.max_size, server_settings=settings
            )
            async with self.pool.acquire() as c, c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await c.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                done = {r["version"] for r in await c.fetch("SELECT version FROM schema_migrations")}
                for version, statements in MIGRATIONS:
                    if version in done:
                        continue
                    for stmt in statements:
                        await c.execute(stmt)
                    await c.execute("INSERT INTO schema_migrations(version) VALUES ($1)", version)
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot open the PostgreSQL event log: {exc}") from exc

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise StoreUnavailable("the PostgreSQL store is not open")
        return self.pool

    async def append(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        if not events:
            return
        try:
            async with self._pool().acquire() as c, c.transaction():
                last = await c.fetchval("SELECT COALESCE(MAX(sequence), 0) FROM events")
                if events[0].sequence != last + 1:
                    raise StoreUnavailable(f"sequence {events[0].sequence} does not follow {last}")
                await c.copy_records_to_table(
                    "events",
                    records=[(e.sequence, e.type, e.body, task_key(task_id_of_row(e))) for e in events],
                    columns=["sequence", "type", "body", "task_id"],
                )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot write the event log: {exc}") from exc

    async def read(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        try:
            rows = await self._pool().fetch(
                "SELECT sequence, type, body FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
                after,
                limit,
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc
        return [StoredEvent(r["sequence"], r["type"], bytes(r["body"])) for r in rows]

    async def task_events(self, task_id: str) -> list[StoredEvent]:
        try:
            rows = await self._pool().fetch(
                "SELECT sequence, type, body FROM events WHERE task_id = $1 ORDER BY sequence",
                task_key(task_id),
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc
        return [StoredEvent(r["sequence"], r["type"], bytes(r["body"])) for r in rows]

    async def final_statuses(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        keys = sorted({k for k in map(task_key, task_ids) if k is not None})
        if not keys:
            return {}
        try:
            # one query for the batch, each id through the (task_id, sequence) index
            rows = await self._pool().fetch(
                "SELECT body FROM events WHERE task_id = ANY($1::text[]) AND type = ANY($2::text[])"
                " ORDER BY task_id, sequence",
                keys,
                list(STATUS_TYPES),
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc
        return statuses_of((bytes(r["body"]) for r in rows), task_ids)

    async def bounds(self) -> tuple[int, int]:
        try:
            row = await self._pool().fetchrow("SELECT MIN(sequence) AS lo, MAX(sequence) AS hi FROM events")
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the event log: {exc}") from exc
        return (row["lo"] or 0, row["hi"] or 0)

    async def ping(self) -> None:
        try:
            await self._pool().fetchval("SELECT 1")
        except _ERRORS as exc:
            raise StoreUnavailable(f"the PostgreSQL event log is unreachable: {exc}") from exc

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
