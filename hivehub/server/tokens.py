"""Access tokens: the store (a table of ``hv_<id>_<secret>`` records, of which
only ``sha256(secret)`` is kept, in SQLite beside the log or in the cluster's
PostgreSQL schema), roles and identities.

A secret is compared with ``hmac.compare_digest`` after looking its record up by
id. :mod:`.auth` classifies requests and checks them against these identities.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("hivehub.auth")

ROLES = ("viewer", "operator", "admin", "agent")
RANK = {"viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Identity:
    token_id: str
    role: str
    agent_id: str | None = None

    def __str__(self) -> str:
        return f"{self.role}:{self.token_id}"


ANONYMOUS = Identity("anonymous", "admin")  # auth off: local use, everything allowed


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """Returns (token, id, secret)."""
    tid = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return f"hv_{tid}_{secret}", tid, secret


AUTH_MODES = ("auto", "on", "off")


class TokenStore:
    """Hashed tokens in a ``tokens`` table beside the event log (SQLite), plus an
    optional admin token from the environment.

    The table is held in memory: a request never reads SQLite, whether its token
    is known or not. ``watch()`` keeps the copy current off the event loop: it
    reads the one-row ``token_meta`` version (bumped by triggers on every change
    to ``tokens``, whoever writes it) every ``poll_seconds`` and re-reads the table
    only when the version moved. A cluster reuses the same shape: each replica
    watches the shared table and closes its own connections (``on_revoked``).

    On PostgreSQL (a cluster) the same two tables live in the cluster's schema
    (:class:`PgTokenTable`); ``create``/``revoke`` bump the version in the same
    transaction, and every replica's ``watch`` polls it on one connection of its
    own, so a revocation reaches every replica within ``poll_seconds``.

    Auth mode (``--auth``): ``off`` lets everyone in (logged loudly); ``on``
    refuses anonymous requests from the start; ``auto`` turns on as soon as a
    token or an admin token exists and then stays on, persisted as
    ``token_meta.auth_on``: revoking every token does not open the hub again.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, agent_id TEXT,
        note TEXT, created_at REAL NOT NULL, revoked_at REAL);
    CREATE TABLE IF NOT EXISTS token_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, auth_on INTEGER NOT NULL);
    INSERT OR IGNORE INTO token_meta VALUES (1, 0, EXISTS (SELECT 1 FROM tokens));
    CREATE TRIGGER IF NOT EXISTS tokens_inserted AFTER INSERT ON tokens
        BEGIN UPDATE token_meta SET version = version + 1, auth_on = 1; END;
    CREATE TRIGGER IF NOT EXISTS tokens_updated AFTER UPDATE ON tokens
        BEGIN UPDATE token_meta SET version = version + 1; END;
    CREATE TRIGGER IF NOT EXISTS tokens_deleted AFTER DELETE ON tokens
        BEGIN UPDATE token_meta SET version = version + 1; END;
    """

    def __init__(
        self,
        db_path: str | None,
        env_admin_token: str | None = None,
        mode: str = "auto",
        poll_seconds: float = 0.5,
    ) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth mode must be one of {AUTH_MODES}")
        self.db_path = (
            db_path
            if db_path and db_path not in ("memory", "memory:", ":memory:") and "://" not in db_path
            else None
        )
        #: the cluster's token table (``--db postgresql://``), or None
        self.pg = PgTokenTable(db_path) if db_path and db_path.startswith(PG_SCHEMES) else None
        self.mode = mode
        self.poll_seconds = poll_seconds
        #: token id -> (hash, role, agent id) of the active tokens
        self._records: dict[str, tuple[str, str, str | None]] = {}
        self._version: int | None = None
        self._version_seen = False
        #: persisted "auth has been on" (mode auto)
        self._auth_on = False
        #: reads of the token table (``hive_token_table_reads_total``): one per change, never per request
        self.reads = 0
        #: called on the event loop with the identities that stopped being valid
        self.on_revoked: list[Any] = []
        self._env_secret = env_admin_token or None
        #: secrets the hub gives its own in-process clients (demo agents); they do not turn auth on
        self._internal: set[str] = set()

    @property
    def has_internal(self) -> bool:
        return bool(self._internal)

    def add_internal(self) -> str:
        secret = secrets.token_urlsafe(32)
        self._internal.add(secret)
        return secret

    def _connect(self) -> sqlite3.Connection:
        assert self.db_path is not None
        d = os.path.dirname(os.path.abspath(self.db_path))
        os.makedirs(d, exist_ok=True)
        c = sqlite3.connect(self.db_path, timeout=5)
        c.executescript(self.SCHEMA)
        return c

    def open(self) -> None:
        """Read the table once and persist that auth is on (``--auth on`` or an admin
        token in mode auto). Call before serving; blocking (a start-up step)."""
        force_on = self.mode == "on" or (self.mode == "auto" and self._env_secret is not None)
        if self.pg is not None:
            self._swap(*blocking(self.pg.open(force_on)))
            return
        if self.db_path is None:
            self._auth_on = self._env_secret is not None or self.mode == "on"
            return
        c = self._connect()
        try:
            if self.mode == "on" or (self.mode == "auto" and self._env_secret is not None):
                with c:
                    c.execute("UPDATE token_meta SET auth_on = 1")
        finally:
            c.close()
        self._poll()

    def _poll(self) -> list[Identity] | None:
        """Blocking (run it in a thread): re-read the table if its version moved.
        Returns the identities no longer valid, or None when nothing changed."""
        assert self.db_path is not None
        c = sqlite3.connect(self.db_path, timeout=5)
        try:
            version, auth_on = c.execute("SELECT version, auth_on FROM token_meta").fetchone()
            if version == self._version:
                return None
            rows = c.execute(
                "SELECT id, hash, role, agent_id FROM tokens WHERE revoked_at IS NULL"
            ).fetchall()
        finally:
            c.close()
        return self._swap(version, bool(auth_on), rows)

    def _swap(
        self, version: int, auth_on: bool, rows: list[tuple[str, str, str, str | None]]
    ) -> list[Identity]:
        """Take a fresh read of the table; returns the identities no longer valid."""
        self.reads += 1
        records = {r[0]: (r[1], r[2], r[3]) for r in rows}
        was_enabled = self.enabled
        gone = [
            Identity(tid, rec[1], rec[2]) for tid, rec in self._records.items() if records.get(tid) != rec
        ]
        # swap whole objects (no partial state is ever visible to the loop)
        self._version_seen = self._version is not None
        self._records, self._version, self._auth_on = records, version, bool(auth_on)
        if not was_enabled and self.enabled and self._version_seen:
            log.warning("authentication is now ON (a token was created); anonymous connections are closed")
            gone.append(ANONYMOUS)
        return gone

    async def watch(self) -> None:
        """Keep the in-memory table current; run as a background task."""
        if self.pg is not None:
            await self._watch_pg(self.pg)
            return
        if self.db_path is None:
            return
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                gone = await asyncio.to_thread(self._poll)
            except (sqlite3.Error, TypeError) as exc:
                log.warning("cannot read tokens: %s (keeping the last known set)", exc)
                continue
            self._tell(gone)

    async def _watch_pg(self, pg: PgTokenTable) -> None:
        # one connection per replica, on the loop (asyncpg): one small read per poll
        conn: Any = None
        errors = pg_errors()
        try:
            while True:
                await asyncio.sleep(self.poll_seconds)
                try:
                    if conn is None:
                        conn = await pg.connect()
                    read = await pg.read(conn, self._version)
                except errors as exc:
                    log.warning("cannot read tokens: %s (keeping the last known set)", exc)
                    if conn is not None:
                        conn.terminate()
                    conn = None
                    continue
                if read is not None:
                    self._tell(self._swap(*read))
        finally:
            if conn is not None:
                conn.terminate()

    def _tell(self, gone: list[Identity] | None) -> None:
        if gone:
            log.info("tokens no longer valid: %s", ", ".join(str(i) for i in gone))
            for cb in self.on_revoked:
                cb(gone)

    @property
    def enabled(self) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        return self._auth_on or bool(self._records) or self._env_secret is not None

    def authenticate(self, token: str) -> Identity | None:
        """In memory only: a known and an unknown token cost the same."""
        for secret in self._internal:
            if hmac.compare_digest(token.encode(), secret.encode()):
                return Identity("internal", "admin")
        if self._env_secret is not None and hmac.compare_digest(token.encode(), self._env_secret.encode()):
            return Identity("env-admin", "admin")
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "hv":
            return None
        _, tid, secret = parts
        rec = self._records.get(tid)
        # hash even for an unknown id, so timing does not tell known ids apart
        digest = hash_secret(secret)
        if rec is None or not hmac.compare_digest(digest, rec[0]):
            return None
        return Identity(tid, rec[1], rec[2])

    def valid(self, ident: Identity) -> bool:
        """Is this identity still current (its token not revoked, auth not switched on
        under an anonymous connection)?"""
        if ident is ANONYMOUS:
            return not self.enabled
        if ident.token_id in ("internal", "env-admin"):
            return True
        rec = self._records.get(ident.token_id)
        return rec is not None and rec[1] == ident.role and rec[2] == ident.agent_id

    # --- administration (the ``hive token`` command) ---

    def create(self, role: str, agent_id: str | None = None, note: str | None = None) -> tuple[str, str]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if role == "agent" and not agent_id:
            raise ValueError("an agent token must be bound to an agent id (--agent ID)")
        token, tid, secret = new_token()
        if self.pg is not None:
            blocking(self.pg.insert(tid, hash_secret(secret), role, agent_id, note, time.time()))
            return token, tid
        c = self._connect()
        with c:
            c.execute(
                "INSERT INTO tokens(id, hash, role, agent_id, note, created_at) VALUES (?,?,?,?,?,?)",
                (tid, hash_secret(secret), role, agent_id, note, time.time()),
            )
        c.close()
        return token, tid

    def revoke(self, token_or_id: str) -> bool:
        tid = token_or_id.split("_")[1] if token_or_id.startswith("hv_") else token_or_id
        if self.pg is not None:
            return blocking(self.pg.revoke(tid, time.time()))
        c = self._connect()
        with c:
            n = c.execute(
                "UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (time.time(), tid)
            ).rowcount
        c.close()
        return n > 0

    def list(self) -> list[dict[str, Any]]:
        if self.pg is not None:
            return blocking(self.pg.all())
        c = self._connect()
        rows = c.execute(
            "SELECT id, role, agent_id, note, created_at, revoked_at FROM tokens ORDER BY created_at"
        ).fetchall()
        c.close()
        return [
            dict(zip(("id", "role", "agent_id", "note", "created_at", "revoked_at"), r, strict=True))
            for r in rows
        ]


# --- PostgreSQL (a cluster: every replica shares the table) ---

PG_SCHEMES = ("postgresql://", "postgres://")


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code (the ``hive token``
    command, or the hub's start-up step): on this thread, or, when this thread
    already runs an event loop, on a thread of its own, waited for."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_errors() -> tuple[type[BaseException], ...]:
    import asyncpg  # only a cluster loads it

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PgTokenTable:
    """The ``tokens`` and ``token_meta`` tables in the cluster's schema (asyncpg).

    The version is bumped in the transaction that changes ``tokens``; creating the
    tables takes the store's migration lock, so replicas and ``hive token`` racing
    at a first start create them once."""

    def __init__(self, url: str) -> None:
        from ..store.postgres import split_url

        self.url, schema = split_url(url)
        self.schema = schema or "public"

    async def connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(self.url, server_settings={"search_path": self.schema})

    async def _ensure(self, c: Any) -> None:
        from ..store.postgres import MIGRATION_LOCK

        async with c.transaction():
            await c.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await c.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            # (a plain SET in a transaction holds for the session once it commits)
            await c.execute(f'SET search_path TO "{self.schema}"')
            await c.execute(
                """CREATE TABLE IF NOT EXISTS tokens (
                    id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, agent_id TEXT,
                    note TEXT, created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)"""
            )
            await c.execute(
                """CREATE TABLE IF NOT EXISTS token_meta (
                    id INT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL, auth_on BOOLEAN NOT NULL)"""
            )
            await c.execute(
                "INSERT INTO token_meta VALUES (1, 0, EXISTS (SELECT 1 FROM tokens)) ON CONFLICT DO NOTHING"
            )

    async def _session(self) -> Any:
        import asyncpg

        # the schema may not exist yet (hive token before the first hive serve)
        c = await asyncpg.connect(self.url)
        try:
            await self._ensure(c)
        except BaseException:
            await c.close()
            raise
        return c

    async def open(self, force_on: bool) -> tuple[int, bool, list[tuple[str, str, str, str | None]]]:
        c = await self._session()
        try:
            if force_on:
                await c.execute("UPDATE token_meta SET auth_on = true WHERE NOT auth_on")
            read = await self.read(c, None)
            assert read is not None
            return read
        finally:
            await c.close()

    async def read(
        self, c: Any, known: int | None
    ) -> tuple[int, bool, list[tuple[str, str, str, str | None]]] | None:
        """The table if its version is not ``known`` (None: unchanged)."""
        async with c.transaction(isolation="repeatable_read", readonly=True):
            meta = await c.fetchrow("SELECT version, auth_on FROM token_meta WHERE id = 1")
            if meta["version"] == known:
                return None
            rows = await c.fetch("SELECT id, hash, role, agent_id FROM tokens WHERE revoked_at IS NULL")
        return int(meta["version"]), bool(meta["auth_on"]), [tuple(r) for r in rows]

    async def insert(
        self, tid: str, digest: str, role: str, agent_id: str | None, note: str | None, at: float
    ) -> None:
        c = await self._session()
        try:
            async with c.transaction():
                await c.execute(
                    "INSERT INTO tokens(id, hash, role, agent_id, note, created_at) VALUES ($1,$2,$3,$4,$5,$6)",
                    tid,
                    digest,
                    role,
                    agent_id,
                    note,
                    at,
                )
                await c.execute("UPDATE token_meta SET version = version + 1, auth_on = true")
        finally:
            await c.close()

    async def revoke(self, tid: str, at: float) -> bool:
        c = await self._session()
        try:
            async with c.transaction():
                n = await c.fetchval(
                    "WITH r AS (UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
                    " RETURNING 1) SELECT count(*) FROM r",
                    at,
                    tid,
                )
                if n:
                    await c.execute("UPDATE token_meta SET version = version + 1")
        finally:
            await c.close()
        return bool(n)

    async def all(self) -> list[dict[str, Any]]:
        c = await self._session()
        try:
            rows = await c.fetch(
                "SELECT id, role, agent_id, note, created_at, revoked_at FROM tokens ORDER BY created_at"
            )
        finally:
            await c.close()
        return [dict(r) for r in rows]
