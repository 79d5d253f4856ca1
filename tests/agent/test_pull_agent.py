"""The HTTP pull agent against an in-process fake of the pull endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from hivehub.agent import PullAgent, Result, TaskContext

from .fakehub import FakeHttpHub, make_task


def make_pull(hub: FakeHttpHub, **kw: Any) -> PullAgent:
    kw.setdefault("reconnect_base", 0.01)
    kw.setdefault("reconnect_cap", 0.05)
    kw.setdefault("claim_wait", 0.2)
    return PullAgent("Puller", {"data_processing": 0.7}, url=hub.url.replace("http", "ws"), **kw)


async def test_register_claim_and_report(http_hub: FakeHttpHub, running: Any) -> None:
    agent = make_pull(http_hub)

    @agent.handler("data_processing")
    async def process(ctx: TaskContext) -> Result:
        await ctx.progress(0.5, "half")
        return Result({"n": len(ctx.input)}, quality=0.7)

    await running(agent)
    reg = await http_hub.wait("register")
    assert reg["data"]["name"] == "Puller"
    assert reg["data"]["capabilities"][0]["name"] == "data_processing"
    assert agent.agent_id == "pull-1"

    await http_hub.queue.put((make_task("t1", input=[1, 2, 3], attempt=2), 2))
    done = await http_hub.wait("task_completed", task_id="t1")
    assert done["path"] == "/api/tasks/t1/complete"
    assert done["data"] == {
        "task_id": "t1",
        "agent_id": "pull-1",
        "attempt": 2,
        "result": {"n": 3},
        "quality": 0.7,
    }
    started = await http_hub.wait("task_started", task_id="t1")
    assert started["data"] == {"task_id": "t1", "agent_id": "pull-1", "attempt": 2}
    kinds = [m["type"] for m in http_hub.received if m["type"].startswith("task_")]
    assert kinds == ["task_started", "task_progress", "task_completed"]
    await http_hub.wait("heartbeat")  # the hub's heartbeat_interval (0.05s) is used


async def test_conflict_cancels_the_execution(http_hub: FakeHttpHub, running: Any) -> None:
    agent = make_pull(http_hub, agent_id="known-agent")
    aborted = asyncio.Event()

    @agent.handler("data_processing")
    async def long(ctx: TaskContext) -> str:
        await ctx.progress(0.1, "begin")
        try:
            await asyncio.Event().wait()
        finally:
            if ctx.cancelled:
                aborted.set()
        return "never"

    http_hub.errors[("task_progress", "t1")] = (
        409,
        {"error": {"code": "not_task_holder", "message": "task t1 was cancelled", "details": {}}},
    )
    await running(agent)
    await http_hub.queue.put((make_task("t1"), 1))
    await asyncio.wait_for(aborted.wait(), 5)
    # agent_id given: it registers as that agent (the hub updates its spec)
    assert [r["data"]["id"] for r in http_hub.find("register")] == ["known-agent"]
    assert http_hub.find("claim")[0]["data"]["agent_id"] == "known-agent"
    assert not http_hub.find("task_completed")


async def test_stop_releases_running_task(http_hub: FakeHttpHub) -> None:
    agent = make_pull(http_hub)

    @agent.handler("*")
    async def forever(ctx: TaskContext) -> None:
        await asyncio.Event().wait()

    run = asyncio.create_task(agent.run())
    await agent.wait_registered(5)
    await http_hub.queue.put((make_task("t1", type="anything"), 4))
    await http_hub.wait("task_started", task_id="t1")
    await asyncio.wait_for(agent.stop(grace=0), 5)
    await asyncio.wait_for(run, 5)
    released = await http_hub.wait("task_released", task_id="t1")
    assert released["data"] == {
        "task_id": "t1",
        "agent_id": "pull-1",
        "attempt": 4,
        "reason": "agent_shutdown",
    }


async def test_cancellation_is_noticed_by_looking_at_the_task(http_hub: FakeHttpHub, running: Any) -> None:
    agent = make_pull(http_hub)
    aborted = asyncio.Event()
    reasons: list[str | None] = []

    @agent.handler("data_processing")
    async def silent(ctx: TaskContext) -> str:
        try:
            await asyncio.Event().wait()
        finally:
            reasons.append(ctx.cancel_reason)
            aborted.set()
        return "never"

    http_hub.tasks["t1"] = {"status": "running", "attempt": 1, "assigned_agent_id": "pull-1"}
    await running(agent)
    await http_hub.queue.put((make_task("t1"), 1))
    await http_hub.wait("task_started", task_id="t1")
    await http_hub.wait("heartbeat")  # still ours: keeps running
    assert not aborted.is_set()
    http_hub.tasks["t1"] = {"status": "cancelled", "attempt": 1, "assigned_agent_id": "pull-1"}
    await asyncio.wait_for(aborted.wait(), 5)
    assert reasons == ["task_cancelled"]
    assert [m["type"] for m in http_hub.find(task_id="t1")] == ["task_started"]


async def test_ask_over_pull_posts_and_polls(http_hub: FakeHttpHub, running: Any) -> None:
    agent = make_pull(http_hub)
    agent.answer_poll_interval = 0.02

    @agent.handler("data_processing")
    async def asks(ctx: TaskContext) -> str:
        return str(await ctx.ask("Colour?", timeout=30))

    await running(agent)
    await http_hub.queue.put((make_task("t9"), 1))
    req = await http_hub.wait("input_request", task_id="t9")
    assert req["path"] == "/api/tasks/t9/input-request"
    rid = req["data"]["request_id"]
    http_hub.tasks["t9"].update(status="input_required", pending_input={"request_id": rid})
    await asyncio.sleep(0.1)
    assert not http_hub.find("task_completed", task_id="t9")  # still waiting (and still ours)
    http_hub.tasks["t9"].update(
        status="running",
        pending_input=None,
        last_input={"request_id": rid, "answer": "blue", "timed_out": False, "answered_by": "bob"},
    )
    done = await http_hub.wait("task_completed", task_id="t9")
    assert done["data"]["result"] == "blue"
