"""Namespaces on a cluster (real PostgreSQL and Redis, two real replicas): each
namespace has its own schema, cluster id and leader election, and a follower of a
namespace forwards its writes to that namespace's leader, at ``/ns/NAME``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import redis

from tests.e2e.clusterproc import PG, REDIS, Cluster, status
from tests.hubproc import Hub, wait_for


def _ns_cluster(h: Hub) -> dict[str, Any]:
    out: dict[str, Any] = h.get("/ns/a/api/hive/status")["cluster"]
    return out


def test_a_namespace_elects_its_own_leader_and_forwards_to_it(tmp_path: Path) -> None:
    c = Cluster(tmp_path, 2, REDIS, "--namespace", "a")
    schema = f"{c.schema}_ns_a"
    try:
        c.start()
        c.followers()  # the default namespace has its leader, known to the other replica

        def leader_of_a() -> Hub | None:
            leaders = [h for h in c.hubs if _ns_cluster(h)["role"] == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        lead = wait_for(leader_of_a, 20, what="exactly one leader of namespace a")
        follower = next(h for h in c.hubs if h is not lead)
        wait_for(
            lambda: _ns_cluster(follower)["leader_url"] == f"{lead.url}/ns/a", 10, what="a's leader known"
        )
        assert _ns_cluster(lead)["cluster_id"] != status(lead)["cluster"]["cluster_id"]
        # a write through a's follower is run by a's leader and seen by both, in a only
        t = follower.post("/ns/a/api/tasks", {"type": "forwarded"}, expect=201)
        for h in c.hubs:
            wait_for(
                lambda h=h: [x["id"] for x in h.get("/ns/a/api/tasks")["tasks"]] == [t["id"]],
                10,
                what="the task in namespace a on every replica",
            )
            assert h.get("/api/tasks")["tasks"] == []
    finally:
        cid = None
        try:

            async def ns_cid() -> Any:
                conn = await asyncpg.connect(PG, server_settings={"search_path": schema})
                try:
                    return await conn.fetchval("SELECT cluster_id FROM hive_cluster")
                finally:
                    await conn.close()

            cid = asyncio.run(ns_cid())
        except Exception:  # noqa: BLE001 - never started far enough to have one
            pass
        c.stop()

        async def drop() -> None:
            conn = await asyncpg.connect(PG)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()

        asyncio.run(drop())
        if cid:
            redis.Redis(host="127.0.0.1", port=6379).delete(f"hive:events:{cid}")
