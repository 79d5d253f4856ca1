"""The /ws event stream: live delivery, filters, snapshot, resume with ``since``,
control commands and their error replies, close codes (docs/api.md "The /ws stream")."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSServerHandshakeError

from .conftest import Hub, HubFactory, ask, increasing, is_domain, recv, recv_close, recv_until


async def next_event(ws: ClientWebSocketResponse) -> dict[str, Any]:
    """The next logged task or agent event (the hub's observations of itself may come between)."""
    m, _ = await recv_until(ws, lambda m: "sequence" in m and is_domain(m))
    return m


# ------------------------------------------------------------------ live


async def test_live_events_arrive_in_sequence_order_with_the_envelope(hub: Hub) -> None:
    ws = await hub.ws()
    await hub.submit(id="t1")
    await hub.post("/api/tasks/t1/cancel", {})
    created = await next_event(ws)
    cancelled = await next_event(ws)
    assert (created["type"], created["data"]["task"]["id"]) == ("task_created", "t1")
    assert (cancelled["type"], cancelled["data"]["task_id"]) == ("task_cancelled", "t1")
    assert created["sequence"] < cancelled["sequence"]
    assert set(created) >= {"type", "data", "timestamp", "message_id", "sequence"}
    # the same events, the same sequences, as the log answers over HTTP
    logged = await hub.events()
    assert [(e["type"], e["sequence"]) for e in logged] == [
        (m["type"], m["sequence"]) for m in (created, cancelled)
    ]
    await ws.close()


async def test_every_subscriber_gets_every_event(hub: Hub) -> None:
    a = await hub.ws()
    b = await hub.ws()
    await hub.submit(id="t1")
    ea, eb = await next_event(a), await next_event(b)
    assert ea == eb and ea["type"] == "task_created"
    await a.close()
    await b.close()


# ------------------------------------------------------------------ filters


async def test_types_filter_in_the_query(hub: Hub) -> None:
    ws = await hub.ws(params={"types": "task_cancelled,agent_created"})
    await hub.submit(id="t1")
    await hub.post("/api/tasks/t1/cancel", {})
    await hub.register("w1", id="a1")
    first, second = await next_event(ws), await next_event(ws)
    assert [first["type"], second["type"]] == ["task_cancelled", "agent_created"]
    await ws.close()


async def test_task_id_and_agent_id_filters(hub: Hub) -> None:
    by_task = await hub.ws(params={"task_id": "t2"})
    by_agent = await hub.ws(params={"agent_id": "a1"})
    await hub.submit(id="t1")
    await hub.submit(id="t2")
    await hub.register("w1", ["code"], id="a1")
    await hub.post("/api/tasks/t1/cancel", {})
    await hub.post("/api/tasks/t2/cancel", {})
    assert [(await next_event(by_task))["type"] for _ in range(2)] == ["task_created", "task_assigned"]
    e = await next_event(by_task)
    assert (e["type"], e["data"]["task_id"]) == ("task_cancelled", "t2")
    assert (await next_event(by_agent))["type"] == "agent_created"
    e = await next_event(by_agent)
    assert e["type"] == "task_assigned" and e["data"]["agent_id"] == "a1"
    await by_task.close()
    await by_agent.close()


async def test_subscribe_changes_the_filter_and_answers_it(hub: Hub) -> None:
    ws = await hub.ws()
    reply = await ask(ws, {"type": "subscribe", "message_id": "s1", "data": {"types": ["task_cancelled"]}})
    assert reply["type"] == "subscribed"
    assert reply["data"] == {"types": ["task_cancelled"], "agent_id": None, "task_id": None}
    await hub.submit(id="t1")
    await hub.post("/api/tasks/t1/cancel", {})
    assert (await next_event(ws))["type"] == "task_cancelled"
    reply = await ask(
        ws, {"type": "subscribe", "message_id": "s2", "data": {"types": "task_created", "task_id": "t9"}}
    )
    assert reply["data"] == {"types": ["task_created"], "agent_id": None, "task_id": "t9"}
    await hub.submit(id="t8")
    await hub.submit(id="t9")
    e = await next_event(ws)
    assert e["data"]["task"]["id"] == "t9"
    await ws.close()


@pytest.mark.parametrize(
    "data",
    [{"types": ["bogus"]}, {"types": 5}, {"types": [1]}, {"agent_id": ["a"]}, {"task_id": {"x": 1}}],
)
async def test_a_bad_subscribe_is_refused_and_leaves_the_filter_as_it_was(hub: Hub, data: dict) -> None:
    ws = await hub.ws(params={"types": "task_cancelled"})
    reply = await ask(ws, {"type": "subscribe", "message_id": "bad", "data": data})
    assert (reply["type"], reply["data"]["code"]) == ("error", "invalid_input")
    now = await ask(ws, {"type": "subscribe", "message_id": "show", "data": {}})
    assert now["data"] == {"types": ["task_cancelled"], "agent_id": None, "task_id": None}
    await ws.close()


@pytest.mark.parametrize("query", [{"types": "bogus"}, {"since": "-1"}, {"since": "abc"}])
async def test_a_bad_query_is_refused_before_the_upgrade_with_422(hub: Hub, query: dict) -> None:
    with pytest.raises(WSServerHandshakeError) as exc:
        await hub.ws(params=query)
    assert exc.value.status == 422


async def test_a_plain_get_of_the_stream_is_400(hub: Hub) -> None:
    r = await hub.get("/ws")
    assert r.status == 400


# ------------------------------------------------------------------ snapshot and resume


async def test_snapshot_first_then_only_events_after_it(hub: Hub) -> None:
    await hub.register("w1", id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "nobody"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "nobody"}])
    await hub.post("/api/tasks/t2/cancel", {})
    ws = await hub.ws(params={"snapshot": "1"})
    snap = await recv(ws)
    assert snap["type"] == "snapshot"
    d = snap["data"]
    assert set(d) == {"sequence", "agents", "tasks", "status", "alerts"}
    assert d["sequence"] == await hub.head()
    assert [a["id"] for a in d["agents"]] == ["a1"]
    assert [(t["id"], t["status"]) for t in d["tasks"]] == [("t1", "pending"), ("t2", "cancelled")]
    assert d["status"]["metrics"]["total_tasks"] == 2
    await hub.submit(id="t3")
    e = await next_event(ws)
    assert e["type"] == "task_created" and e["data"]["task"]["id"] == "t3"
    assert e["sequence"] > d["sequence"]
    await ws.close()


async def test_since_replays_the_log_then_continues_live_without_gap_or_duplicate(hub: Hub) -> None:
    for i in range(5):
        await hub.submit(id=f"t{i}")
    logged = await hub.events(everything=True)
    cut = logged[1]["sequence"]
    ws = await hub.ws(params={"since": str(cut)})
    replayed = [await recv(ws) for _ in range(len(logged) - 2)]
    assert [m["sequence"] for m in replayed] == [e["sequence"] for e in logged[2:]]
    assert [m["data"]["task"]["id"] for m in replayed if m["type"] == "task_created"] == [
        e["data"]["task"]["id"] for e in logged[2:] if e["type"] == "task_created"
    ]
    await hub.submit(id="t5")
    live = await next_event(ws)
    assert live["data"]["task"]["id"] == "t5"
    seqs = [m["sequence"] for m in replayed] + [live["sequence"]]
    assert increasing(seqs)
    everything = [e["sequence"] for e in await hub.events(since=cut, everything=True)]
    assert everything[: len(seqs)] == seqs  # nothing skipped in between
    await ws.close()


async def test_since_zero_replays_everything_and_respects_the_types_filter(hub: Hub) -> None:
    await hub.submit(id="t1")
    await hub.submit(id="t2")
    await hub.post("/api/tasks/t1/cancel", {})
    ws = await hub.ws(params={"since": "0", "types": "task_cancelled"})
    e = await recv(ws)
    assert (e["type"], e["data"]["task_id"]) == ("task_cancelled", "t1")
    await hub.post("/api/tasks/t2/cancel", {})
    e = await recv(ws)
    assert (e["type"], e["data"]["task_id"]) == ("task_cancelled", "t2")
    await ws.close()


async def test_since_at_the_head_replays_nothing_and_goes_live(hub: Hub) -> None:
    await hub.submit(id="t1")
    ws = await hub.ws(params={"since": str(await hub.head())})
    await hub.submit(id="t2")
    e = await next_event(ws)
    assert e["data"]["task"]["id"] == "t2"
    await ws.close()


async def test_since_beyond_the_head_is_cursor_out_of_range_then_close_1008(hub: Hub) -> None:
    await hub.submit(id="t1")
    head = await hub.head()
    ws = await hub.ws(params={"since": str(head + 100)})
    code, reason, seen = await recv_close(ws)
    assert code == 1008
    assert reason.startswith("cursor_out_of_range:"), reason
    (err,) = seen
    assert err["type"] == "error" and err["data"]["code"] == "cursor_out_of_range"
    assert err["data"]["details"]["since"] == head + 100 and err["data"]["details"]["head"] >= head


# ------------------------------------------------------------------ control commands


async def test_ping_is_answered_pong_echoing_the_message_id(hub: Hub) -> None:
    ws = await hub.ws()
    reply = await ask(ws, {"type": "ping", "message_id": "p-1"})
    assert (reply["type"], reply["message_id"], reply["data"]) == ("pong", "p-1", {})
    await ws.close()


async def test_create_and_cancel_a_task_over_the_stream(hub: Hub) -> None:
    ws = await hub.ws()
    r = await ask(
        ws,
        {
            "type": "create_task",
            "message_id": "c1",
            "data": {"id": "t1", "description": "via ws", "priority": 3},
        },
    )
    assert r["type"] == "create_task_result"
    assert (r["data"]["task"]["id"], r["data"]["task"]["description"], r["data"]["task"]["priority"]) == (
        "t1",
        "via ws",
        3,
    )
    assert (await hub.get("/api/tasks/t1")).body["status"] == "pending"
    r = await ask(
        ws,
        {"type": "cancel_task", "message_id": "c2", "data": {"task_id": "t1", "reason": "changed my mind"}},
    )
    assert r["type"] == "cancel_task_result" and r["data"]["task"]["status"] == "cancelled"
    (e,) = await hub.events(types="task_cancelled")
    assert e["data"]["reason"] == "changed my mind"
    await ws.close()


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"type": "create_task", "data": {"priority": 9}}, "invalid_input"),
        ({"type": "create_task", "data": {"id": "taken"}}, "task_exists"),
        ({"type": "create_task", "data": {"depends_on": ["nope"]}}, "dependency_not_found"),
        ({"type": "cancel_task", "data": {}}, "invalid_input"),
        ({"type": "cancel_task", "data": {"task_id": "nope"}}, "task_not_found"),
        ({"type": "cancel_task", "data": {"task_id": "taken", "reason": "x" * 1001}}, "invalid_input"),
        ({"type": "launch_rockets"}, "unknown_message_type"),
        ({"type": "ping", "data": [1]}, "invalid_input"),
        ({"type": 7}, "invalid_input"),
        ({"data": {}}, "invalid_input"),
    ],
)
async def test_a_bad_command_gets_an_error_reply_and_the_connection_stays_open(
    hub: Hub, msg: dict, code: str
) -> None:
    await hub.submit(id="taken")
    ws = await hub.ws()
    await ws.send_json({**msg, "message_id": "m1"})
    reply, _ = await recv_until(ws, lambda m: m["type"] == "error")
    assert reply["data"]["code"] == code, reply
    assert set(reply["data"]) == {"code", "message", "details"}
    if isinstance(msg.get("type"), str) and not isinstance(msg.get("data", {}), list):
        assert reply["message_id"] == "m1"
    assert (await ask(ws, {"type": "ping", "message_id": "after"}))["type"] == "pong"
    assert [t["id"] for t in (await hub.get("/api/tasks")).body["tasks"]] == ["taken"]
    await ws.close()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"ping"', "null"])
async def test_a_frame_that_is_not_a_message_object_is_answered_with_an_error(hub: Hub, raw: str) -> None:
    ws = await hub.ws()
    await ws.send_str(raw)
    reply, _ = await recv_until(ws, lambda m: m["type"] == "error")
    assert reply["type"] == "error"
    assert reply["data"]["code"] == ("malformed_json" if raw.startswith("{not") else "invalid_input")
    assert (await ask(ws, {"type": "ping", "message_id": "after"}))["type"] == "pong"
    await ws.close()


async def test_a_non_string_message_id_is_refused_and_echoed_as_sent(hub: Hub) -> None:
    ws = await hub.ws()
    await ws.send_json({"type": "ping", "message_id": 42})
    reply, _ = await recv_until(ws, lambda m: m["type"] == "error")
    assert (reply["type"], reply["data"]["code"], reply["message_id"]) == ("error", "invalid_input", 42)
    await ws.close()


async def test_a_binary_frame_is_answered_unsupported_frame(hub: Hub) -> None:
    ws = await hub.ws()
    await ws.send_bytes(b'{"type": "ping"}')
    reply, _ = await recv_until(ws, lambda m: m["type"] == "error")
    assert (reply["type"], reply["data"]["code"]) == ("error", "unsupported_frame")
    assert (await ask(ws, {"type": "ping", "message_id": "after"}))["type"] == "pong"
    await ws.close()


async def test_get_status_answers_the_hive_status(hub: Hub) -> None:
    await hub.submit(id="t1")
    ws = await hub.ws()
    r = await ask(ws, {"type": "get_status", "message_id": "g1"})
    assert r["type"] == "get_status_result"
    assert r["data"]["metrics"]["total_tasks"] == 1
    assert r["data"]["subscribers"] == 1
    assert r["data"]["published_sequence"] == await hub.head()
    await ws.close()


async def test_a_deeply_nested_command_is_payload_too_large(hub: Hub) -> None:
    ws = await hub.ws()
    await ws.send_str(
        '{"type": "create_task", "message_id": "d", "data": {"input": ' + "[" * 80 + "]" * 80 + "}}"
    )
    reply, _ = await recv_until(ws, lambda m: m["type"] == "error")
    assert (reply["type"], reply["data"]["code"], reply["message_id"]) == ("error", "payload_too_large", "d")
    await ws.close()


async def test_control_commands_over_the_rate_limit_are_refused(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", rate_limit_per_second=0.5, rate_limit_burst=1)
    ws = await hub.ws()
    ok = await ask(ws, {"type": "create_task", "message_id": "c1", "data": {}})
    assert ok["type"] == "create_task_result"
    limited = await ask(ws, {"type": "create_task", "message_id": "c2", "data": {}})
    assert (limited["type"], limited["data"]["code"]) == ("error", "rate_limited")
    assert (await ask(ws, {"type": "ping", "message_id": "p"}))["type"] == "pong"  # not rate limited
    await ws.close()


# ------------------------------------------------------------------ close codes


async def test_a_frame_over_max_frame_bytes_closes_1009(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", max_frame_bytes=1024)
    ws = await hub.ws()
    await ws.send_str('{"type": "ping", "data": {"pad": "' + "x" * 2000 + '"}}')
    code, _, _ = await recv_close(ws)
    assert code == 1009


async def test_subscribers_are_closed_1001_when_the_hub_shuts_down(hub: Hub) -> None:
    ws = await hub.ws()
    assert (await ask(ws, {"type": "ping", "message_id": "p"}))["type"] == "pong"
    await hub.client.server.close()
    code, reason, _ = await recv_close(ws)
    assert (code, reason) == (1001, "hub shutting down")


async def test_since_with_a_task_filter_replays_only_that_task(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2")
    await hub.post("/api/tasks/t2/cancel", {})
    ws = await hub.ws(params={"since": "0", "task_id": "t2"})
    got = [await next_event(ws) for _ in range(2)]
    assert [(m["type"], m["sequence"]) for m in got] == [
        (e["type"], e["sequence"])
        for e in await hub.events()
        if e["data"].get("task_id") == "t2" or e["data"].get("task", {}).get("id") == "t2"
    ]
    assert [m["type"] for m in got] == ["task_created", "task_cancelled"]
    await ws.close()
