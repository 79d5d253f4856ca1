"""Reads answer at the committed sequence: never state whose commit then fails.

The hub handles a command at once (the core moves ahead of the log) and commits
it a moment later. A ``/ws?snapshot=1`` or a REST read made in between must
not show the uncommitted task: if the commit then fails, that task never
existed (the log is the truth), yet the reader has seen it.

In process, against the memory store: a store whose append of the batch that
creates task ``doomed`` waits until the test has read, then fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hivehub.core.errors import StoreUnavailable
from hivehub.server.app import create_app
from hivehub.server.config import ServerConfig
from hivehub.store.base import NewEvent, StoredEvent
from hivehub.store.memory import MemoryEventStore


class FailOnceStore(MemoryEventStore):
    """Appends like the memory store, except the first batch naming task ``doomed``:
    that append waits for ``release``, then fails (a disk that gave up mid-commit)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True

    async def append(self, events: Sequence[StoredEvent | NewEvent]) -> None:
        if self.armed and any(b'"doomed"' in e.body for e in events):
            self.armed = False
            self.pending.set()
            await self.release.wait()
            raise StoreUnavailable("disk gave up")
        await super().append(events)


def config() -> ServerConfig:
    return ServerConfig(
        db="memory",
        auth="off",
        demo_agents=False,
        demo_workload=False,
        status_interval=3600.0,
        resource_interval=3600.0,
    )


@pytest.fixture
async def hub() -> AsyncIterator[tuple[TestClient[Any, Any], FailOnceStore]]:
    store = FailOnceStore()
    async with TestClient(TestServer(create_app(config(), store=store))) as client:
        try:
            yield client, store
        finally:
            store.release.set()  # a failed assertion must not leave the commit hanging


async def snapshot(client: TestClient[Any, Any]) -> dict[str, Any]:
    ws = await client.ws_connect("/ws?snapshot=1")
    try:
        msg = await ws.receive_json(timeout=5)
    finally:
        await ws.close()
    assert msg["type"] == "snapshot"
    return msg["data"]  # type: ignore[no-any-return]


def task_ids(snap: dict[str, Any]) -> set[str]:
    return {t["id"] for t in snap["tasks"]}


async def reads_around_a_failed_commit(
    client: TestClient[Any, Any],
    store: FailOnceStore,
    *reads: Awaitable[Any],
    kept: dict[str, Any] | None = None,
) -> tuple[int, list[Any]]:
    """Submit ``kept`` (committed), then ``doomed``; while the commit of ``doomed`` is
    in flight, start ``reads``; fail that commit. Returns the committed head before
    it and what the reads answered."""
    r = await client.post("/api/tasks", json=kept or {"id": "kept", "type": "t"})
    assert r.status == 201
    head = (await snapshot(client))["sequence"]
    post = asyncio.ensure_future(client.post("/api/tasks", json={"id": "doomed", "type": "t"}))
    await asyncio.wait_for(store.pending.wait(), 5)  # handled by the core, its commit in flight
    pending = asyncio.gather(*reads)  # answered whenever the hub is ready to
    await asyncio.sleep(0.05)
    store.release.set()  # the commit fails
    r = await asyncio.wait_for(post, 5)
    assert r.status == 503  # the task was never accepted
    return head, await asyncio.wait_for(pending, 5)


async def test_a_snapshot_during_a_commit_that_fails_does_not_show_its_task(
    hub: tuple[TestClient[Any, Any], FailOnceStore],
) -> None:
    client, store = hub
    head, (during,) = await reads_around_a_failed_commit(client, store, snapshot(client))
    assert "doomed" not in task_ids(during)
    assert "kept" in task_ids(during)
    assert during["sequence"] == head  # the committed head, not the core's
    assert during["status"]["metrics"]["total_tasks"] == 1
    after = await snapshot(client)
    assert "doomed" not in task_ids(after)


async def test_rest_reads_during_a_commit_that_fails_do_not_show_its_task(
    hub: tuple[TestClient[Any, Any], FailOnceStore],
) -> None:
    client, store = hub

    async def get(path: str) -> tuple[int, Any]:
        r = await client.get(path)
        return r.status, await r.json()

    head, (listed, one, status) = await reads_around_a_failed_commit(
        client, store, get("/api/tasks"), get("/api/tasks/doomed"), get("/api/hive/status")
    )
    assert [t["id"] for t in listed[1]["tasks"]] == ["kept"]
    assert one[0] == 404
    assert status[1]["metrics"]["pending_tasks"] == 1
    assert status[1]["sequence"] == head
    assert (await client.get("/api/tasks/doomed")).status == 404


async def test_a_snapshot_during_a_commit_is_followed_by_its_events_once_committed(
    hub: tuple[TestClient[Any, Any], FailOnceStore],
) -> None:
    """The snapshot is at the committed head, so what commits after it arrives live."""
    client, store = hub
    store.armed = False
    ws = await client.ws_connect("/ws?snapshot=1")
    try:
        snap = (await ws.receive_json(timeout=5))["data"]
        r = await client.post("/api/tasks", json={"id": "later", "type": "t"})
        assert r.status == 201
        msg = await ws.receive_json(timeout=5)
        assert msg["type"] == "task_created"
        assert msg["sequence"] == snap["sequence"] + 1
        assert msg["data"]["task"]["id"] == "later"
    finally:
        await ws.close()


async def test_a_pull_claim_during_a_commit_that_fails_gets_no_assignment(
    hub: tuple[TestClient[Any, Any], FailOnceStore],
) -> None:
    """The doomed task is assigned in the same command (and commit) that creates it:
    a claim made meanwhile must not hand the agent work the hub then loses."""
    client, store = hub
    r = await client.post("/api/agents", json={"id": "a1", "name": "puller"})
    assert r.status == 201

    async def claim() -> tuple[int, Any]:
        r = await client.post("/api/agents/a1/claim?wait=0")
        return r.status, (await r.json() if r.status == 200 else None)

    unassignable = {"id": "kept", "type": "t", "required_capabilities": [{"name": "gpu"}]}
    _, ((status, body),) = await reads_around_a_failed_commit(client, store, claim(), kept=unassignable)
    assert status == 204, body
