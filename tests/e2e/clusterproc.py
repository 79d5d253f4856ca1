"""Replicas of one cluster (real ``hive serve`` processes on a fresh PostgreSQL
schema and a real bus), for the cluster tests: started, found, stopped, dropped."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import nats
import nats.js.errors
import redis

from tests.hubproc import Hub, wait_for

PG = "postgresql://127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
NATS = "nats://127.0.0.1:4222"


class Cluster:
    """``n`` replicas on schema ``t_<random>`` and one bus URL (its default stream or
    subject, derived from the cluster id, unless the URL names one)."""

    def __init__(self, tmp_path: Path, n: int, bus: str = REDIS, *extra: str) -> None:
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.db = f"{PG}?schema={self.schema}"
        self.bus = bus
        self.hubs = [
            Hub(self.db, "--bus", bus, "--cluster-secret", "s3cret", *extra, log_dir=tmp_path)
            for _ in range(n)
        ]

    def start(self) -> Cluster:
        for h in self.hubs:
            h.start()
        return self

    def leader(self) -> Hub:
        def find() -> Hub | None:
            leaders = [h for h in self.hubs if status(h)["cluster"]["role"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return wait_for(find, 20, what="exactly one leader")

    def followers(self) -> list[Hub]:
        """The other replicas, once each knows the leader (forwards to it)."""
        lead = self.leader()
        others = [h for h in self.hubs if h is not lead]
        for h in others:
            wait_for(lambda h=h: status(h)["cluster"]["leader_url"] == lead.url, 10, what="the leader known")
        return others

    @property
    def cluster_id(self) -> str:
        cid = status(self.hubs[0])["cluster"]["cluster_id"]
        assert isinstance(cid, str) and cid
        return cid

    def sql(self, query: str, *args: Any) -> Any:
        async def run() -> Any:
            c = await asyncpg.connect(PG, server_settings={"search_path": self.schema})
            try:
                return await c.fetch(query, *args)
            finally:
                await c.close()

        return asyncio.run(run())

    def stop(self) -> None:
        cid = None
        try:
            cid = self.sql("SELECT cluster_id FROM hive_cluster")[0]["cluster_id"]
        except Exception:  # noqa: BLE001 - never started far enough to have one
            pass
        for h in self.hubs:
            h.stop()

        async def drop() -> None:
            c = await asyncpg.connect(PG)
            await c.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            await c.close()

        asyncio.run(drop())
        if cid is None or "stream=" in self.bus:
            return
        if self.bus.startswith("redis://"):
            redis.Redis(host="127.0.0.1", port=6379).delete(f"hive:events:{cid}")
        elif self.bus.startswith("nats://"):

            async def drop_stream() -> None:
                nc = await nats.connect(NATS)
                try:
                    await nc.jetstream().delete_stream(f"HIVE_{cid}")
                except nats.js.errors.NotFoundError:
                    pass
                finally:
                    await nc.close()

            asyncio.run(drop_stream())


def status(h: Hub) -> dict[str, Any]:
    return h.get("/api/hive/status")
