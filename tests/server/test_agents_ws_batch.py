"""Batch frames on /agents/ws (docs/agent-protocol.md 3.1): a JSON array of
messages in one text frame is run exactly as if each had come in its own frame:
in order, each answered on its own, each its own logged event."""

from __future__ import annotations

import json
from typing import Any

from hivehub.server.agents import MAX_BATCH

from .conftest import Hub, recv, recv_until
from .test_agents_ws import assigned, connect, report


def msg(typ: str, mid: str, **data: Any) -> dict[str, Any]:
    return {"type": typ, "message_id": mid, "data": data}


async def replies(ws: Any, mids: set[str]) -> dict[str, dict[str, Any]]:
    """The answers (ack or error) to the messages ``mids``, by message_id."""
    out: dict[str, dict[str, Any]] = {}
    while mids - out.keys():
        m, _ = await recv_until(ws, lambda m: m.get("message_id") in mids)
        out[m["message_id"]] = m
    return out


async def test_registered_announces_max_batch(hub: Hub) -> None:
    ws, reg = await connect(hub, id="a1")
    assert reg["max_batch"] == MAX_BATCH
    await ws.close()


async def test_a_batch_is_each_message_in_order_each_acked_and_logged(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1", max_concurrent_tasks=2)
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "code"}])
    assert {(await assigned(ws))["task"]["id"], (await assigned(ws))["task"]["id"]} == {"t1", "t2"}
    before = len(await hub.events())
    batch = [
        msg("task_started", "s1", task_id="t1", attempt=1),
        msg("task_completed", "c1", task_id="t1", attempt=1, result={"n": 1}),
        msg("task_started", "s2", task_id="t2", attempt=1),
        msg(
            "task_failed",
            "f2",
            task_id="t2",
            attempt=1,
            error={"code": "X", "message": "no"},
            retryable=False,
        ),
    ]
    await ws.send_str(json.dumps(batch))
    got = await replies(ws, {"s1", "c1", "s2", "f2"})
    assert {k: (m["type"], m["data"]["type"]) for k, m in got.items()} == {
        "s1": ("ack", "task_started"),
        "c1": ("ack", "task_completed"),
        "s2": ("ack", "task_started"),
        "f2": ("ack", "task_failed"),
    }
    events = [(e["type"], e["data"].get("task_id")) for e in (await hub.events())[before:]]
    assert [e for e in events if e[0] in ("task_started", "task_completed", "task_failed")] == [
        ("task_started", "t1"),
        ("task_completed", "t1"),
        ("task_started", "t2"),
        ("task_failed", "t2"),
    ]
    assert (await hub.get("/api/tasks/t1")).body["result"] == {"n": 1}
    await ws.close()


async def test_a_bad_message_in_a_batch_is_refused_alone(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    batch = [
        msg("task_started", "s1", task_id="t1", attempt=1),
        msg("task_progress", "bad", task_id="t1", attempt=1, progress="half"),
        "not a message",
        msg("task_completed", "c1", task_id="t1", attempt=1, result=None),
    ]
    await ws.send_str(json.dumps(batch))
    got = await replies(ws, {"s1", "bad", "c1"})
    assert (got["s1"]["type"], got["c1"]["type"]) == ("ack", "ack")
    assert (got["bad"]["type"], got["bad"]["data"]["code"]) == ("error", "invalid_input")
    assert (await hub.get("/api/tasks/t1")).body["status"] == "completed"
    await ws.close()


async def test_an_empty_or_oversized_batch_runs_nothing_and_is_answered(hub: Hub) -> None:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await assigned(ws)
    for batch in ([], [msg("task_started", f"s{i}", task_id="t1", attempt=1) for i in range(MAX_BATCH + 1)]):
        await ws.send_str(json.dumps(batch))
        err = await recv(ws)
        assert (err["type"], err["data"]["code"], err["message_id"]) == ("error", "invalid_input", None)
        assert err["data"]["details"]["limit"] == MAX_BATCH
    assert (await hub.get("/api/tasks/t1")).body["status"] == "assigned"
    assert (await report(ws, "task_started", "after", task_id="t1", attempt=1))["type"] == "ack"  # still open
    await ws.close()
