"""Several hub replicas on one PostgreSQL log and one bus.

- **One scheduler.** Replicas take ``pg_try_advisory_lock`` on a dedicated
  connection; the holder leads: it runs the core, appends to the log, publishes
  to the bus, runs the ticker and the self-monitoring. PostgreSQL drops the lock
  the moment the leader's session ends (a killed process closes its socket), and
  another replica takes over on its next poll (every ``poll_seconds``). Which
  replica tries when is ``placement.py``'s: the hive's preferred leader at once,
  any other after the lock stayed free for a grace period, so the hives of one
  deployment (one lock each) spread over the replicas.
- **Followers** fold the log from the bus (gaps filled from the store) and hand
  the events to their own /ws subscribers and agent connections, so every
  replica streams the same gapless sequence. Commands they receive (REST, /ws
  control, agent reports) are forwarded to the leader over HTTP
  (``POST /internal/execute``, authenticated with the shared cluster secret);
  the follower answers once it has folded the result (read your own writes).
- **One bus per log.** At first start the cluster creates its id (a random
  ``hive_cluster.cluster_id`` row in its schema; a dropped and recreated schema
  is a new cluster) and binds the bus to it before opening it: the default
  stream or subject is derived from the id and every entry is checked against
  it (``bus/base.py``), so two deployments on one Redis or NATS stay apart.
- **Fencing.** The events table's primary key refuses a second writer's
  sequence, and a leader that loses its lock connection exits at once (its
  supervisor restarts it as a follower): it can no longer prove it leads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

from ..core import commands as C
from ..core import events as ev
from ..core.errors import HiveError, StoreUnavailable
from ..protocol import codec
from ..protocol.errors import NotLeader, parse_error, rebuild
from ..store.postgres import MIGRATION_LOCK, split_url
from .placement import Claim, Replicas, lock_held_sql
from .service import HubService

log = logging.getLogger("hivehub.cluster")


class Cluster:
    def __init__(
        self,
        service: HubService,
        pg_url: str,
        *,
        replica_id: str,
        advertise: str,
        secret: str,
        poll_seconds: float = 0.5,
        on_lead: list[Callable[[], None]] | None = None,
        replicas: Replicas | None = None,
        own_replicas: bool = False,
        hive_index: int = 0,
        grace: float = 1.5,
    ) -> None:
        self.service = service
        #: called when this replica becomes the leader
        self.on_lead = on_lead if on_lead is not None else []
        self.url, self.schema = split_url(pg_url)
        self.replica_id = replica_id
        self.advertise = advertise.rstrip("/")
        self.secret = secret
        self.poll_seconds = poll_seconds
        self.lock_key = zlib.crc32(f"hivehub-leader:{self.schema or 'public'}".encode())
        self.leader_url: str | None = None
        self.leader_id: str | None = None
        self.is_leader = False
        #: this log's id (``bind_bus``)
        self.cluster_id: str | None = None
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        #: the deployment's replica registry (None: no placement, every poll tries the lock)
        self.replicas = replicas
        #: this cluster starts and stops ``replicas`` (the default namespace's does)
        self.own_replicas = own_replicas
        self.claim = Claim(replica_id, hive_index, grace)
        #: the live replicas (id, url), sorted by id, as last seen
        self.live: list[tuple[str, str]] = []
        self._outq: list[tuple[C.Command, asyncio.Future[list[ev.Event]]]] = []
        self._flushing = False
        self.service.forward = self.forward

    async def bind_bus(self) -> str:
        """Read (or, at the first start, create) this cluster's id and bind the bus
        to it; call before the service opens the bus. Returns the id."""
        import asyncpg

        schema = self.schema or "public"
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                # the store's migration lock: replicas starting together create one id
                await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                await conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS "{schema}".hive_cluster (
                        id INT PRIMARY KEY CHECK (id = 1),
                        cluster_id TEXT NOT NULL,
                        created_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
                )
                await conn.execute(
                    f'INSERT INTO "{schema}".hive_cluster(id, cluster_id) VALUES (1, $1) ON CONFLICT DO NOTHING',
                    uuid.uuid4().hex,
                )
                cid = str(await conn.fetchval(f'SELECT cluster_id FROM "{schema}".hive_cluster WHERE id = 1'))
        finally:
            await conn.close()
        self.cluster_id = cid
        if self.service.bus is not None:
            self.service.bus.bind(cid)
        log.info("cluster %s (schema %s)", cid, schema)
        return cid

    async def start(self) -> None:
        if self.replicas is not None and self.own_replicas:
            await self.replicas.start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self._started = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._elect(), name="hive-cluster-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._http is not None:
            await self._http.close()
        if self.replicas is not None and self.own_replicas:
            await self.replicas.stop()

    @property
    def preferred_leader_id(self) -> str | None:
        return self.claim.preferred([rid for rid, _ in self.live])

    async def _connect(self) -> Any:
        import asyncpg

        settings = {"search_path": self.schema} if self.schema else None
        return await asyncpg.connect(self.url, server_settings=settings)

    async def _elect(self) -> None:
        conn = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                if conn is None:
                    conn = await self._connect()
                if await self._should_try(conn, loop.time()):
                    got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.lock_key)
                    if got:
                        log.info("won the scheduler lock")
                        await self._lead(conn)
                        return  # _lead only returns by exiting the process
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("leader election: %s", exc)
                if conn is not None:
                    try:
                        await conn.close()
                    except Exception:
                        pass
                conn = None
            await asyncio.sleep(self.poll_seconds)

    async def _should_try(self, conn: Any, now: float) -> bool:
        """Look at the lock, the leader row and the live replicas; True: try the lock."""
        row = await conn.fetchrow(
            f"""SELECT {lock_held_sql(1)} AS held, l.replica_id, l.url
                FROM (SELECT 1) AS one LEFT JOIN cluster_leader l ON l.id = 1""",
            self.lock_key,
        )
        if row["replica_id"] is not None:
            self.leader_id, self.leader_url = row["replica_id"], row["url"]
        if self.replicas is None:
            return True
        await self._observe_live(conn)
        return self.claim.decide(
            now,
            live=[rid for rid, _ in self.live],
            lock_free=not row["held"],
            settled=self.replicas.settled(now),
        )

    async def _observe_live(self, conn: Any) -> None:
        if self.replicas is None:
            return
        rows = await conn.fetch(self.replicas.live_sql(1), self.replicas.ttl_seconds)
        self.live = sorted((r["replica_id"], r["url"]) for r in rows)

    async def _lead(self, conn: Any) -> None:
        loop = asyncio.get_running_loop()
        # A replica that wins right at its own start finds nothing connected (a
        # cluster start); one that wins later takes over from a failed leader.
        settle = self.replicas.settle_seconds if self.replicas is not None else 0.0
        failover = (
            self.service.published_seq > 0 and loop.time() - self._started > settle + 3 * self.poll_seconds
        )
        await self.service.promote(failover=failover)
        await conn.execute(
            """INSERT INTO cluster_leader(id, replica_id, url, since) VALUES (1, $1, $2, now())
               ON CONFLICT (id) DO UPDATE SET replica_id = $1, url = $2, since = now()""",
            self.replica_id,
            self.advertise,
        )
        self.is_leader = True
        self.leader_id, self.leader_url = self.replica_id, self.advertise
        for hook in self.on_lead:
            hook()
        while True:
            await asyncio.sleep(1.0)
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.critical(
                    "lost the scheduler lock connection (%s): exiting so that a single leader remains", exc
                )
                os._exit(3)
            try:  # for the status only: a failure here says nothing about the lock
                await asyncio.wait_for(self._observe_live(conn), 5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading the live replicas: %s", exc)

    # ------------------------------------------------------------ forwarding

    async def forward(self, cmd: C.Command) -> list[ev.Event]:
        """Run a command on the leader; raise the leader's error as the same class.

        Commands forwarded in one turn of the event loop travel together in one
        request (``/internal/execute`` takes a list), which the leader runs in order
        and makes durable with one commit."""
        if self.is_leader:
            raise NotLeader("internal error: a leader forwards nothing")
        fut: asyncio.Future[list[ev.Event]] = asyncio.get_running_loop().create_future()
        self._outq.append((cmd, fut))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._flush()))
        return await fut

    async def _flush(self) -> None:
        batch, self._outq = self._outq, []
        self._flushing = False
        if not batch:
            return
        try:
            results = await self._send([c for c, _ in batch])
        except HiveError as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), res in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(res, HiveError):
                fut.set_exception(res)
            else:
                fut.set_result(res)

    async def _send(self, cmds: list[C.Command]) -> list[list[ev.Event] | HiveError]:
        assert self._http is not None
        body = codec.encode_forwarded(cmds)
        for attempt in range(2):
            url = self.leader_url
            if url is None:
                raise StoreUnavailable("no leader elected yet; try again", retry=True)
            try:
                async with self._http.post(
                    f"{url}/internal/execute",
                    data=body,
                    headers={"X-Hive-Cluster-Secret": self.secret, "Content-Type": "application/json"},
                ) as r:
                    raw = await r.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise StoreUnavailable(
                    f"the leader replica is unreachable ({exc}); try again", retry=True
                ) from exc
            if r.status == 200:
                return codec.decode_results(raw)
            payload = msgspec.json.decode(raw)
            err = payload.get("error", {}) if isinstance(payload, dict) else {}
            if err.get("code") == "not_leader" and attempt == 0:
                await asyncio.sleep(self.poll_seconds)  # the leader moved: look again
                continue
            raise self._error(err)
        raise StoreUnavailable("no leader could take the commands; try again", retry=True)

    @staticmethod
    def _error(err: Any) -> HiveError:
        code, message, details = parse_error(err) or ("hive_error", "error", {})
        return rebuild(code, message, details)
