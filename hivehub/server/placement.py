"""Which replica leads which hive: leadership spread over the replicas on purpose.

Every hive of a deployment (the default namespace and each named one) has its
own leader lock (``cluster.py``). Left to a race, the replica that starts first
takes every lock, and one replica leads all. So the replicas register
(:class:`Replicas`) and each hive has a **preferred leader**:

- the hives are numbered: the default namespace 0, the named ones 1.. in sorted
  order (:func:`hive_index`);
- the live replicas are sorted by id; hive ``i`` prefers replica ``i mod R``
  (:func:`preferred_leader`): balanced, and every replica computes the same.

A replica tries a hive's lock at once when it is that hive's preferred leader;
any other replica only once the lock has stayed free for ``grace`` seconds (the
preferred one is late, or its namespace list differs), so a hive never stays
leaderless (:class:`Claim`). A replica settles for ``grace`` seconds after it
registered before it claims anything, so replicas started together see each
other first and spread.

**Live** means registered in the deployment's base schema (``hive_replicas``:
id, url, last heartbeat) with a heartbeat younger than ``ttl`` *and* holding its
presence lock (a session advisory lock PostgreSQL drops the moment the process
dies): a killed replica stops being preferred at once, and the survivor that
now prefers its hives takes them on its next poll (no grace), so failover is as
fast as a plain race.

Running leaders are never moved (no step-down): a replica that joins later
leads nothing until a leader dies; then the hives are spread again over the
replicas live at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..store.postgres import MIGRATION_LOCK, split_url

log = logging.getLogger("hivehub.placement")

TABLE = "hive_replicas"


def hive_index(namespace: str | None, namespaces: Sequence[str]) -> int:
    """The default namespace is hive 0; the named ones follow in sorted order."""
    if namespace is None:
        return 0
    return 1 + sorted(namespaces).index(namespace)


def preferred_leader(live: Sequence[str], index: int) -> str | None:
    """The replica that should lead hive ``index``: the live ids sorted, ``index mod R``."""
    ids = sorted(live)
    return ids[index % len(ids)] if ids else None


@dataclass
class Claim:
    """When a replica tries one hive's lock. Pure: times and observations in, a
    decision out; the election loop calls :meth:`decide` on every poll."""

    replica_id: str
    index: int
    grace: float
    #: since when (loop time) the lock has been seen free, counted once settled
    free_since: float | None = None

    def decide(self, now: float, *, live: Sequence[str], lock_free: bool, settled: bool) -> bool:
        """True: try the lock now."""
        if not lock_free or not settled:
            # a settling replica does not count the grace either: it would otherwise
            # take, the moment it settles, a hive whose preferred leader settles later
            self.free_since = None
            return False
        if self.free_since is None:
            self.free_since = now
        if preferred_leader(live, self.index) == self.replica_id:
            return True
        return now - self.free_since >= self.grace

    def preferred(self, live: Sequence[str]) -> str | None:
        return preferred_leader(live, self.index)


def lock_held_sql(param: int) -> str:
    """SQL true while some session of this database holds advisory lock ``$param``
    (a ``pg_try_advisory_lock(bigint)`` key below 2**32: classid 0, objid the key)."""
    return f"""EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = 0 AND l.objid = ${param}::bigint::oid AND l.objsubid = 1)"""


class Replicas:
    """This process's registration in the deployment's replica table, shared by
    the clusters of all its namespaces (one per process: the default namespace's
    cluster starts and stops it).

    Its connection holds the presence lock and writes the heartbeat every
    ``heartbeat_seconds``; rows not seen for ten minutes are pruned."""

    def __init__(
        self,
        pg_url: str,
        *,
        replica_id: str,
        advertise: str,
        heartbeat_seconds: float = 1.0,
        ttl_seconds: float = 10.0,
        settle_seconds: float = 1.5,
    ) -> None:
        self.url, schema = split_url(pg_url)
        self.schema = schema or "public"
        self.replica_id = replica_id
        self.advertise = advertise.rstrip("/")
        self.heartbeat_seconds = heartbeat_seconds
        self.ttl_seconds = ttl_seconds
        self.settle_seconds = settle_seconds
        self.presence_key = zlib.crc32(f"hivehub-replica:{self.schema}:{replica_id}".encode())
        #: loop time of the first registration with the presence lock held (None: not yet)
        self.registered_at: float | None = None
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        #: this connection holds the presence lock
        self._present = False
        self._started_at: float | None = None

    @property
    def table(self) -> str:
        return f'"{self.schema}".{TABLE}'

    def live_sql(self, ttl_param: int) -> str:
        """The query of the live replicas (``replica_id, url``), ``$ttl_param`` the ttl."""
        return f"""SELECT r.replica_id, r.url FROM {self.table} r
            WHERE r.last_seen > now() - make_interval(secs => ${ttl_param})
            AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.classid = 0 AND l.objid = r.lock_key::oid AND l.objsubid = 1)"""

    def settled(self, now: float) -> bool:
        """``settle_seconds`` after the registration or, while it has not succeeded
        (the table cannot be written, the id is live elsewhere), after the start: an
        unregistered replica is nobody's preferred leader, but still takes a hive
        whose lock stayed free for the grace, so no hive is left without a leader."""
        since = self.registered_at if self.registered_at is not None else self._started_at
        return since is not None and now - since >= self.settle_seconds

    async def start(self) -> None:
        self._started_at = asyncio.get_running_loop().time()
        try:
            await self._register()
        except Exception as exc:  # the loop retries
            log.warning("replica registration: %s", exc)
            await self._drop()
        self._task = asyncio.create_task(self._run(), name="hive-replica-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._present = False
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                pass

    async def _register(self) -> None:
        import asyncpg

        conn = self._conn = await asyncpg.connect(self.url)
        async with conn.transaction():
            # the store's migration lock: replicas starting together create one table
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.table} (
                    replica_id TEXT PRIMARY KEY,
                    url TEXT NOT NULL,
                    lock_key BIGINT NOT NULL,
                    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    last_seen TIMESTAMPTZ NOT NULL DEFAULT now())"""
            )
        await self._beat()

    async def _beat(self) -> None:
        conn = self._conn
        if not self._present:
            # (taken once per session: advisory locks stack, a second take would count twice)
            self._present = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.presence_key))
        if not self._present:
            if not self._warned:
                log.error(
                    "replica id %r is live in another process: this one is not preferred for any hive"
                    " (give each replica its own --replica-id)",
                    self.replica_id,
                )
                self._warned = True
            return
        await conn.execute(
            f"""INSERT INTO {self.table}(replica_id, url, lock_key) VALUES ($1, $2, $3)
                ON CONFLICT (replica_id) DO UPDATE SET url = $2, lock_key = $3, last_seen = now()""",
            self.replica_id,
            self.advertise,
            self.presence_key,
        )
        if self.registered_at is None:
            self.registered_at = asyncio.get_running_loop().time()
            log.info("registered as replica %s", self.replica_id)

    async def _run(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                if self._conn is None:
                    await self._register()
                else:
                    await self._beat()
                n += 1
                if n % 60 == 0:
                    await self._conn.execute(
                        f"DELETE FROM {self.table} WHERE last_seen < now() - interval '10 minutes'"
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("replica heartbeat: %s", exc)
                await self._drop()
