"""Namespaces on a cluster (real PostgreSQL and Redis, two real replicas): each
namespace has its own schema, cluster id and leader election, and a follower of a
namespace forwards its writes to that namespace's leader, at ``/ns/NAME``."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import redis

from tests.e2e.clusterproc import PG, REDIS, Cluster, status
from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers"


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


# ---------------------------------------------------------------- spread leadership


def _start_together(c: Cluster) -> None:
    """Every replica started at once (as a deployment's pods are), not one by one."""
    errors: list[BaseException] = []

    def start(h: Hub) -> None:
        try:
            h.start()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(h,)) for h in c.hubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def _leader_of(ns: str, hubs: list[Hub]) -> Hub:
    def find() -> Hub | None:
        live = [h for h in hubs if h.proc is not None and h.proc.poll() is None]
        leaders = [h for h in live if h.get(f"/ns/{ns}/api/hive/status")["cluster"]["role"] == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    found: Hub = wait_for(find, 20, what=f"exactly one leader of namespace {ns}")
    return found


def _events(h: Hub, ns: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = h.get(f"/ns/{ns}/api/events?since={since}&limit=10000")
        out += page["events"]
        if page["next_since"] == since:
            return out
        since = page["next_since"]


class Submitter(threading.Thread):
    """Tasks into one namespace through every replica in turn; ``accepted`` holds the
    ids answered 201 (a refused or cut-off request is not counted, and retried)."""

    def __init__(self, ns: str, hubs: list[Hub]) -> None:
        super().__init__(daemon=True)
        self.ns, self.hubs = ns, hubs
        self.accepted: list[str] = []
        self.stop_flag = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            h = self.hubs[i % len(self.hubs)]
            i += 1
            if h.proc is None or h.proc.poll() is not None:
                continue
            try:
                code, body = h.request(
                    "POST",
                    f"/ns/{self.ns}/api/tasks",
                    {"type": "x", "required_capabilities": [{"name": "x"}]},
                )
            except OSError:
                continue
            if code == 201:
                self.accepted.append(body["id"])
            elif code != 503:
                self.error = AssertionError((code, body))
                return


def _completed_once(h: Hub, ns: str, accepted: list[str]) -> list[int]:
    """Every accepted task of ``ns`` ended once, completed; returns the sequence."""

    def ended(tid: str) -> bool:
        return h.get(f"/ns/{ns}/api/tasks/{tid}")["status"] in ("completed", "failed", "cancelled")

    for tid in accepted:
        wait_for(lambda tid=tid: ended(tid), 60, what=f"task {tid} of {ns} to end")
    events = _events(h, ns)
    seqs = [e["sequence"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"namespace {ns}: the sequence has a gap or a repeat"
    terminal: dict[str, int] = {}
    for e in events:
        d = e["data"]
        if e["type"] in ("task_completed", "task_cancelled") or (
            e["type"] == "task_failed" and not d["retry_scheduled"]
        ):
            terminal[d["task_id"]] = terminal.get(d["task_id"], 0) + 1
    assert all(n == 1 for n in terminal.values()), f"namespace {ns}: a task ended twice"
    assert all(terminal.get(t) == 1 for t in accepted), f"namespace {ns}: an accepted task never ended"
    assert all(h.get(f"/ns/{ns}/api/tasks/{t}")["status"] == "completed" for t in accepted)
    return seqs


def test_namespaces_spread_over_the_replicas_and_fail_over_alone(tmp_path: Path) -> None:
    """Two replicas, namespaces a and b: at start they are led by different replicas;
    under load the leader of a is killed (-9): b's leader keeps leading (its tasks keep
    completing), a moves to the survivor, and no task of either is lost or run twice."""
    from tests.e2e.agentproc import AgentProc

    c = Cluster(
        tmp_path,
        2,
        REDIS,
        *("--namespace", "a", "--namespace", "b"),
        *("--heartbeat-timeout", "4", "--retry-base", "0.05", "--retry-cap", "0.2"),
    )
    procs: list[AgentProc] = []
    subs: list[Submitter] = []
    try:
        _start_together(c)
        lead_a, lead_b = _leader_of("a", c.hubs), _leader_of("b", c.hubs)
        assert lead_a is not lead_b, "both namespaces are led by one replica"
        for h in c.hubs:  # every replica agrees on who should lead what, and it does
            for ns, lead in (("a", lead_a), ("b", lead_b)):
                wait_for(
                    lambda h=h, ns=ns: len(h.get(f"/ns/{ns}/api/hive/status")["cluster"]["replicas"]) == 2,
                    10,
                    what="both replicas live",
                )
                cl = h.get(f"/ns/{ns}/api/hive/status")["cluster"]
                assert cl["preferred_leader_id"] == status(lead)["cluster"]["replica_id"]
                wait_for(
                    lambda h=h, ns=ns, lead=lead: h.get(f"/ns/{ns}/api/hive/status")["cluster"]["leader_url"]
                    == f"{lead.url}/ns/{ns}",
                    10,
                    what=f"{ns}'s leader known",
                )
        b_leader_id = status(lead_b)["cluster"]["replica_id"]
        b_row = _leader_row(f"{c.schema}_ns_b")
        assert b_row[0] == b_leader_id
        survivor = lead_b
        # two real agents per namespace, each first on a different replica; they move on
        for ns in ("a", "b"):
            for i, first in enumerate(c.hubs):
                order = [first] + [h for h in c.hubs if h is not first]
                urls = ",".join(f"{h.ws_url}/ns/{ns}" for h in order)
                procs.append(
                    AgentProc(urls, f"{ns}{i}", ["x:0.9"], f"{H}:echo", log_dir=tmp_path, max_concurrent=2)
                )
        for ns in ("a", "b"):
            wait_for(
                lambda ns=ns: sum(
                    1
                    for a in survivor.get(f"/ns/{ns}/api/agents")["agents"]
                    if a["status"] in ("idle", "active")
                )
                == 2,
                30,
                what=f"2 agents online in {ns}",
            )
        subs = [Submitter(ns, c.hubs) for ns in ("a", "b")]
        for s in subs:
            s.start()
        sub_a, sub_b = subs
        wait_for(lambda: len(sub_a.accepted) >= 40 and len(sub_b.accepted) >= 40, 30, what="work in a and b")
        t_kill = time.monotonic()
        lead_a.kill()
        new_a = _leader_of("a", [survivor])
        failover_s = time.monotonic() - t_kill
        # b's leader never changed: the same process, leading all along
        st = survivor.get("/ns/b/api/hive/status")["cluster"]
        assert st["role"] == "leader" and st["leader_id"] == b_leader_id
        na, nb = len(sub_a.accepted), len(sub_b.accepted)
        wait_for(
            lambda: len(sub_a.accepted) >= na + 40 and len(sub_b.accepted) >= nb + 40,
            30,
            what="work flowing in a and b after the failover",
        )
        for s in subs:
            s.stop_flag.set()
        for s in subs:
            s.join(10)
            assert s.error is None, s.error
        _completed_once(new_a, "a", sub_a.accepted)
        _completed_once(survivor, "b", sub_b.accepted)
        st = survivor.get("/ns/b/api/hive/status")["cluster"]
        assert st["role"] == "leader" and st["leader_id"] == b_leader_id
        # and b was not elected again meanwhile: its leader row is the one of its start
        assert _leader_row(f"{c.schema}_ns_b") == b_row
        print(f"namespace a failed over in {failover_s:.2f}s; b kept its leader {b_leader_id}")
        assert failover_s < 10
    finally:
        for s in subs:
            s.stop_flag.set()
        for p in procs:
            p.stop()
        schemas = [f"{c.schema}_ns_{ns}" for ns in ("a", "b")]
        cids = []
        for sch in schemas:
            try:
                cids.append(_cid(sch))
            except Exception:  # noqa: BLE001 - never started far enough to have one
                pass
        c.stop()
        asyncio.run(_drop(schemas))
        for cid in cids:
            redis.Redis(host="127.0.0.1", port=6379).delete(f"hive:events:{cid}")


def _leader_row(schema: str) -> tuple[str, Any]:
    async def run() -> tuple[str, Any]:
        conn = await asyncpg.connect(PG, server_settings={"search_path": schema})
        try:
            row = await conn.fetchrow("SELECT replica_id, since FROM cluster_leader WHERE id = 1")
            return row["replica_id"], row["since"]
        finally:
            await conn.close()

    return asyncio.run(run())


def _cid(schema: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(PG, server_settings={"search_path": schema})
        try:
            return await conn.fetchval("SELECT cluster_id FROM hive_cluster")
        finally:
            await conn.close()

    return asyncio.run(run())


async def _drop(schemas: list[str]) -> None:
    conn = await asyncpg.connect(PG)
    try:
        for s in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    finally:
        await conn.close()
