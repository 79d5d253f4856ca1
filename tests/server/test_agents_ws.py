"""The push transport /agents/ws (docs/agent-protocol.md section 3): registration,
assignments, reports and their acks and errors, cancels, reconnects and close codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from .conftest import Hub, HubFactory, make_token, recv, recv_close, recv_until

CODE = [{"name": "code", "proficiency": 0.9}]


async def connect(hub: Hub, **spec: Any) -> tuple[ClientWebSocketResponse, dict[str, Any]]:
    """An agent connected and registered; returns the socket and the ``registered`` data."""
    ws = await hub.ws("/agents/ws")
    await ws.send_json(
        {"type": "register", "message_id": "r-1", "data": {"name": "w", "capabilities": CODE, **spec}}
    )
    reg = await recv(ws)
    assert (reg["type"], reg["message_id"]) == ("registered", "r-1"), reg
    return ws, reg["data"]


async def report(ws: ClientWebSocketResponse, typ: str, mid: str, **data: Any) -> dict[str, Any]:
    """Send a report and return the reply (ack or error) that echoes its message_id."""
    await ws.send_json({"type": typ, "message_id": mid, "data": data})
    reply, _ = await recv_until(ws, lambda m: m.get("message_id") == mid)
    return reply


async def assigned(ws: ClientWebSocketResponse) -> dict[str, Any]:
    m, _ = await recv_until(ws, lambda m: m["type"] == "assign")
    return m["data"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ registration


async def test_register_answers_registered_with_the_agent_and_the_liveness_settings(hub: Hub) -> None:
    ws, reg = await connect(hub, id="a1", max_concurrent_tasks=2)
    assert reg["agent_id"] == "a1"
    assert (reg["agent"]["id"], reg["agent"]["status"], reg["agent"]["max_concurrent_tasks"]) == (
        "a1",
        "idle",
        2,
    )
    assert reg["heartbeat_interval"] <= reg["heartbeat_timeout"] / 3
    assert reg["max_frame_bytes"] == hub.config.max_frame_bytes
    assert (await hub.get("/api/agents/a1")).body["status"] == "idle"
    assert (await hub.get("/api/hive/status")).body["connected_agents"] == 1
    await ws.close()


async def test_register_without_id_creates_an_agent_with_a_fresh_id(hub: Hub) -> None:
    ws, reg = await connect(hub)
    assert reg["agent_id"] and (await hub.get(f"/api/agents/{reg['agent_id']}")).status == 200
    await ws.close()


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ('{"type": "heartbeat", "data": {}}', "invalid_input"),
        ('{"type": "register", "data": {"name": ""}}', "invalid_input"),
        ('{"type": "register", "data": {"name": "w", "colour": "red"}}', "invalid_input"),
        ('{"type": "register", "data": []}', "invalid_input"),
        ('{"type": "register", "data": {"name": "w", "running": {"t1": "one"}}}', "invalid_input"),
        (
            '{"type": "register", "data": {"name": "w", "metadata": ' + "[" * 80 + "]" * 80 + "}}",
            "payload_too_large",
        ),
        ("{not json", "malformed_json"),
    ],
)
async def test_a_refused_registration_is_an_error_then_close_1008(hub: Hub, first: str, code: str) -> None:
    ws = await hub.ws("/agents/ws")
    await ws.send_str(first)
    close, reason, seen = await recv_close(ws)
    assert (close, reason) == (1008, "registration failed")
    (err,) = seen
    assert (err["type"], err["data"]["code"]) == ("error", code), err
    assert (await hub.get("/api/agents")).body["agents"] == []


async def test_a_binary_first_frame_is_closed_1008_register_first(hub: Hub) -> None:
    ws = await hub.ws("/agents/ws")
    await ws.send_bytes(b'{"type": "register", "data": {"name": "w"}}')
    assert (await recv_close(ws))[:2] == (1008, "register first")


async def test_an_agent_token_registers_only_as_its_own_agent(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    token = make_token(tmp_path / "hive.db", "agent", "a1")
    hub = await hub_factory()
    hub.headers = {"Authorization": f"Bearer {token}"}
    ws = await hub.ws("/agents/ws")
    await ws.send_json({"type": "register", "message_id": "r", "data": {"id": "a2", "name": "w"}})
    close, _, (err,) = await recv_close(ws)
    assert close == 1008 and err["data"]["code"] == "forbidden" and err["message_id"] == "r"
    ws, reg = await connect(hub)  # no id: the token's agent id
    assert reg["agent_id"] == "a1"
    await ws.close()


# ------------------------------------------------------------------ the attempt flow


async def test_assign_start_progress_complete_each_acked_and_logged_in_order(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}], input={"n": 1})
    a = await assigned(ws)
    assert (a["task"]["id"], a["attempt"], a["task"]["attempt"], a["task"]["input"]) == ("t1", 1, 1, {"n": 1})
    ack = await report(ws, "task_started", "m1", task_id="t1", attempt=1)
    assert (ack["type"], ack["data"]) == ("ack", {"type": "task_started", "task_id": "t1"})
    assert (await hub.get("/api/tasks/t1")).body["status"] == "running"
    ack = await report(
        ws, "task_progress", "m2", task_id="t1", attempt=1, progress=0.25, current_step="reading"
    )
    assert ack["type"] == "ack"
    ack = await report(ws, "task_completed", "m3", task_id="t1", attempt=1, result={"sum": 3}, quality=0.8)
    assert ack["data"] == {"type": "task_completed", "task_id": "t1"}
    t = (await hub.get("/api/tasks/t1")).body
    assert (t["status"], t["result"]) == ("completed", {"sum": 3})
    events = [e["type"] for e in await hub.events() if e["type"].startswith("task_")]
    assert events == ["task_created", "task_assigned", "task_started", "task_progress", "task_completed"]
    await ws.close()


async def test_a_report_without_attempt_is_attempt_required_and_changes_nothing(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    err = await report(ws, "task_started", "m1", task_id="t1")
    assert (err["type"], err["data"]["code"]) == ("error", "attempt_required")
    assert (await hub.get("/api/tasks/t1")).body["status"] == "assigned"
    assert (await report(ws, "task_started", "m2", task_id="t1", attempt=1))["type"] == "ack"
    await ws.close()


async def test_a_stale_attempt_is_not_task_holder(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    err = await report(ws, "task_started", "m1", task_id="t1", attempt=7)
    assert (err["type"], err["data"]["code"]) == ("error", "not_task_holder")
    assert err["data"]["details"]["current_attempt"] == 1
    err = await report(ws, "task_completed", "m2", task_id="nope", attempt=1)
    assert err["data"]["code"] == "task_not_found"
    await ws.close()


async def test_failed_retryable_and_released_are_acked_and_requeue(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    a = await assigned(ws)
    await report(ws, "task_started", "m1", task_id="t1", attempt=a["attempt"])
    ack = await report(
        ws,
        "task_failed",
        "m2",
        task_id="t1",
        attempt=a["attempt"],
        error={"code": "FLAKY", "message": "m"},
        retryable=True,
    )
    assert ack["data"] == {"type": "task_failed", "task_id": "t1"}
    t = (await hub.get("/api/tasks/t1")).body
    assert (t["status"], t["failures"], t["error"]["code"]) == ("pending", 1, "FLAKY")
    await hub.submit(id="t2", required_capabilities=[{"name": "code"}])
    b = await assigned(ws)
    assert b["task"]["id"] == "t2"
    ack = await report(ws, "task_released", "m3", task_id="t2", attempt=b["attempt"], reason="shutting down")
    assert ack["type"] == "ack"
    (e,) = await hub.events(types="task_released")
    assert (e["data"]["task_id"], e["data"]["reason"]) == ("t2", "shutting down")
    await ws.close()


@pytest.mark.parametrize(
    ("typ", "data", "code"),
    [
        ("task_started", {"attempt": 1}, "invalid_input"),
        ("task_started", {"task_id": "t1", "attempt": "1"}, "invalid_input"),
        ("task_progress", {"task_id": "t1", "attempt": 1, "progress": 2}, "invalid_input"),
        (
            "task_failed",
            {"task_id": "t1", "attempt": 1, "error": {"code": "", "message": "m"}},
            "invalid_input",
        ),
        ("task_released", {"task_id": "t1", "attempt": 1, "reason": "x" * 1001}, "invalid_input"),
        ("task_exploded", {"task_id": "t1"}, "unknown_message_type"),
        ("task_completed", {"task_id": "t1", "attempt": 1, "result": [[[[[[[[[[]]]]]]]]]] * 1}, None),
    ],
)
async def test_a_malformed_report_gets_an_error_and_the_connection_stays_open(
    hub: Hub, typ: str, data: dict, code: str | None
) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    reply = await report(ws, typ, "bad", **data)
    if code is None:  # a nested, but not too deep, result is fine
        assert reply["type"] == "ack"
        return
    assert (reply["type"], reply["data"]["code"]) == ("error", code), reply
    assert (await hub.get("/api/tasks/t1")).body["status"] == "assigned"
    assert (await report(ws, "task_started", "ok", task_id="t1", attempt=1))["type"] == "ack"
    await ws.close()


@pytest.mark.parametrize(
    ("raw", "code", "mid"),
    [
        ("{not json", "malformed_json", None),
        ("[1]", "invalid_input", None),
        ('{"type": "heartbeat", "message_id": {"x": 1}}', "invalid_input", {"x": 1}),
        (
            '{"type": "task_started", "message_id": "d", "data": {"task_id": "t", "attempt": 1, "x": '
            + "[" * 80
            + "]" * 80
            + "}}",
            "payload_too_large",
            "d",
        ),
    ],
)
async def test_a_frame_that_is_not_a_valid_message_is_answered_with_an_error(
    hub: Hub, raw: str, code: str, mid: Any
) -> None:
    ws, _ = await connect(hub, id="a1")
    await ws.send_str(raw)
    err = await recv(ws)
    assert (err["type"], err["data"]["code"], err["message_id"]) == ("error", code, mid)
    assert (await report(ws, "nope", "after"))["data"]["code"] == "unknown_message_type"  # still open
    await ws.close()


async def test_a_binary_frame_is_unsupported_frame(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await ws.send_bytes(b"\x00")
    err = await recv(ws)
    assert (err["type"], err["data"]["code"]) == ("error", "unsupported_frame")
    await ws.close()


async def test_a_heartbeat_is_not_answered(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await ws.send_json({"type": "heartbeat", "message_id": "h", "data": {}})
    reply = await report(ws, "unknown", "u")
    assert reply["message_id"] == "u"  # the first reply is for the second message: nothing for the heartbeat
    await ws.close()


# ------------------------------------------------------------------ pushes and reconnects


async def test_a_cancel_reaches_the_agent_running_the_task(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    a = await assigned(ws)
    await report(ws, "task_started", "m1", task_id="t1", attempt=a["attempt"])
    await hub.post("/api/tasks/t1/cancel", {})
    m, _ = await recv_until(ws, lambda m: m["type"] == "cancel")
    assert m["data"] == {"task_id": "t1", "attempt": None, "reason": "manual_cancellation"}
    assert m["message_id"] is None
    err = await report(ws, "task_completed", "late", task_id="t1", attempt=a["attempt"])
    assert err["data"]["code"] == "not_task_holder"
    await ws.close()


async def test_a_reconnect_replaces_the_old_connection_and_redelivers_the_assignment(hub: Hub) -> None:
    old, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    a = await assigned(old)
    new = await hub.ws("/agents/ws")
    await new.send_json(
        {
            "type": "register",
            "message_id": "r-2",
            "data": {"id": "a1", "name": "w", "capabilities": CODE, "running": {}},
        }
    )
    reg = await recv(new)
    assert reg["type"] == "registered"
    again = await assigned(new)
    assert (again["task"]["id"], again["attempt"]) == ("t1", a["attempt"])
    assert (await recv_close(old))[:2] == (4002, "replaced by a new connection")
    assert (await report(new, "task_started", "s", task_id="t1", attempt=a["attempt"]))["type"] == "ack"
    await new.close()


async def test_a_reconnect_naming_a_lost_attempt_is_told_to_cancel_it(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1", running={"ghost": 3})
    m, _ = await recv_until(ws, lambda m: m["type"] == "cancel")
    assert m["data"] == {"task_id": "ghost", "attempt": 3, "reason": "no_longer_assigned"}
    await ws.close()


async def test_a_running_attempt_missing_from_running_fails_as_agent_lost(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}], max_retries=0)
    a = await assigned(ws)
    await report(ws, "task_started", "s", task_id="t1", attempt=a["attempt"])
    ws2, _ = await connect(hub, id="a1", running={})
    t = (await hub.get("/api/tasks/t1")).body
    assert t["status"] == "failed" and t["error"]["code"] == "AGENT_LOST"
    await ws2.close()


async def test_disconnecting_marks_the_agent_offline(hub: Hub) -> None:
    stream = await hub.ws(params={"types": "agent_status_changed", "agent_id": "a1"})
    ws, _ = await connect(hub, id="a1")
    await ws.close()
    m, _ = await recv_until(stream, lambda m: m["data"].get("new_status") == "offline")
    assert m["data"]["agent_id"] == "a1"
    assert (await hub.get("/api/agents/a1")).body["status"] == "offline"
    assert (await hub.get("/api/hive/status")).body["connected_agents"] == 0
    await stream.close()


async def test_removing_the_agent_closes_its_socket_4001(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    assert (await hub.delete("/api/agents/a1")).status == 200
    assert (await recv_close(ws))[:2] == (4001, "agent removed")


async def test_a_frame_over_max_frame_bytes_closes_1009(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", max_frame_bytes=2048)
    ws, reg = await connect(hub, id="a1")
    assert reg["max_frame_bytes"] == 2048
    await ws.send_str('{"type": "task_completed", "data": {"result": "' + "x" * 4096 + '"}}')
    code, _, _ = await recv_close(ws)
    assert code == 1009


async def test_agents_are_closed_1001_when_the_hub_shuts_down(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.client.server.close()
    assert (await recv_close(ws))[:2] == (1001, "hub shutting down")


@pytest.mark.parametrize(
    ("typ", "data"),
    [
        ("task_started", {"task_id": "t1", "attempt": True}),
        (
            "task_failed",
            {"task_id": "t1", "attempt": 1, "error": {"code": "X", "message": "m"}, "retryable": "no"},
        ),
    ],
    ids=["attempt-true", "retryable-string"],
)
async def test_a_report_field_of_the_wrong_json_type_is_invalid_input(hub: Hub, typ: str, data: dict) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    reply = await report(ws, typ, "m", **data)
    assert reply["type"] == "error", reply  # today: an ack, and the report was applied
    assert reply["data"]["code"] == "invalid_input", reply
    await ws.close()


async def test_a_task_past_its_timeout_is_cancelled_on_the_agent(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}], timeout_seconds=0.3, max_retries=0)
    a = await assigned(ws)
    await report(ws, "task_started", "s", task_id="t1", attempt=a["attempt"])
    m, _ = await recv_until(ws, lambda m: m["type"] == "cancel")
    assert m["data"] == {"task_id": "t1", "attempt": a["attempt"], "reason": "timeout"}
    t = (await hub.get("/api/tasks/t1")).body
    assert t["status"] == "failed"
    late = await report(ws, "task_completed", "late", task_id="t1", attempt=a["attempt"])
    assert late["data"]["code"] == "not_task_holder"
    await ws.close()
