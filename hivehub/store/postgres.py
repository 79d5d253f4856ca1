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
from ..core.summary import AgentPoint, SeriesRow
from . import history_sql as H
from .base import (
    BACKFILL_BATCH,
    JSON_NUL,
    JSON_NUL_KEY,
    KEEP_SNAPSHOTS,
    STATUS_TYPES,
    TASK_ID_PATHS,
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

MIGRATIONS.append(
    (
        4,
        [
            # the history tables (core/summary.py, store/history_sql.py): written with
            # the events that change them; an older log is backfilled on open
            # (history_state.sequence: the sequence they are at). Ids are task_key()s.
            """CREATE TABLE IF NOT EXISTS task_summary (
                seq BIGINT PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                description TEXT NOT NULL,
                status TEXT NOT NULL,
                priority INT NOT NULL,
                owner TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                agent_id TEXT,
                started_at DOUBLE PRECISION,
                finished_at DOUBLE PRECISION,
                retried_at DOUBLE PRECISION,
                attempts INT NOT NULL DEFAULT 0,
                failures INT NOT NULL DEFAULT 0,
                error_code TEXT,
                error_message TEXT,
                latency_ms DOUBLE PRECISION,
                tokens BIGINT NOT NULL DEFAULT 0,
                cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
                search TEXT GENERATED ALWAYS AS (
                    lower(id || ' ' || type || ' ' || description || ' '
                          || coalesce(error_code, '') || ' ' || coalesce(error_message, ''))
                ) STORED
            )""",
            """CREATE TABLE IF NOT EXISTS agent_points (
                agent_id TEXT NOT NULL, sequence BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL,
                capability TEXT, proficiency DOUBLE PRECISION, success_rate DOUBLE PRECISION,
                latency_ms DOUBLE PRECISION
            )""",
            *H.index_statements(),
            """CREATE TABLE IF NOT EXISTS history_state (
                id INT PRIMARY KEY CHECK (id = 1), sequence BIGINT NOT NULL
            )""",
            "INSERT INTO history_state VALUES (1, 0) ON CONFLICT DO NOTHING",
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        [
            # snapshots of the folded state (store/snapshot.py), the newest KEEP_SNAPSHOTS
            """CREATE TABLE IF NOT EXISTS snapshots (
                sequence BIGINT PRIMARY KEY,
                format INT NOT NULL,
                schema TEXT NOT NULL,
                config TEXT NOT NULL,
                head TEXT NOT NULL,
                body BYTEA NOT NULL
            )""",
        ],
    )
)

_ERRORS = (asyncpg.PostgresError, OSError, asyncpg.InterfaceError)


def _text(p: H.Placeholders, text: str) -> str:
    # a substring, ignoring case: the pg_trgm index answers it where it exists
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"search LIKE {p('%' + escaped + '%')}"


async def _trigram_index(c: asyncpg.Connection) -> bool:
    """Index the search column with pg_trgm if the extension is (or can be) installed;
    without it a text search scans the table. Inside a savepoint: a refusal (not a
    superuser) leaves the migration going."""
    try:
        async with c.transaction():
            await c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    except asyncpg.PostgresError:
        pass
    schema = await c.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
    )
    if schema is None:
        return False
    await c.execute(
        f'CREATE INDEX IF NOT EXISTS task_summary_search ON task_summary USING gin (search "{schema}".gin_trgm_ops)'
    )
    return True


async def write_history(c: asyncpg.Connection, events: Sequence[StoredEvent | NewEvent]) -> None:
    """The history writes of a batch, inside the caller's transaction."""
    todo = H.plan(events)
    if todo.creates:
        # a duplicate id replaces the row
        await c.execute(
            "DELETE FROM task_summary WHERE id = ANY($1::text[])", [task_key(r.id) for r in todo.creates]
        )
        await c.copy_records_to_table(
            "task_summary",
            records=[H.row_values(r, task_key) for r in todo.creates],
            columns=list(H.SQL_COLUMNS),
        )
    for group in todo.updates.values():
        await c.executemany(H.update_sql(group[0], True), [H.update_params(ch, task_key) for ch in group])
    if todo.points:
        await c.copy_records_to_table(
            "agent_points", records=[H.point_values(pt) for pt in todo.points], columns=list(H.POINT_COLUMNS)
        )
    if events:
        await c.execute("UPDATE history_state SET sequence = $1 WHERE id = 1", events[-1].sequence)


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
                    if version == 4:
                        await _trigram_index(c)
            await self._backfill()
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot open the PostgreSQL event log: {exc}") from exc

    async def _backfill(self) -> None:
        """Bring the history tables up to the log, one batch of events per transaction
        (the row of ``history_state`` is locked: replicas opening together backfill once)."""
        while True:
            async with self._pool().acquire() as c, c.transaction():
                at = await c.fetchval("SELECT sequence FROM history_state WHERE id = 1 FOR UPDATE")
                rows = [
                    StoredEvent(r["sequence"], r["type"], bytes(r["body"]))
                    for r in await c.fetch(
                        "SELECT sequence, type, body FROM events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
                        at,
                        BACKFILL_BATCH,
                    )
                ]
                if rows:
                    await write_history(c, history_rows(rows))
                    await c.execute("UPDATE history_state SET sequence = $1 WHERE id = 1", rows[-1].sequence)
            if len(rows) < BACKFILL_BATCH:
                return

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
                await write_history(c, events)
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot write the event log: {exc}") from exc

    async def save_snapshot(self, snap: Snapshot) -> None:
        try:
            async with self._pool().acquire() as c, c.transaction():
                await c.execute(
                    "INSERT INTO snapshots VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (sequence) DO UPDATE"
                    " SET format = $2, schema = $3, config = $4, head = $5, body = $6",
                    *snap,
                )
                await c.execute(
                    "DELETE FROM snapshots WHERE sequence NOT IN"
                    " (SELECT sequence FROM snapshots ORDER BY sequence DESC LIMIT $1)",
                    KEEP_SNAPSHOTS,
                )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot write a snapshot: {exc}") from exc

    async def snapshots(self) -> list[Snapshot]:
        try:
            rows = await self._pool().fetch(
                "SELECT sequence, format, schema, config, head, body FROM snapshots ORDER BY sequence DESC"
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the snapshots: {exc}") from exc
        return [Snapshot(r[0], r[1], r[2], r[3], r[4], bytes(r[5])) for r in rows]

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

    async def history_tasks(self, q: TaskQuery) -> TaskPage:
        try:
            async with self._pool().acquire() as c:
                pages = [
                    [tuple(r) for r in await c.fetch(sql, *params)]
                    for sql, params in H.page_queries(q, True, _text)
                ]
                total = None
                if q.with_total:
                    sql, params = H.count_query(q, True, _text)
                    total = capped(await c.fetchval(sql, *params), q)
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the history: {exc}") from exc
        tasks, nxt = H.merge_pages(pages, q.limit)
        return TaskPage(tasks, nxt, total)

    async def series_rows(
        self, start: float, end: float, agent_id: str | None = None
    ) -> tuple[list[SeriesRow], dict[str, int]]:
        *alive, before = H.series_queries(start, end, agent_id, True)
        try:
            async with self._pool().acquire() as c:
                rows = [SeriesRow(*r) for sql, params in alive for r in await c.fetch(sql, *params)]
                counts = {r[0]: r[1] for r in await c.fetch(before[0], *before[1]) if r[1]}
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the history: {exc}") from exc
        return rows, counts

    async def agent_points(self, agent_id: str, since: float | None = None) -> list[AgentPoint]:
        try:
            rows = await self._pool().fetch(
                f"SELECT {', '.join(H.POINT_COLUMNS)} FROM agent_points"
                " WHERE agent_id = $1 AND (capability IS NOT NULL OR at >= $2) ORDER BY sequence",
                agent_id,
                since if since is not None else float("-inf"),
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot read the history: {exc}") from exc
        return [AgentPoint(*r) for r in rows]

    async def ping(self) -> None:
        try:
            await self._pool().fetchval("SELECT 1")
        except _ERRORS as exc:
            raise StoreUnavailable(f"the PostgreSQL event log is unreachable: {exc}") from exc

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
