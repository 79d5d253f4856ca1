"""Two clusters on one Redis (or one NATS) stay apart: each binds its bus stream
to its own log (a cluster id created in its schema), and a follower refuses,
never folds, an entry of another cluster (issue 17)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
import redis

from tests.e2e.clusterproc import NATS, REDIS, Cluster, status
from tests.hubproc import ROOT, Hub, wait_for


@pytest.fixture(params=["redis", "nats"])
def two_clusters(request, tmp_path: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """A: one replica; B: a leader and a follower; both on one bus server, default streams."""
    url = REDIS if request.param == "redis" else NATS
    a, b = Cluster(tmp_path, 1, url), Cluster(tmp_path, 2, url)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def batch(h: Hub, n: int, typ: str) -> list[str]:
    code, body = h.request("POST", "/api/tasks/batch", {"tasks": [{"type": typ} for _ in range(n)]})
    assert code == 201, (code, body)
    return [t["id"] for t in body["tasks"]]


def entry_clusters(c: Cluster) -> list[str]:
    """The cluster id on every entry of ``c``'s default stream."""
    if c.bus.startswith("redis://"):
        r = redis.Redis(host="127.0.0.1", port=6379)
        return [f[b"c"].decode() for _, f in r.xrange(f"hive:events:{c.cluster_id}")]

    async def read() -> list[str]:
        nc = await nats.connect(NATS)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(f"HIVE_{c.cluster_id}")).state.last_seq
            return [
                (await js.get_msg(f"HIVE_{c.cluster_id}", i)).headers["Hive-Cluster"]
                for i in range(1, last + 1)
            ]
        finally:
            await nc.close()

    return asyncio.run(read())


def inject(c: Cluster, seq: int, typ: str, body: bytes, cluster_id: str) -> None:
    """Put an entry on ``c``'s default stream as another deployment's leader would."""
    if c.bus.startswith("redis://"):
        redis.Redis(host="127.0.0.1", port=6379).xadd(
            f"hive:events:{c.cluster_id}", {"t": typ, "b": body, "c": cluster_id}, id=f"{seq}-1"
        )
        return

    async def put() -> None:
        nc = await nats.connect(NATS)
        try:
            headers = {"Hive-Seq": str(seq), "Hive-Type": typ, "Hive-Cluster": cluster_id}
            await nc.jetstream().publish(f"hive.events.{c.cluster_id}", body, headers=headers)
        finally:
            await nc.close()

    asyncio.run(put())


def task_types(h: Hub) -> set[str]:
    return {t["type"] for t in h.get("/api/tasks?limit=1000")["tasks"]}


def test_two_clusters_on_one_bus_stay_separate_and_refuse_each_other(
    two_clusters: tuple[Cluster, Cluster],
) -> None:
    a, b = two_clusters
    assert a.cluster_id != b.cluster_id
    a_lead, b_lead = a.leader(), b.leader()
    (b_follower,) = b.followers()
    a_ids = batch(a_lead, 50, "of-a")  # A's log runs ahead of B's
    # a batch answered by B's follower lists every task it created (issue 17: KeyError, 500)
    b_ids = batch(b_follower, 20, "of-b")
    assert len(b_ids) == 20
    b_seq = status(b_lead)["published_sequence"]
    assert status(a_lead)["published_sequence"] > b_seq
    wait_for(lambda: status(b_follower)["published_sequence"] >= b_seq, 10, what="B's follower in step")
    assert task_types(b_follower) == task_types(b_lead) == {"of-b"}
    assert task_types(a_lead) == {"of-a"}
    seqs = [e["sequence"] for e in b_follower.events()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < status(a_lead)["published_sequence"]
    # each cluster's stream holds only its own entries, every one tagged with its id
    for c, ids in ((a, a_ids), (b, b_ids)):
        tags = entry_clusters(c)
        assert len(tags) >= len(ids) and set(tags) == {c.cluster_id}
    st = status(b_follower)["cluster"]["bus"]
    assert st["foreign_entries"] == 0 and st["error"] is None

    # A foreign entry injected on B's stream is refused, not folded.
    seq = status(b_lead)["published_sequence"]
    # a real entry of cluster A (its first event: a task_created of type of-a), put on
    # B's stream ahead of B's own, as a second deployment's leader would write it
    row = a.sql("SELECT type, body FROM events WHERE type = 'task_created' ORDER BY sequence LIMIT 1")[0]
    inject(b, seq + 1000, row["type"], bytes(row["body"]), a.cluster_id)
    wait_for(
        lambda: status(b_follower)["cluster"]["bus"]["foreign_entries"] == 1, 10, what="the entry refused"
    )
    bus = status(b_follower)["cluster"]["bus"]
    assert a.cluster_id in bus["error"] and b.cluster_id in bus["error"]
    assert "stopped following the bus" in b_follower.logs()
    # not folded: the follower's state is still B's log alone ...
    assert status(b_follower)["published_sequence"] < seq + 1000
    assert task_types(b_follower) == {"of-b"}
    # ... it says so on /health (a load balancer takes it out) and in /metrics ...
    code, health = b_follower.request("GET", "/health")
    assert code == 503 and "hive-follow-bus" in health["modules"]["background_processes"]["reason"]
    with urllib.request.urlopen(b_follower.url + "/metrics", timeout=5) as m:
        assert "hive_bus_foreign_entries_total 1.0" in m.read().decode()
    # ... and it still follows its own log, from the store
    batch(b_lead, 2, "of-b-later")
    seq2 = status(b_lead)["published_sequence"]
    # (>=: the leader's watch may log an alert meanwhile)
    wait_for(lambda: status(b_follower)["published_sequence"] >= seq2, 10, what="follower on the store")
    assert task_types(b_follower) == {"of-b", "of-b-later"}


@pytest.mark.parametrize("bus", [REDIS, NATS])
def test_a_network_bus_needs_a_postgresql_log(bus: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hivehub", "serve", "--db", str(tmp_path / "h.db"), "--bus", bus, "--no-demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--db postgresql://" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
