"""The WebSocket agent against an in-process fake hub speaking the agent protocol."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hivehub.agent import Agent, RegistrationError, Result, TaskContext, TaskFailure

from .conftest import make_agent
from .fakehub import FakeWsHub, make_task


async def test_register_then_run_async_handler(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub, capabilities={"data_processing": 0.85}, type="specialist", max_concurrent_tasks=2)

    @agent.handler("data_processing")
    async def process(ctx: TaskContext) -> Result:
        await ctx.progress(0.5, "halfway")
        return Result({"sum": sum(ctx.input["numbers"]), "attempt": ctx.attempt}, quality=0.8)

    hub.assign_on_register.append((make_task("t1", input={"numbers": [1, 2, 3]}, attempt=2), 2))
    await running(agent)

    reg = await hub.wait("register")
    assert reg["message_id"]
    data = reg["data"]
    assert data["name"] == "Tester"
    assert data["type"] == "specialist"
    assert data["capabilities"] == [{"name": "data_processing", "proficiency": 0.85, "learning_rate": 0.1}]
    assert data["max_concurrent_tasks"] == 2
    assert data["running"] == {}
    assert "id" not in data
    assert agent.agent_id == "agent-1"
    assert agent.hub_info["heartbeat_interval"] == hub.heartbeat_interval

    started = await hub.wait("task_started", task_id="t1")
    assert started["data"] == {"task_id": "t1", "attempt": 2}
    progress = await hub.wait("task_progress", task_id="t1")
    assert progress["data"] == {"task_id": "t1", "attempt": 2, "progress": 0.5, "current_step": "halfway"}
    done = await hub.wait("task_completed", task_id="t1")
    assert done["data"] == {"task_id": "t1", "attempt": 2, "result": {"sum": 6, "attempt": 2}, "quality": 0.8}
    order = [m["type"] for m in hub.received if m["type"] != "heartbeat"]
    assert order == ["register", "task_started", "task_progress", "task_completed"]
    assert all(m["message_id"] for m in hub.received[1:])
    await hub.wait_until(lambda: agent.pending_reports == 0)  # every report was acked


async def test_sync_handler_runs_in_a_thread(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub, progress_interval=0)
    seen: dict[str, Any] = {}
    gate = threading.Event()

    def process(ctx: TaskContext) -> dict[str, Any]:
        seen["thread"] = threading.current_thread()
        ctx.progress_sync(7, "clamped")
        gate.wait(5)
        return {"rows": len(ctx.input["records"])}

    agent.add_handler("data_processing", process)
    await running(agent)
    await hub.assign(make_task("t1", input={"records": [{}, {}]}))
    progress = await hub.wait("task_progress", task_id="t1")
    assert progress["data"]["progress"] == 1.0 and progress["data"]["current_step"] == "clamped"
    gate.set()
    done = await hub.wait("task_completed", task_id="t1")
    assert done["data"]["result"] == {"rows": 2}
    assert "quality" not in done["data"]
    assert seen["thread"] is not threading.main_thread()


async def test_progress_is_throttled(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub, progress_interval=0.3)
    gate = asyncio.Event()

    @agent.handler("data_processing")
    async def chatty(ctx: TaskContext) -> str:
        for i in range(1, 101):
            await ctx.progress(i / 100, f"record {i}")
        await gate.wait()
        for _ in range(3):
            await ctx.progress(0.5, "dropped: the outcome follows at once")
        return "done"

    await running(agent)
    await hub.assign(make_task("t1"))
    last = await hub.wait("task_progress", task_id="t1", current_step="record 100")
    steps = [m["data"]["current_step"] for m in hub.find("task_progress")]
    assert steps == ["record 1", "record 100"]  # the first at once, then the newest
    assert last["data"]["progress"] == 1.0
    gate.set()
    await hub.wait("task_completed", task_id="t1")
    # progress made within the interval right before the outcome is dropped, not sent after it
    kinds = [(m["type"], m["data"].get("current_step")) for m in hub.find(task_id="t1")]
    assert kinds[-2:] == [("task_progress", "record 100"), ("task_completed", None)]


async def test_fallback_handler_and_no_handler(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    agent.add_handler("data_processing", lambda ctx: "dp")
    await running(agent)
    await hub.assign(make_task("t1", type="unknown_type"))
    failed = await hub.wait("task_failed", task_id="t1")
    assert failed["data"]["error"]["code"] == "NO_HANDLER"
    assert failed["data"]["retryable"] is True
    assert failed["data"]["attempt"] == 1
    assert not hub.find("task_started", task_id="t1")

    agent.add_handler("*", lambda ctx: f"fallback:{ctx.type}")
    await hub.assign(make_task("t2", type="unknown_type"))
    done = await hub.wait("task_completed", task_id="t2")
    assert done["data"]["result"] == "fallback:unknown_type"
    await hub.assign(make_task("t3", type="data_processing"))
    assert (await hub.wait("task_completed", task_id="t3"))["data"]["result"] == "dp"


async def test_failures_are_reported(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)

    @agent.handler("controlled")
    async def controlled(ctx: TaskContext) -> None:
        raise TaskFailure("BAD_INPUT", "records missing", {"field": "records"}, retryable=False)

    @agent.handler("crash")
    def crash(ctx: TaskContext) -> None:
        raise ValueError("boom")

    @agent.handler("weird")
    async def weird(ctx: TaskContext) -> Any:
        return object()

    await running(agent)
    for tid, kind in (("t1", "controlled"), ("t2", "crash"), ("t3", "weird")):
        await hub.assign(make_task(tid, type=kind))

    f1 = (await hub.wait("task_failed", task_id="t1"))["data"]
    assert f1["error"] == {"code": "BAD_INPUT", "message": "records missing", "details": {"field": "records"}}
    assert f1["retryable"] is False
    f2 = (await hub.wait("task_failed", task_id="t2"))["data"]
    assert f2["error"]["code"] == "HANDLER_ERROR"
    assert f2["error"]["message"] == "boom"
    assert f2["error"]["details"]["exception"] == "builtins.ValueError"
    assert "ValueError: boom" in f2["error"]["details"]["traceback"]
    assert f2["retryable"] is True
    f3 = (await hub.wait("task_failed", task_id="t3"))["data"]
    assert f3["error"]["code"] == "INVALID_RESULT"
    assert f3["retryable"] is False
    for tid in ("t1", "t2", "t3"):
        assert hub.find("task_started", task_id=tid), "task_started precedes a handler's outcome"


async def test_cancel_async_handler(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    observed: dict[str, Any] = {}

    @agent.handler("data_processing")
    async def slow(ctx: TaskContext) -> str:
        if ctx.task_id == "t2":
            return "quick"
        try:
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            observed["cancelled"] = ctx.cancelled
            observed["event"] = ctx.cancel_event.is_set()
            observed["reason"] = ctx.cancel_reason
            raise
        return "never"

    await running(agent)
    await hub.assign(make_task("t1"))
    await hub.wait("task_started", task_id="t1")
    await hub.cancel("t1", 1, "manual_cancellation")
    await hub.assign(make_task("t2"))
    await hub.wait("task_completed", task_id="t2")
    assert observed == {"cancelled": True, "event": True, "reason": "manual_cancellation"}
    assert [m["type"] for m in hub.find(task_id="t1")] == ["task_started"]
    assert "t1" not in agent.running_tasks


async def test_cancel_sync_handler(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    flags: dict[str, Any] = {}
    done = threading.Event()

    def blocking(ctx: TaskContext) -> str:
        try:
            flags["woke"] = ctx.wait_cancelled_sync(5)
            ctx.progress_sync(0.9, "ignored after cancel")
            ctx.check_cancelled()
            return "not reported"
        finally:
            done.set()

    agent.add_handler("data_processing", blocking)
    await running(agent)
    await hub.assign(make_task("t1"))
    await hub.wait("task_started", task_id="t1")
    await hub.cancel("t1", 1, "timeout")
    await hub.wait_until(done.is_set)
    assert flags["woke"] is True
    await hub.assign(make_task("t2"))  # the slot is free again
    await hub.wait("task_started", task_id="t2")
    assert [m["type"] for m in hub.find(task_id="t1")] == ["task_started"]


async def test_cancel_of_other_attempt_is_ignored(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    gate = asyncio.Event()

    @agent.handler("data_processing")
    async def wait_gate(ctx: TaskContext) -> str:
        await gate.wait()
        return "ok"

    await running(agent)
    await hub.assign(make_task("t1", attempt=2))
    await hub.wait("task_started", task_id="t1")
    await hub.cancel("t1", 1)  # stale: attempt 1 is long gone
    await hub.cancel("zzz", 1)  # unknown task
    gate.set()
    assert (await hub.wait("task_completed", task_id="t1"))["data"]["attempt"] == 2


async def test_max_concurrent_tasks(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub, max_concurrent_tasks=1)
    gates = {"t1": asyncio.Event(), "t2": asyncio.Event()}

    @agent.handler("data_processing")
    async def gated(ctx: TaskContext) -> str:
        await gates[ctx.task_id].wait()
        return ctx.task_id

    await running(agent)
    await hub.assign(make_task("t1"))
    await hub.assign(make_task("t2"))
    await hub.wait("task_started", task_id="t1")
    await hub.wait_until(lambda: agent.active_count == 2)
    assert agent._execs["t2"].state == "queued"
    assert not hub.find("task_started", task_id="t2")
    gates["t2"].set()
    gates["t1"].set()
    await hub.wait("task_completed", task_id="t2")
    types = [(m["type"], m["data"].get("task_id")) for m in hub.received if m["type"].startswith("task_")]
    assert types.index(("task_completed", "t1")) < types.index(("task_started", "t2"))


async def test_duplicate_assign_is_ignored(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    calls: list[str] = []
    gate = asyncio.Event()

    @agent.handler("data_processing")
    async def count(ctx: TaskContext) -> int:
        calls.append(ctx.task_id)
        if ctx.task_id == "t1":
            await gate.wait()
        return len(calls)

    await running(agent)
    await hub.assign(make_task("t1"))
    await hub.wait("task_started", task_id="t1")
    await hub.assign(make_task("t1"))  # while running
    gate.set()
    await hub.wait("task_completed", task_id="t1")
    await hub.assign(make_task("t1"))  # after it finished
    await hub.assign(make_task("t2"))
    await hub.wait("task_completed", task_id="t2")
    assert calls == ["t1", "t2"]


async def test_heartbeats_at_least_three_per_timeout(hub: FakeWsHub, running: Any) -> None:
    hub.heartbeat_interval, hub.heartbeat_timeout = 30.0, 0.09  # an interval too long for the timeout
    agent = make_agent(hub)
    await running(agent)
    first = await hub.wait("heartbeat", timeout=2)
    await hub.wait("heartbeat", start=hub.received.index(first) + 1, timeout=2)


async def test_heartbeats(hub: FakeWsHub, running: Any) -> None:
    hub.heartbeat_interval = 0.02
    agent = make_agent(hub)
    await running(agent)
    first = await hub.wait("heartbeat")
    await hub.wait("heartbeat", start=hub.received.index(first) + 1)
    assert first["data"] == {}


async def test_reconnect_keeps_id_and_running_tasks(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    gate = asyncio.Event()

    @agent.handler("data_processing")
    async def gated(ctx: TaskContext) -> str:
        await gate.wait()
        return "finished"

    await running(agent)
    await hub.assign(make_task("t1", attempt=3))
    await hub.wait("task_started", task_id="t1")
    await hub.drop()

    reg = await hub.wait("register", start=1)
    assert reg["conn"] == 2
    assert reg["data"]["id"] == "agent-1"
    assert reg["data"]["running"] == {"t1": 3}
    await agent.wait_registered(5)
    gate.set()
    done = await hub.wait("task_completed", task_id="t1")
    assert done["conn"] == 2
    assert done["data"]["attempt"] == 3
    assert agent.connections == 2


async def test_reports_made_while_disconnected_are_sent_after_reconnect(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub, progress_interval=0)
    gate = asyncio.Event()

    @agent.handler("data_processing")
    async def gated(ctx: TaskContext) -> str:
        await gate.wait()
        await ctx.progress(0.5, "a")
        await ctx.progress(0.75, "b")
        return "late"

    await running(agent)
    await hub.assign(make_task("t1"))
    await hub.wait("task_started", task_id="t1")
    hub.accepting = False
    await hub.drop()
    await hub.wait_until(lambda: not agent.connected)
    gate.set()
    await hub.wait_until(lambda: agent.pending_reports >= 2)  # progress (coalesced) + completed
    assert [r.kind for r in agent._outbox] == ["task_progress", "task_completed"]
    hub.accepting = True

    reg = await hub.wait("register", start=1)
    assert reg["data"]["running"] == {"t1": 1}  # still held: the result is not delivered yet
    done = await hub.wait("task_completed", task_id="t1")
    assert done["conn"] == reg["conn"]
    assert [m["data"]["current_step"] for m in hub.find("task_progress")] == ["b"]
    await hub.wait_until(lambda: agent.pending_reports == 0)


async def test_unacknowledged_report_is_sent_again(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    agent.add_handler("data_processing", lambda ctx: 42)
    await running(agent)
    hub.ack = False
    await hub.assign(make_task("t1"))
    first = await hub.wait("task_completed", task_id="t1")
    assert agent.pending_reports == 2  # started and completed, both unanswered
    hub.ack = True
    await hub.drop()
    again = await hub.wait("task_completed", task_id="t1", start=hub.received.index(first) + 1)
    assert again["message_id"] == first["message_id"]
    assert again["conn"] == 2
    await hub.wait_until(lambda: agent.pending_reports == 0)


async def test_not_task_holder_aborts_the_execution(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    cancelled = asyncio.Event()

    @agent.handler("data_processing")
    async def long(ctx: TaskContext) -> str:
        try:
            await asyncio.Event().wait()
        finally:
            if ctx.cancelled and ctx.cancel_reason == "not_task_holder":
                cancelled.set()
        return "stale"

    hub.errors[("task_started", "t1")] = {"code": "not_task_holder", "message": "reassigned", "details": {}}
    await running(agent)
    await hub.assign(make_task("t1"))
    await asyncio.wait_for(cancelled.wait(), 5)
    await hub.assign(make_task("t2", type="other"))
    await hub.wait("task_failed", task_id="t2")  # NO_HANDLER; proves the loop went on
    assert [m["type"] for m in hub.find(task_id="t1")] == ["task_started"]


async def test_oversized_result_fails_instead_of_being_sent(hub: FakeWsHub, running: Any) -> None:
    hub.extra_registered = {"max_frame_bytes": 5000}  # the hub announces its frame limit
    agent = make_agent(hub)
    agent.add_handler("data_processing", lambda ctx: "x" * ctx.input)
    await running(agent)
    await hub.assign(make_task("small", input=100))
    await hub.wait("task_completed", task_id="small")
    await hub.assign(make_task("big", input=10_000))
    failed = await hub.wait("task_failed", task_id="big")
    assert failed["data"]["error"]["code"] == "RESULT_TOO_LARGE"
    assert failed["data"]["error"]["details"] == {"size": 10_002, "limit": 5000 - 4096}
    assert failed["data"]["retryable"] is False


async def test_rejected_result_becomes_a_failure(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    agent.add_handler("data_processing", lambda ctx: "x" * 10)
    hub.errors[("task_completed", "t1")] = {"code": "payload_too_large", "message": "too big", "details": {}}
    await running(agent)
    await hub.assign(make_task("t1"))
    failed = await hub.wait("task_failed", task_id="t1")
    assert failed["data"]["error"]["code"] == "RESULT_REJECTED"
    assert failed["data"]["retryable"] is False


async def test_transient_error_is_retried(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)
    agent.add_handler("data_processing", lambda ctx: 1)
    hub.errors[("task_completed", "t1")] = {
        "code": "store_unavailable",
        "message": "disk full",
        "details": {},
    }
    await running(agent)
    await hub.assign(make_task("t1"))
    first = await hub.wait("task_completed", task_id="t1")
    again = await hub.wait("task_completed", task_id="t1", start=hub.received.index(first) + 1)
    assert again["message_id"] == first["message_id"]
    await hub.wait_until(lambda: agent.pending_reports == 0)


async def test_stop_waits_for_running_tasks_then_releases_the_rest(hub: FakeWsHub) -> None:
    agent = make_agent(hub, max_concurrent_tasks=3)
    quick_gate = asyncio.Event()

    @agent.handler("data_processing")
    async def handler(ctx: TaskContext) -> str:
        if ctx.task_id == "quick":
            await quick_gate.wait()
            return "done in grace"
        await asyncio.Event().wait()
        return "never"

    run = asyncio.create_task(agent.run())
    await agent.wait_registered(5)
    await hub.assign(make_task("quick"))
    await hub.assign(make_task("stuck"))
    await hub.wait("task_started", task_id="quick")
    await hub.wait("task_started", task_id="stuck")

    stopping = asyncio.create_task(agent.stop(grace=0.5))
    await hub.wait_until(lambda: agent.stopping)
    await hub.assign(make_task("late"))  # arrives during shutdown: not started, released
    quick_gate.set()
    await asyncio.wait_for(stopping, 5)
    await asyncio.wait_for(run, 5)

    assert (await hub.wait("task_completed", task_id="quick"))["data"]["result"] == "done in grace"
    stuck = await hub.wait("task_released", task_id="stuck")
    assert stuck["data"] == {"task_id": "stuck", "attempt": 1, "reason": "agent_shutdown"}
    assert "via" not in stuck  # over the WebSocket
    late = await hub.wait("task_released", task_id="late")  # assigned during the grace period
    assert late["data"] == {"task_id": "late", "attempt": 1, "reason": "agent_shutdown"}
    assert not hub.find("task_started", task_id="late")
    assert not hub.find("task_completed", task_id="stuck")


async def test_a_task_assigned_back_during_shutdown_does_not_loop(hub: FakeWsHub) -> None:
    """A hub that assigns a released task straight back (the only capable agent)."""
    agent = make_agent(hub)

    @agent.handler("data_processing")
    async def forever(ctx: TaskContext) -> None:
        await asyncio.Event().wait()

    hub.reassign_released = True
    run = asyncio.create_task(agent.run())
    await agent.wait_registered(5)
    await hub.assign(make_task("t1", attempt=1))
    await hub.wait("task_started", task_id="t1")
    await asyncio.wait_for(agent.stop(grace=0, flush_timeout=2), 5)
    await asyncio.wait_for(run, 5)
    # attempt 1 released over the WebSocket; attempt 2 (assigned back before the ack)
    # released over HTTP after the WebSocket closed, when the hub no longer assigns to us
    releases = [(m["data"]["attempt"], m.get("via"), m.get("connected")) for m in hub.find("task_released")]
    assert releases == [(1, None, None), (2, "http", False)]
    assert len(hub.find("task_started", task_id="t1")) == 1


async def test_fatal_registration_error(hub: FakeWsHub) -> None:
    hub.register_error = {"code": "invalid_input", "message": "bad capabilities", "details": {}}
    agent = make_agent(hub)
    with pytest.raises(RegistrationError) as info:
        await asyncio.wait_for(agent.run(), 5)
    assert info.value.code == "invalid_input"


@pytest.mark.parametrize(("code", "name"), [(4001, "agent_removed"), (4002, "agent_replaced")])
async def test_removed_or_replaced_agent_stops(hub: FakeWsHub, code: int, name: str) -> None:
    agent = make_agent(hub)
    run = asyncio.create_task(agent.run())
    await agent.wait_registered(5)
    assert hub.ws is not None
    await hub.ws.close(code=code, message=b"bye")
    with pytest.raises(RegistrationError) as info:
        await asyncio.wait_for(run, 5)
    assert info.value.code == name
    assert hub.conn == 1  # no reconnect


async def test_reconnects_until_the_hub_is_up(hub: FakeWsHub) -> None:
    hub.accepting = False
    agent = make_agent(hub)
    run = asyncio.create_task(agent.run())
    try:
        await hub.wait_until(lambda: hub.refused >= 3)  # the handshake got HTTP 503, retried
        assert not agent.connected
        hub.accepting = True
        await agent.wait_registered(5)
        assert hub.find("register")
    finally:
        await agent.stop(grace=0)
        await asyncio.wait_for(run, 5)


def test_urls_and_capabilities() -> None:
    a = Agent("x", {"a": 0.5}, url="http://example.org:3001")
    assert a.url == "ws://example.org:3001/agents/ws"
    assert Agent("x", url="wss://h/custom/ws").url == "wss://h/custom/ws"
    assert Agent("x", [("a", 0.2, 0.3)]).capabilities[0].learning_rate == 0.3
    with pytest.raises(ValueError):
        Agent("x", {"a": 1.5})
    with pytest.raises(ValueError):
        Agent("x", url="ftp://h")
