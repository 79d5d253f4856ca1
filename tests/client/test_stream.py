"""EventStream against a real hub: live events, filters, subscribe, snapshot,
control commands, callbacks, typed events and wait_for_task."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hivehub.client import EventStream, HiveClient, InvalidInput, TaskNotFound
from hivehub.core.events import Event, TaskCreated
from tests.client.conftest import Collector
from tests.hubproc import Hub


async def test_stream_receives_task_created(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c, c.stream(types=["task_created"]) as s:
        await s.wait_connected(10)
        t = await c.submit_task(type=uid("live"), required_capabilities={uid("nobody"): 1})
        ev = await s.next(10)
        assert ev["type"] == "task_created" and ev["data"]["task"]["id"] == t["id"]
        assert set(ev) >= {"type", "data", "timestamp", "message_id", "sequence"}
        assert s.last_sequence == ev["sequence"]
        assert s.connected and s.connects == 1


async def test_filters_and_subscribe(hub: Hub, uid) -> None:
    nobody = {uid("nobody"): 1}
    async with HiveClient(hub.url) as c:
        a = await c.submit_task(type=uid("a"), required_capabilities=nobody, id=uid("task-a"))
        b = await c.submit_task(type=uid("b"), required_capabilities=nobody, id=uid("task-b"))
        s = c.stream(task_id=a["id"])
        col = Collector(s)
        await s.wait_connected(10)
        await c.cancel_task(b["id"])  # not ours
        await c.cancel_task(a["id"])
        await col.until(lambda xs: any(e["type"] == "task_cancelled" for e in xs), what="a cancelled")
        assert {e["data"]["task_id"] for e in col.items} == {a["id"]}
        # mid-stream: follow b instead, only retries
        filters = await s.subscribe(task_id=b["id"], types="task_retried")
        assert filters == {"types": ["task_retried"], "agent_id": None, "task_id": b["id"]}
        assert (s.task_id, s.types) == (b["id"], ["task_retried"])
        await c.retry_task(a["id"])
        await c.retry_task(b["id"])
        await col.until(lambda xs: xs[-1]["type"] == "task_retried", what="b retried")
        assert col.items[-1]["data"]["task_id"] == b["id"]
        assert [e["data"]["task_id"] for e in col.items if e["type"] == "task_retried"] == [b["id"]]
        await col.stop()


async def test_replay_since_zero_is_the_log(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c:
        await c.submit_task(type=uid("r"), required_capabilities={uid("nobody"): 1})
        log = [e async for e in c.iter_events(0)]
        async with c.stream(since=0) as s:
            got = [await s.next(10) for _ in range(len(log))]
        assert [e["sequence"] for e in got] == [e["sequence"] for e in log]
        assert [e["message_id"] for e in got] == [e["message_id"] for e in log]


async def test_snapshot_first(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c:
        t = await c.submit_task(type=uid("snap"), required_capabilities={uid("nobody"): 1})
        async with c.stream(snapshot=True, types="task_created") as s:
            snap = await s.next(10)
            assert snap["type"] == "snapshot"
            assert t["id"] in [x["id"] for x in snap["data"]["tasks"]]
            assert s.last_sequence == snap["data"]["sequence"]
            t2 = await c.submit_task(type=uid("snap"), required_capabilities={uid("nobody"): 1})
            ev = await s.next(10)
            assert ev["data"]["task"]["id"] == t2["id"] and ev["sequence"] > snap["data"]["sequence"]


async def test_control_commands(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c, c.stream(types="task_created") as s:
        pong = await s.request("ping")
        assert pong["type"] == "pong" and pong["message_id"]
        assert await s.ping() >= 0
        created = await s.request(
            "create_task",
            {"type": uid("ws"), "required_capabilities": [{"name": uid("nobody"), "min_proficiency": 1}]},
        )
        assert created["type"] == "create_task_result"
        tid = created["data"]["task"]["id"]
        # the reply and the event are separate messages: the event arrives on the stream
        ev = await s.next(10)
        assert ev["data"]["task"]["id"] == tid
        task = await s.cancel_task(tid, reason="changed my mind")
        assert task["status"] == "cancelled"
        status = await s.get_status()
        assert "metrics" in status
        task2 = await s.create_task(type=uid("ws"), required_capabilities={uid("nobody"): 1})
        assert task2["status"] == "pending"
        with pytest.raises(TaskNotFound) as nf:
            await s.cancel_task("no-such-task")
        assert nf.value.status is None and nf.value.details == {"task_id": "no-such-task"}
        with pytest.raises(InvalidInput) as unknown:
            await s.request("teleport", {})
        assert unknown.value.code == "unknown_message_type"


async def test_on_and_run(hub: Hub, uid) -> None:
    typ = uid("cb")
    seen: dict[str, list[Any]] = {"created": [], "cancelled": [], "all": []}
    async with HiveClient(hub.url) as c:
        s = c.stream(types="task_created,task_cancelled")

        @s.on("task_created")
        def created(ev: dict[str, Any]) -> None:
            seen["created"].append(ev["data"]["task"]["id"])

        async def cancelled(ev: dict[str, Any]) -> None:
            seen["cancelled"].append(ev["data"]["task_id"])
            if len(seen["cancelled"]) == 2:
                await s.close()

        s.on("task_cancelled", cancelled)
        s.on("*", lambda ev: seen["all"].append(ev["type"]))
        runner = asyncio.ensure_future(s.run())
        await s.wait_connected(10)
        ids = []
        for _ in range(2):
            t = await c.submit_task(type=typ, required_capabilities={uid("nobody"): 1})
            ids.append(t["id"])
            await c.cancel_task(t["id"])
        await asyncio.wait_for(runner, 10)  # returns once a handler closed the stream
        assert seen["created"] == ids and seen["cancelled"] == ids
        assert seen["all"] == ["task_created", "task_cancelled"] * 2
        assert s.closed


async def test_typed_events(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c, c.stream(types="task_created", typed=True) as s:
        await s.wait_connected(10)
        t = await c.submit_task(type=uid("typed"), required_capabilities={uid("nobody"): 1})
        ev = await s.next(10)
        assert isinstance(ev, Event) and isinstance(ev.data, TaskCreated)
        assert ev.data.task.id == t["id"] and ev.sequence == s.last_sequence


def pull_agent(hub: Hub, agent_id: str, steps: list[float], result: Any, ready: threading.Event) -> None:
    """A minimal agent over the HTTP pull protocol, in a thread (stdlib HTTP only)."""
    ready.set()
    claim = None
    while claim is None:
        status, claim = hub.request("POST", f"/api/agents/{agent_id}/claim?wait=5", {})
    task_id, attempt = claim["task"]["id"], claim["attempt"]
    hub.post(f"/api/tasks/{task_id}/start", {"agent_id": agent_id, "attempt": attempt}, expect=200)
    for p in steps:
        hub.post(
            f"/api/tasks/{task_id}/progress",
            {"agent_id": agent_id, "attempt": attempt, "progress": p, "current_step": f"at {p}"},
            expect=200,
        )
    hub.post(
        f"/api/tasks/{task_id}/complete",
        {"agent_id": agent_id, "attempt": attempt, "result": result},
        expect=200,
    )


async def test_wait_for_task_follows_events(hub: Hub, uid) -> None:
    cap = uid("wait")
    async with HiveClient(hub.url) as c:
        agent = await c.register_agent(uid("puller"), capabilities={cap: 0.9})
        ready = threading.Event()
        worker = threading.Thread(
            target=pull_agent, args=(hub, agent["id"], [0.25, 0.75], {"answer": 42}, ready), daemon=True
        )
        worker.start()
        since = (await c.status())["published_sequence"]
        t = await c.submit_task(type=cap, required_capabilities={cap: 0.5})
        progress: list[float] = []

        def on_event(ev: dict[str, Any]) -> None:
            if ev["type"] == "task_progress":
                progress.append(ev["data"]["progress"])

        done = await c.wait_for_task(t["id"], timeout=20, on_event=on_event, since=since)
        assert done["status"] == "completed" and done["result"] == {"answer": 42}
        assert progress == [0.25, 0.75]
        worker.join(10)
        # already finished: answered at once from the task itself
        assert (await c.wait_for_task(t["id"], timeout=10))["status"] == "completed"

        # cancellation ends the wait too; a task that never ends times out
        pending = await c.submit_task(type=uid("never"), required_capabilities={uid("nobody"): 1})
        # whether the cancel lands before or after the waiter subscribes, it is seen:
        # the waiter looks the task up after subscribing from a sequence taken first
        waiter = asyncio.ensure_future(c.wait_for_task(pending["id"], timeout=20))
        await c.cancel_task(pending["id"])
        assert (await waiter)["status"] == "cancelled"
        other = await c.submit_task(type=uid("never"), required_capabilities={uid("nobody"): 1})
        with pytest.raises(TimeoutError):
            await c.wait_for_task(other["id"], timeout=0.3)
        with pytest.raises(TaskNotFound):
            await c.wait_for_task("no-such-task", timeout=10)


async def test_bad_filter_is_a_typed_error(hub: Hub) -> None:
    async with HiveClient(hub.url) as c:
        s: EventStream = c.stream(types="task_created,not_an_event")
        with pytest.raises(InvalidInput) as ei:
            await s.next(10)
        assert ei.value.status == 422 and ei.value.details["unknown"] == ["not_an_event"]
        with pytest.raises(InvalidInput):  # and stays failed
            await s.next(1)
        await s.close()


async def test_client_close_closes_its_streams(hub: Hub) -> None:
    c = HiveClient(hub.url)
    s = c.stream()
    await s.wait_connected(10)
    await c.close()
    assert s.closed
    assert [e async for e in s] == []
