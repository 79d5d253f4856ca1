"""/ws acceptance against the real ``hive serve`` subprocess: live events, filters,
resume with ``since``, snapshots, control commands, errors, limits, compression
and the slow-subscriber cut-off."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websocket
from aiohttp import WSMsgType

from tests.conftest import TIME_SCALE
from tests.hubproc import Hub, wait_for

ENVELOPE = {"type", "data", "timestamp", "message_id", "sequence"}
#: Events the hive emits about itself on its own schedule (status ticks, alerts,
#: module states, learning, rebalancing). Tests that expect particular messages
#: skip these; tests that compare whole streams compare them against the log.
BACKGROUND = frozenset(
    {
        "hive_status_update",
        "system_alert",
        "resource_alert",
        "module_status_changed",
        "coordination_event",
        "inter_module_message",
        "learning_cycle_started",
        "learning_cycle_completed",
    }
)


# ----------------------------------------------------------------- helpers


@pytest.fixture
def quiet_hub(hub_factory: Any) -> Hub:
    """A hub whose REST-registered agents do not time out during the test."""
    h: Hub = hub_factory("--heartbeat-timeout", "120").start()
    return h


async def recv(
    ws: aiohttp.ClientWebSocketResponse, timeout: float = 10.0, raw: bool = False
) -> dict[str, Any]:
    """The next message; background events are skipped unless ``raw``."""
    while True:
        msg = await ws.receive(timeout=timeout * TIME_SCALE)
        assert msg.type == WSMsgType.TEXT, (msg, ws.close_code)
        out: dict[str, Any] = json.loads(msg.data)
        if raw or out["type"] not in BACKGROUND:
            return out


async def until_pong(
    ws: aiohttp.ClientWebSocketResponse, mid: str, raw: bool = False
) -> list[dict[str, Any]]:
    """Everything received before the pong to a ping sent now. Events published
    before the ping are queued ahead of the pong, so this is a barrier."""
    await ws.send_json({"type": "ping", "message_id": mid})
    out = []
    while True:
        m = await recv(ws, raw=raw)
        if m["type"] == "pong" and m["message_id"] == mid:
            return out
        out.append(m)


def routing_keys(e: dict[str, Any]) -> tuple[set[str], set[str]]:
    """The agent and task ids an event is about, as the /ws filters define them."""
    d = e["data"]
    agents, tasks = set(), set()
    for src in (
        d,
        d.get("details") or {},
        (d.get("error") or {}).get("details") or {} if isinstance(d.get("error"), dict) else {},
    ):
        if isinstance(src.get("agent_id"), str):
            agents.add(src["agent_id"])
        if isinstance(src.get("task_id"), str):
            tasks.add(src["task_id"])
    if isinstance(d.get("agent"), dict):
        agents.add(d["agent"]["id"])
    if isinstance(d.get("task"), dict):
        tasks.add(d["task"]["id"])
        if d["task"].get("assigned_agent_id"):
            agents.add(d["task"]["assigned_agent_id"])
    return agents, tasks


async def until_type(
    ws: aiohttp.ClientWebSocketResponse, typ: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The next message of type ``typ``, and the messages before it."""
    before = []
    while True:
        m = await recv(ws)
        if m["type"] == typ:
            return m, before
        before.append(m)


async def apost(h: Hub, path: str, body: Any = None, expect: int = 201) -> Any:
    return await asyncio.to_thread(h.post, path, body if body is not None else {}, expect)


def seqs(msgs: list[dict[str, Any]]) -> list[int]:
    return [m["sequence"] for m in msgs]


def last_seq(h: Hub) -> int:
    return int(h.get("/api/hive/status")["sequence"])


def agent_body(name: str, **caps: float) -> dict[str, Any]:
    return {"name": name, "capabilities": [{"name": n, "proficiency": p} for n, p in caps.items()]}


def create_tasks(h: Hub, n: int, tag: str) -> None:
    for i in range(n):
        h.post("/api/tasks", {"description": f"{tag}-{i}"}, expect=201)


# ----------------------------------------------------------------- live, filters, subscribe


async def test_live_events_arrive_after_connecting(quiet_hub: Hub) -> None:
    hub = quiet_hub
    await apost(hub, "/api/tasks", {"description": "before"})
    async with aiohttp.ClientSession() as s, s.ws_connect(hub.ws_url + "/ws") as ws:
        a = await apost(hub, "/api/agents", agent_body("live", x=0.5))
        m = await recv(ws)
        assert set(m) == ENVELOPE
        assert m["type"] == "agent_created"
        assert m["data"]["agent"]["id"] == a["id"]
        # the waiting task goes to the new agent
        assert [m["type"] for m in await until_pong(ws, "p1")] == ["task_assigned", "agent_status_changed"]
        t = await apost(hub, "/api/tasks", {"description": "after"})
        m2 = await recv(ws)
        assert m2["type"] == "task_created" and m2["data"]["task"]["id"] == t["id"]
        assert await until_pong(ws, "p2") == []
    log = {e["sequence"]: e for e in hub.events()}
    assert log[m["sequence"]] == m and log[m2["sequence"]] == m2


async def test_query_filters_types_agent_and_task(hub_factory: Any) -> None:
    h = hub_factory("--heartbeat-timeout", "120").start()
    a = h.post("/api/agents", agent_body("A", x=0.9), expect=201)["id"]
    h.post("/api/agents", agent_body("B", y=0.9), expect=201)
    base = last_seq(h)
    urls = {
        "types": "/ws?types=task_created,task_cancelled",
        "agent": f"/ws?agent_id={a}",
        "task": "/ws?task_id=T-1",
        "combo": f"/ws?types=task_assigned&agent_id={a}",
        "all": "/ws",
    }
    async with aiohttp.ClientSession() as s:
        socks = {k: await s.ws_connect(h.ws_url + u) for k, u in urls.items()}
        try:
            await apost(h, "/api/tasks", {"id": "T-1", "required_capabilities": [{"name": "x"}]})
            await apost(h, "/api/tasks", {"id": "T-2", "required_capabilities": [{"name": "y"}]})
            await apost(h, "/api/tasks/T-1/cancel", {}, expect=200)
            await apost(h, "/api/tasks/T-2/cancel", {}, expect=200)
            await apost(h, "/api/agents", agent_body("C", x=0.1))
            got = {k: await until_pong(ws, f"end-{k}", raw=True) for k, ws in socks.items()}
        finally:
            for ws in socks.values():
                await ws.close()
    log = [e for e in h.events() if e["sequence"] > base]

    def about_agent(e: dict[str, Any]) -> bool:
        return a in routing_keys(e)[0]

    def about_task(e: dict[str, Any]) -> bool:
        return "T-1" in routing_keys(e)[1]

    assert got["all"] == log
    assert got["types"] == [e for e in log if e["type"] in ("task_created", "task_cancelled")]
    assert len(got["types"]) == 4
    assert got["agent"] == [e for e in log if about_agent(e)]
    assert {e["type"] for e in got["agent"]} >= {"task_assigned", "agent_status_changed", "task_cancelled"}
    assert got["task"] == [e for e in log if about_task(e)]
    assert [e["type"] for e in got["task"] if e["type"] not in BACKGROUND] == [
        "task_created",
        "task_assigned",
        "task_cancelled",
    ]
    assert got["combo"] == [e for e in log if e["type"] == "task_assigned" and e["data"]["agent_id"] == a]
    assert len(got["combo"]) == 1


async def test_subscribe_changes_the_filter_mid_connection(quiet_hub: Hub) -> None:
    hub = quiet_hub
    async with aiohttp.ClientSession() as s, s.ws_connect(hub.ws_url + "/ws") as ws:
        await apost(hub, "/api/agents", agent_body("one"))
        assert (await recv(ws))["type"] == "agent_created"
        await ws.send_json({"type": "subscribe", "message_id": "s1", "data": {"types": ["task_created"]}})
        reply, before = await until_type(ws, "subscribed")
        assert before == []
        assert reply["message_id"] == "s1"
        assert reply["data"]["types"] == ["task_created"]
        await apost(hub, "/api/agents", agent_body("two"))
        t = await apost(hub, "/api/tasks", {"description": "seen"})
        got = await until_pong(ws, "b1")
        assert [(m["type"], m["data"]["task"]["id"]) for m in got] == [("task_created", t["id"])]

        # a bad subscribe is an error and leaves the filter as it was
        await ws.send_json({"type": "subscribe", "message_id": "s2", "data": {"types": ["no_such_event"]}})
        err, _ = await until_type(ws, "error")
        assert err["data"]["code"] == "invalid_input" and err["message_id"] == "s2"
        await apost(hub, "/api/agents", agent_body("three"))
        assert await until_pong(ws, "b2") == []

        # narrow to one task, then back to everything
        await ws.send_json({"type": "subscribe", "data": {"types": [], "task_id": t["id"]}})
        reply, _ = await until_type(ws, "subscribed")
        assert reply["data"] == {"types": None, "agent_id": None, "task_id": t["id"]}
        await apost(hub, "/api/tasks", {"description": "other"})
        await apost(hub, f"/api/tasks/{t['id']}/cancel", {}, expect=200)
        got = await until_pong(ws, "b3")
        assert [m["type"] for m in got] == ["task_cancelled"]
        await ws.send_json({"type": "subscribe", "data": {"task_id": None}})
        await until_type(ws, "subscribed")
        await apost(hub, "/api/agents", agent_body("four"))
        assert [m["type"] for m in await until_pong(ws, "b4")] == ["agent_created"]


# ----------------------------------------------------------------- since and snapshot


async def test_since_replays_exactly_then_continues_live(hub: Hub) -> None:
    await asyncio.to_thread(create_tasks, hub, 10, "old")
    since = 7
    async with aiohttp.ClientSession() as s:
        # events keep being created while the client connects, replays and goes live
        writer = asyncio.create_task(asyncio.to_thread(create_tasks, hub, 60, "during"))
        await asyncio.to_thread(wait_for, lambda: last_seq(hub) >= 20, 10, 0.005, "writer started")
        async with s.ws_connect(f"{hub.ws_url}/ws?since={since}") as ws:
            await writer
            await asyncio.to_thread(create_tasks, hub, 5, "after")
            got = await until_pong(ws, "end", raw=True)
    end = got[-1]["sequence"]
    log = hub.events()
    assert sum(e["type"] == "task_created" for e in log) == 75
    assert seqs(got) == list(range(since + 1, end + 1))
    assert got == log[since:end]

    # since = the latest: only live events; since = 0: everything
    async with aiohttp.ClientSession() as s:
        end = last_seq(hub)
        async with s.ws_connect(f"{hub.ws_url}/ws?since={end}&types=task_created") as ws:
            assert await until_pong(ws, "none") == []
            t = await apost(hub, "/api/tasks", {})
            assert [m["data"]["task"]["id"] for m in await until_pong(ws, "one")] == [t["id"]]
        async with s.ws_connect(f"{hub.ws_url}/ws?since=0&types=task_created") as ws:
            created = [e for e in hub.events() if e["type"] == "task_created"]
            assert len(created) == 76
            assert await until_pong(ws, "all") == created


async def test_snapshot_then_live_after_its_sequence(hub_factory: Any) -> None:
    h = hub_factory("--heartbeat-timeout", "120").start()
    a = h.post("/api/agents", agent_body("snap", x=0.9), expect=201)
    await asyncio.to_thread(create_tasks, h, 5, "old")
    async with aiohttp.ClientSession() as s:
        writer = asyncio.create_task(asyncio.to_thread(create_tasks, h, 40, "during"))
        await asyncio.to_thread(wait_for, lambda: last_seq(h) >= 15, 10, 0.005, "writer started")
        async with s.ws_connect(f"{h.ws_url}/ws?snapshot=1") as ws:
            snap = await recv(ws)
            await writer
            await asyncio.to_thread(create_tasks, h, 3, "after")  # at least these are live
            got = await until_pong(ws, "end", raw=True)
    assert snap["type"] == "snapshot"
    data = snap["data"]
    assert {"sequence", "agents", "tasks", "status"} <= set(data)
    S = data["sequence"]
    end = got[-1]["sequence"]
    assert 15 <= S < end
    assert [x["id"] for x in data["agents"]] == [a["id"]]
    log = h.events()
    created = [e["data"]["task"]["id"] for e in log if e["type"] == "task_created" and e["sequence"] <= S]
    assert sorted(t["id"] for t in data["tasks"]) == sorted(created)
    assert data["status"]["metrics"]["total_tasks"] == len(created)
    assert seqs(got) == list(range(S + 1, end + 1))
    assert got == log[S:end]


# ----------------------------------------------------------------- commands


async def test_ping_and_control_commands(hub: Hub) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(hub.ws_url + "/ws") as ws:
        await ws.send_json({"type": "ping", "message_id": "ping-1"})
        pong = await recv(ws)
        assert pong["type"] == "pong" and pong["message_id"] == "ping-1"

        await ws.send_json(
            {
                "type": "create_task",
                "message_id": "c-1",
                "data": {"description": "via ws", "priority": "high", "type": "etl"},
            }
        )
        res, before = await until_type(ws, "create_task_result")
        assert res["message_id"] == "c-1"
        task = res["data"]["task"]
        assert task["description"] == "via ws" and task["priority"] == 3 and task["status"] == "pending"
        # its event was published before the reply
        assert [(m["type"], m["data"]["task"]["id"]) for m in before] == [("task_created", task["id"])]
        assert hub.get(f"/api/tasks/{task['id']}")["type"] == "etl"

        await ws.send_json(
            {
                "type": "cancel_task",
                "message_id": "x-1",
                "data": {"task_id": task["id"], "reason": "not needed", "cancelled_by": "op-7"},
            }
        )
        res, before = await until_type(ws, "cancel_task_result")
        assert res["message_id"] == "x-1"
        assert res["data"]["task"]["status"] == "cancelled"
        assert [m["type"] for m in before] == ["task_cancelled"]
        assert before[0]["data"]["reason"] == "not needed" and before[0]["data"]["cancelled_by"] == "op-7"
        assert hub.get(f"/api/tasks/{task['id']}")["cancelled_by"] == "op-7"

        await ws.send_json({"type": "get_status", "message_id": "g-1"})
        res, _ = await until_type(ws, "get_status_result")
        assert res["message_id"] == "g-1"
        assert res["data"]["metrics"]["cancelled_tasks"] == 1
        assert res["data"]["sequence"] <= last_seq(hub)
        assert res["data"]["status"] == "healthy"


async def test_errors_keep_the_connection_open(hub: Hub) -> None:
    t = hub.post("/api/tasks", {}, expect=201)
    hub.post(f"/api/tasks/{t['id']}/cancel", {}, expect=200)
    deep = '{"type": "create_task", "data": {"input": ' + "[" * 5000 + "]" * 5000 + "}}"
    cases: list[tuple[str | bytes, str, str | None]] = [
        ("{not json", "malformed_json", None),
        ('{"type": "bogus", "message_id": "u1"}', "unknown_message_type", "u1"),
        ('{"type": "create_task", "message_id": "p9", "data": {"priority": 9}}', "invalid_input", "p9"),
        ('{"type": "create_task", "message_id": "f1", "data": {"colour": "red"}}', "invalid_input", "f1"),
        (
            '{"type": "cancel_task", "message_id": "c1", "data": {"task_id": "no-such-task"}}',
            "task_not_found",
            "c1",
        ),
        ('{"type": "cancel_task", "message_id": "c2", "data": {}}', "invalid_input", "c2"),
        (
            json.dumps({"type": "cancel_task", "message_id": "c3", "data": {"task_id": t["id"]}}),
            "invalid_transition",
            "c3",
        ),
        ("[1, 2]", "invalid_input", None),
        ('{"type": "ping", "data": 5}', "invalid_input", None),
        (deep, "payload_too_large", None),
        (b"\x00\x01binary", "unsupported_frame", None),
    ]
    async with aiohttp.ClientSession() as s, s.ws_connect(hub.ws_url + "/ws") as ws:
        for i, (frame, code, mid) in enumerate(cases):
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            err = await recv(ws)
            assert err["type"] == "error", (frame[:60], err)
            assert err["data"]["code"] == code, (frame[:60], err)
            assert isinstance(err["data"]["message"], str) and isinstance(err["data"]["details"], dict)
            assert err["message_id"] == mid
            assert await until_pong(ws, f"alive-{i}") == []
        assert not ws.closed
    assert hub.get("/health")["status"] == "healthy"
    assert "ws command failed" not in hub.logs()


async def test_bad_query_is_rejected_before_the_upgrade(hub: Hub) -> None:
    async with aiohttp.ClientSession() as s:
        for q in ("types=task_created,no_such_event", "since=abc", "since=-1"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                await s.ws_connect(f"{hub.ws_url}/ws?{q}")
            assert exc.value.status == 422, q
            async with s.get(f"{hub.url}/ws?{q}") as r:
                assert r.status == 422
                body = await r.json()
                assert body["error"]["code"] == "invalid_input"
        async with s.get(f"{hub.url}/ws?types=no_such_event") as r:
            assert (await r.json())["error"]["details"]["unknown"] == ["no_such_event"]


# ----------------------------------------------------------------- limits and compression


async def test_frame_over_the_limit_closes_with_1009(hub_factory: Any) -> None:
    h = hub_factory("--max-frame", "2048").start()
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(h.ws_url + "/ws") as ws:
            await ws.send_json({"type": "ping", "message_id": "x" * 1500})
            assert (await recv(ws))["type"] == "pong"
            await ws.send_json({"type": "ping", "message_id": "x" * 4096})
            msg = await ws.receive(timeout=10 * TIME_SCALE)
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED), msg
            assert ws.close_code == 1009
        # the hub is fine and serves the next client
        async with s.ws_connect(h.ws_url + "/ws") as ws:
            assert await until_pong(ws, "ok") == []
    assert h.get("/health")["status"] == "healthy"


async def test_permessage_deflate_is_negotiated_when_offered(hub: Hub) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(hub.ws_url + "/ws", compress=15) as ws:
            assert ws.compress
            assert "permessage-deflate" in ws._response.headers.get("Sec-WebSocket-Extensions", "")
            big = "compressible " * 700
            t = await apost(hub, "/api/tasks", {"description": big})
            m = await recv(ws)
            assert m["type"] == "task_created" and m["data"]["task"]["id"] == t["id"]
            assert m["data"]["task"]["description"] == big
        async with s.ws_connect(hub.ws_url + "/ws", compress=0) as ws:
            assert not ws.compress
            assert "permessage-deflate" not in ws._response.headers.get("Sec-WebSocket-Extensions", "")
            await apost(hub, "/api/tasks", {"description": "plain"})
            assert (await recv(ws))["type"] == "task_created"


# ----------------------------------------------------------------- slow subscriber


def _tcp_wmem_max() -> int:
    p = Path("/proc/sys/net/ipv4/tcp_wmem")
    if not p.exists():
        pytest.skip("needs Linux TCP buffer limits to size the flood")
    return int(p.read_text().split()[2])


def _read_frame(ws: websocket.WebSocket) -> tuple[int, bytes]:
    op, frame = ws.recv_data_frame(True)
    return op, frame.data


def _slow_subscriber_scenario(h: Hub, buffer: int, batch_size: int, desc_len: int) -> None:
    # since=0: both must see the whole log, including anything the hive logged at start
    slow = websocket.create_connection(
        h.ws_url + "/ws?since=0",
        timeout=30 * TIME_SCALE,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],
        skip_utf8_validation=True,
    )
    # (utf-8 validation off: websocket-client validates in pure Python, too slow to keep up)
    normal = websocket.create_connection(
        h.ws_url + "/ws?since=0", timeout=30 * TIME_SCALE, skip_utf8_validation=True
    )
    received: list[int] = []
    closed: list[bytes] = []

    def read_normal() -> None:
        while True:
            try:
                op, data = _read_frame(normal)
            except Exception as exc:  # noqa: BLE001 - reported through `closed`
                closed.append(repr(exc).encode())
                return
            if op == websocket.ABNF.OPCODE_CLOSE:
                closed.append(data)
                return
            if op == websocket.ABNF.OPCODE_TEXT:
                received.append(json.loads(data)["sequence"])

    reader = threading.Thread(target=read_normal, daemon=True)
    reader.start()
    try:
        # both past their replay of the (start-up) log and live before the flood: one
        # task the normal subscriber must see (its replay is not the scenario here)
        h.post("/api/tasks", {"type": "warm-up"}, expect=201)
        top = last_seq(h)
        wait_for(
            lambda: (received and received[-1] >= top) or closed, 30, what="the normal subscriber to go live"
        )
        assert not closed, closed
        # The slow client never reads and has a tiny receive window: once the hub's
        # socket buffers toward it are full, its queue grows past `buffer` and it must
        # be cut off. Size the flood from the kernel's send-buffer ceiling (an upper
        # bound on what it can hold) plus 1 MiB and a 25% margin, in real event sizes,
        # plus two batches; each batch waits for the normal reader.
        batch = [{"description": "x" * desc_len, "type": "flood"}] * batch_size
        made = 0
        total = None
        while total is None or made < total:
            out = h.post("/api/tasks/batch", {"tasks": batch}, expect=201)
            made += len(out["tasks"])
            if total is None:
                per_event = len(json.dumps(h.get("/api/events?types=task_created&limit=1")["events"][0]))
                total = int(1.25 * ((_tcp_wmem_max() + (1 << 20)) // per_event + buffer)) + 2 * batch_size
            status, health = h.request("GET", "/health")
            assert status == 200 and health["status"] != "unhealthy", health
            top = last_seq(h)
            wait_for(
                lambda top=top: (received and received[-1] >= top) or closed,
                30,
                what="the normal subscriber to keep up",
            )
            assert not closed, f"the normal subscriber was cut off after {made} tasks: {closed}"
        end = last_seq(h)
        wait_for(lambda: len(received) >= end, 10, what="the normal subscriber to get everything")
        assert received[:end] == list(range(1, end + 1))
        assert len(h.events(types="task_created")) == made + 1  # and the warm-up task
        # The stream recovers and nothing is unhealthy. (Loop lag and commit latency,
        # which other load on the machine can degrade, are not the subscriber's doing.)
        health_seen: list[Any] = []

        def recovered() -> bool:
            health = h.get("/health")
            health_seen[:] = [health]
            return bool(
                health["status"] != "unhealthy" and health["modules"]["event_stream"]["status"] == "healthy"
            )

        try:
            wait_for(recovered, 10, what="the event stream to recover after the flood")
        except AssertionError:
            mods = {
                k: (m["status"], m["reason"], m.get("signals"))
                for k, m in health_seen[0]["modules"].items()
                if m["status"] != "healthy"
            }
            raise AssertionError(f"hub not recovered after the flood: {mods}") from None

        # now the slow client reads: what was buffered, then the 1013 close naming where to resume
        got: list[int] = []
        while True:
            op, data = _read_frame(slow)
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
            if op == websocket.ABNF.OPCODE_TEXT:
                got.append(json.loads(data)["sequence"])
        code = struct.unpack("!H", data[:2])[0]
        reason = data[2:].decode()
        assert code == 1013, (code, reason)
        assert "since=" in reason
        resume = int(reason.rsplit("since=", 1)[1].split()[0])
        assert got == list(range(1, resume + 1))
        assert resume < made - buffer

        # resuming from there gives exactly the rest
        again = websocket.create_connection(
            f"{h.ws_url}/ws?since={resume}", timeout=30 * TIME_SCALE, skip_utf8_validation=True
        )
        try:
            again.send(json.dumps({"type": "ping", "message_id": "end"}))
            rest = []
            while True:
                m = json.loads(again.recv())
                if m["type"] == "pong":
                    break
                rest.append(m["sequence"])
            assert rest == list(range(resume + 1, rest[-1] + 1))
            assert rest[-1] >= end
        finally:
            again.close()
            again.shutdown()
        assert not closed, closed
        wait_for(
            lambda: h.get("/api/hive/status")["subscribers"] == 1, 10, what="only the normal subscriber left"
        )
    finally:
        for w in (normal, slow):
            w.close()
            w.shutdown()  # close() is a no-op once the server's close frame was read
        reader.join(10)


def test_slow_subscriber_is_cut_off_with_1013_and_others_get_everything(hub_factory: Any) -> None:
    """Batches of 40 tasks (each committed at once, below the 50-message buffer)."""
    h = hub_factory("--subscriber-buffer", "50").start()
    _slow_subscriber_scenario(h, buffer=50, batch_size=40, desc_len=2000)


def test_slow_subscriber_cut_off_while_1000_task_batches_reach_a_normal_subscriber(hub_factory: Any) -> None:
    """The issue's exact scenario: --subscriber-buffer 50 and POST /api/tasks/batch with 1000 tasks."""
    h = hub_factory("--subscriber-buffer", "50").start()
    _slow_subscriber_scenario(h, buffer=50, batch_size=1000, desc_len=500)
