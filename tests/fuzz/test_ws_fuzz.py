"""WebSocket fuzzing of ``/ws`` and ``/agents/ws`` (issue "Fuzzing in CI").

A seeded ``random.Random`` builds the same stream of a few hundred frames every
round: malformed JSON, valid JSON of the wrong shape (arrays, numbers, nesting
100+ deep, strings with unicode and NUL), wrong field types for every known
message type, unknown types, binary frames, and one frame over ``--max-frame``.

After every fuzz frame a probe with a known ``message_id`` is sent; everything
the hub answers before the probe's reply belongs to the fuzz frame (/ws handles
frames in order; /agents/ws reports errors synchronously, before any await, so
an error is never overtaken by the probe's). Assertions are about content and
connection state only, never about timing.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import websocket

from tests.hubproc import Hub

SEED = 0x41_56_45  # fixed: every run and every round sends the same stream
FRAMES_PER_STREAM = 300
MAX_FRAME = 65536
RECV_TIMEOUT = 15.0
MIB = 1 << 20
#: RSS growth allowed over 3 more rounds after the warm-up (generous: tasks created by
#: valid create_task frames legitimately stay in the hive's memory)
RSS_GROWTH_LIMIT = 20 * MIB

STREAM_REPLIES = {
    "error",
    "pong",
    "subscribed",
    "create_task_result",
    "cancel_task_result",
    "get_status_result",
}
AGENT_REPLIES = {"error", "ack", "registered", "assign", "cancel"}

Json = Any


@dataclass(frozen=True)
class Frame:
    payload: str | bytes  # bytes: sent as a binary frame
    must_error: bool  # a mistake: the hub must answer it with an error
    note: str

    def describe(self) -> str:
        shown = self.payload if isinstance(self.payload, str) else repr(self.payload)
        return f"{self.note}: {shown[:160]!r}"


# ----------------------------------------------------------------- generators


UNICODE = "h\u00e9llo \u2603 \U0001f41d \u202e rtl \u0000 nul \ufeff bom \u200b zw \uffff"
EVENT_TYPE = "task_created"


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def rand_text(rng: random.Random, n: int) -> str:
    alphabet = '{}[]":,\\ \x00\t\nabcxyz019-+.eE' + "\u00e9\u2603\U0001f41d\ufffd"
    return "".join(rng.choice(alphabet) for _ in range(n))


def wrong_values(rng: random.Random) -> Json:
    return rng.choice(
        [5, -1, 1.5, True, None, [], [1, "x"], {}, {"nested": {"x": [1]}}, "", UNICODE, "x" * 300]
    )


def not_str(rng: random.Random) -> Json:
    return rng.choice([5, 1.5, True, [], ["x"], {}, {"id": "x"}])


def not_dict(rng: random.Random) -> Json:
    return rng.choice([5, 0, 1.5, False, True, "", "x", UNICODE, [], [["name", "x"]], [1, 2]])


def not_unit(rng: random.Random) -> Json:
    return rng.choice([-0.1, 1.5, 1e300, "0.5", [0.5], {}, True, None])


def not_int(rng: random.Random) -> Json:
    return rng.choice(["1", 1.5, [], {}, "x"])


def obj(typ: Json, data: Json = None, *, mid: Json = "fuzz", with_data: bool = True) -> str:
    o: dict[str, Any] = {"type": typ, "message_id": mid}
    if with_data:
        o["data"] = data
    return json.dumps(o)


def malformed(rng: random.Random) -> Frame:
    choices = [
        "{",
        "}",
        '{"type": "ping"',
        '{"type": "ping",}',
        "{'type': 'ping'}",
        '{"type": ping}',
        "nul",
        "tru",
        "[1, 2",
        '"unterminated',
        "",
        " ",
        "\x00",
        '{"type": "ping"} trailing',
        '{"type": "ping", "data": {}}{"type": "ping"}',
        '{"type": "\\ud800"}',  # lone surrogate escape
        "\ufeff{}",
        "NaN",
        '{"type": "ping", "data": ' + "[" * 200,
    ]
    if rng.random() < 0.4:
        text = rand_text(rng, rng.randint(1, 80))
        try:
            json.loads(text)
        except ValueError:
            return Frame(text, True, "random garbage")
        return Frame("{" + text, True, "random garbage")
    if rng.random() < 0.3:  # a valid message cut short
        full = obj("ping", {"x": [1, 2, 3]})
        return Frame(full[: rng.randint(1, len(full) - 1)], True, "truncated")
    return Frame(rng.choice(choices), True, "malformed JSON")


def wrong_shape(rng: random.Random) -> Frame:
    choices = [
        "[]",
        '[{"type": "ping"}]',
        "42",
        "-1.5e300",
        "null",
        "true",
        '"ping"',
        json.dumps(UNICODE),
        "{}",
        '{"data": {}}',
        '{"type": 5}',
        '{"type": null}',
        '{"type": ["ping"]}',
        '{"type": {"name": "ping"}}',
        deep_array(rng.randint(100, 400)),
        deep_object(rng.randint(100, 400)),
        '{"type": "ping", "data": ' + deep_array(3000) + "}",
    ]
    if rng.random() < 0.3:  # "data" that is not an object
        return Frame(
            obj(rng.choice(["ping", "get_status", "subscribe"]), not_dict(rng)), True, "data not an object"
        )
    return Frame(rng.choice(choices), True, "wrong shape")


def unknown_type(rng: random.Random, known_elsewhere: list[str]) -> Frame:
    typ = rng.choice(
        ["", "PING", "Ping", " ping", "dance", "register", UNICODE, "\x00", "x" * 5000, *known_elsewhere]
    )
    return Frame(obj(typ, {}), True, "unknown type")


def binary(rng: random.Random) -> Frame:
    choices = [
        b"",
        b"\x00\xff\xfe",
        obj("ping", {}).encode(),
        bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))),
    ]
    return Frame(rng.choice(choices), True, "binary frame")


def stream_typed(rng: random.Random, real_task: str) -> Frame:
    """Known /ws types with wrong field types (must_error) or odd-but-valid ones."""
    kind = rng.choice(["subscribe", "create_task", "cancel_task", "get_status", "ping", "mid"])
    if kind == "subscribe":
        field = rng.choice(["types", "agent_id", "task_id"])
        if field == "types":
            bad = rng.choice(
                [
                    5,
                    1.5,
                    True,
                    {},
                    {"task_created": 1},
                    [1, 2],
                    [None],
                    [["task_created"]],
                    "no_such_event",
                    [EVENT_TYPE, 7],
                ]
            )
        else:
            bad = not_str(rng)
        return Frame(obj("subscribe", {field: bad}), True, f"subscribe.{field}")
    if kind == "create_task":
        field, bad = rng.choice(
            [
                ("description", 5),
                ("description", "x" * 10_001),
                ("type", ""),
                ("type", []),
                ("priority", "urgent"),
                ("priority", 99),
                ("priority", []),
                ("required_capabilities", "x"),
                ("required_capabilities", [{"name": 5}]),
                ("required_capabilities", [{"name": "x", "min_proficiency": 7}]),
                ("input", json.loads(deep_array(120))),
                ("timeout_seconds", -1),
                ("timeout_seconds", "x"),
                ("max_retries", 1000),
                ("max_retries", "x"),
                ("depends_on", "x"),
                ("depends_on", [5]),
                ("depends_on", ["no-such-task"]),
                ("id", 5),
                ("id", ""),
                ("id", "x" * 5000),
                ("id", real_task),  # already exists
                ("metadata", []),
                ("metadata", {"deep": json.loads(deep_array(120))}),
                ("bogus", 1),
            ]
        )
        return Frame(obj("create_task", {"description": "fuzz", field: bad}), True, f"create_task.{field}")
    if kind == "cancel_task":
        if rng.random() < 0.3:  # a real task with odd reason types: cancelled, or already terminal
            return Frame(
                obj(
                    "cancel_task",
                    {"task_id": real_task, "reason": wrong_values(rng), "cancelled_by": wrong_values(rng)},
                ),
                False,
                "cancel real",
            )
        bad = rng.choice([5, None, [], {}, True, "no-such-task", "", UNICODE])
        return Frame(obj("cancel_task", {"task_id": bad}), True, "cancel_task.task_id")
    if kind == "get_status":
        return Frame(obj("get_status", {"unexpected": wrong_values(rng)}), False, "get_status extra data")
    if kind == "ping":
        return Frame(
            obj("ping", {"x": wrong_values(rng)}, mid=wrong_values(rng)), False, "ping odd data/message_id"
        )
    # message_id of every type, on an otherwise valid message
    return Frame(
        obj("get_status", {}, mid=rng.choice([5, 1.5, [], {"a": 1}, True, UNICODE, "x" * 2000])),
        False,
        "odd message_id",
    )


def agent_typed(rng: random.Random, real_task: str) -> Frame:
    """Known agent types with wrong field types (must_error) or odd-but-valid ones."""
    typ = rng.choice(
        ["heartbeat", "task_started", "task_progress", "task_completed", "task_failed", "task_released"]
    )
    if typ == "heartbeat":
        return Frame(
            obj("heartbeat", {"x": wrong_values(rng)}, mid=wrong_values(rng)), False, "heartbeat odd data"
        )
    r = rng.random()
    if r < 0.25:
        return Frame(obj(typ, {"task_id": not_str(rng)}), True, f"{typ}.task_id type")
    if r < 0.4:
        return Frame(
            obj(typ, {"task_id": rng.choice(["no-such-task", "", UNICODE])}), True, f"{typ} unknown task"
        )
    if r < 0.55:
        return Frame(obj(typ, {"task_id": real_task, "attempt": not_int(rng)}), True, f"{typ}.attempt type")
    if r < 0.6:
        return Frame(
            obj(typ, {"task_id": real_task, "attempt": rng.choice([-1, 0, 10**6, 10**30])}),
            True,
            f"{typ} stale attempt",
        )
    # a field of the type's own with a wrong type, on the real task
    if typ == "task_progress":
        field, bad, err = rng.choice(
            [("progress", not_unit(rng), True), ("current_step", not_str(rng), True)]
        )
    elif typ == "task_completed":
        field, bad, err = rng.choice([("quality", not_unit(rng), True), ("result", wrong_values(rng), False)])
    elif typ == "task_failed":
        bad_error = rng.choice(
            [
                "x",
                5,
                [],
                {"code": 5, "message": "m"},
                {"code": "C"},
                {"code": "C", "message": "m", "details": []},
            ]
        )
        field, bad, err = rng.choice([("error", bad_error, True), ("retryable", wrong_values(rng), False)])
    elif typ == "task_released":
        field, bad, err = "reason", wrong_values(rng), False
    else:
        field, bad, err = "extra", wrong_values(rng), False
    if bad is None and field in ("quality", "current_step"):
        err = False  # null is the default for these
    # the state of the real task changes as the stream goes on (a valid report may
    # succeed): only wrong *types* are certain to be refused
    return Frame(obj(typ, {"task_id": real_task, field: bad}), err, f"{typ}.{field}")


def fuzz_stream(side: str, real_task: str) -> list[Frame]:
    rng = random.Random(f"{SEED}:{side}")
    if side == "stream":
        typed: Callable[[random.Random, str], Frame] = stream_typed
        foreign = ["heartbeat", "task_started", "task_completed", "assign"]
    else:
        typed = agent_typed
        foreign = ["ping", "subscribe", "create_task", "get_status", "registered"]
    frames = []
    for _ in range(FRAMES_PER_STREAM):
        r = rng.random()
        if r < 0.2:
            frames.append(malformed(rng))
        elif r < 0.4:
            frames.append(wrong_shape(rng))
        elif r < 0.5:
            frames.append(unknown_type(rng, foreign))
        elif r < 0.58:
            frames.append(binary(rng))
        else:
            frames.append(typed(rng, real_task))
    return frames


def first_frames() -> list[Frame]:
    """Bad first frames for /agents/ws: each must be refused (error, then close 1008)."""
    rng = random.Random(f"{SEED}:register")
    frames = [malformed(rng) for _ in range(6)] + [wrong_shape(rng) for _ in range(6)]
    frames += [
        Frame(obj("ping", {}), True, "not register"),
        Frame(obj("heartbeat", {}), True, "not register"),
        Frame(obj("REGISTER", {"name": "x"}), True, "wrong case"),
        Frame(obj("register", None), True, "no name"),
        Frame(obj("register", {"name": 5}), True, "name type"),
        Frame(obj("register", {"name": ""}), True, "empty name"),
        Frame(obj("register", {"name": "x", "capabilities": "x"}), True, "capabilities type"),
        Frame(
            obj("register", {"name": "x", "capabilities": [{"name": "c", "proficiency": 2}]}),
            True,
            "proficiency",
        ),
        Frame(obj("register", {"name": "x", "max_concurrent_tasks": 0}), True, "concurrency"),
        Frame(obj("register", {"name": "x", "type": "boss"}), True, "agent type"),
        Frame(obj("register", {"name": "x", "id": 5}), True, "id type"),
        Frame(obj("register", {"name": "x", "metadata": []}), True, "metadata type"),
        Frame(obj("register", {"name": "x", "running": "x"}), True, "running type"),
        Frame(obj("register", {"name": "x", "running": {"t": "x"}}), True, "running value"),
        Frame(obj("register", {"name": "x", "bogus": 1}), True, "unknown field"),
        Frame(obj("register", {"name": "x", "metadata": {"d": json.loads(deep_array(150))}}), True, "deep"),
    ]
    frames += [Frame(obj("register", not_dict(rng)), True, "data not an object") for _ in range(6)]
    return frames


# ----------------------------------------------------------------- plumbing


def connect(url: str) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=RECV_TIMEOUT, enable_multithread=False)


def send(ws: websocket.WebSocket, frame: Frame) -> None:
    if isinstance(frame.payload, bytes):
        ws.send_binary(frame.payload)
    else:
        ws.send(frame.payload)


def recv_json(ws: websocket.WebSocket) -> dict[str, Any]:
    opcode, data = ws.recv_data(control_frame=False)
    assert opcode == websocket.ABNF.OPCODE_TEXT, f"hub sent opcode {opcode}"
    m = json.loads(data)
    assert isinstance(m, dict) and isinstance(m.get("type"), str), m
    return m


def recv_close_code(ws: websocket.WebSocket) -> int:
    """Read until the hub's close frame; return its status code."""
    while True:
        frame = ws.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            return int(struct.unpack("!H", frame.data[:2])[0]) if len(frame.data) >= 2 else 1005


def assert_error_shape(m: dict[str, Any], frame: Frame) -> None:
    assert m["type"] == "error", (frame.describe(), m)
    data = m.get("data")
    assert isinstance(data, dict) and isinstance(data.get("code"), str) and data["code"], (
        frame.describe(),
        m,
    )
    assert data["code"] != "internal_error", (frame.describe(), m)
    assert isinstance(data.get("message"), str) and isinstance(data.get("details"), dict), (
        frame.describe(),
        m,
    )


def window(
    ws: websocket.WebSocket, probe_id: str, replies: set[str], known_events: set[str]
) -> list[dict[str, Any]]:
    """Messages up to and excluding the probe's reply (events are skipped)."""
    out = []
    while True:
        m = recv_json(ws)
        if m.get("message_id") == probe_id:
            assert m["type"] in ("pong", "error"), m
            if m["type"] == "error":
                assert m["data"]["code"] != "internal_error", m
            return out
        if m["type"] in replies:
            if m["type"] == "error":
                assert m["data"]["code"] != "internal_error", m
            out.append(m)
        else:
            assert m["type"] in known_events, f"unexpected message type from the hub: {m}"


def oversized(side: str) -> str:
    typ = "ping" if side == "stream" else "heartbeat"
    return json.dumps({"type": typ, "data": {"pad": "x" * (MAX_FRAME + 1024)}})


# ----------------------------------------------------------------- rounds


def make_task(hub: Hub, capability: str) -> str:
    status, t = hub.request(
        "POST", "/api/tasks", {"description": "fuzz target", "required_capabilities": [{"name": capability}]}
    )
    assert status == 201, (status, t)
    return str(t["id"])


def fuzz_stream_socket(hub: Hub, events: set[str]) -> int:
    """One round on /ws. Returns the number of frames answered with an error."""
    real_task = make_task(hub, "nobody-has-this")
    frames = fuzz_stream("stream", real_task)
    errors = 0
    ws = connect(hub.ws_url + "/ws")
    try:
        for n, frame in enumerate(frames):
            send(ws, frame)
            probe = f"probe-{n}"
            ws.send(json.dumps({"type": "ping", "message_id": probe}))
            got = window(ws, probe, STREAM_REPLIES, events)
            # /ws answers every frame exactly once, in order
            assert len(got) == 1, (frame.describe(), got)
            if frame.must_error:
                assert_error_shape(got[0], frame)
            errors += got[0]["type"] == "error"
        # a frame over --max-frame closes this connection with 1009 ...
        ws.send(oversized("stream"))
        assert recv_close_code(ws) == 1009
    finally:
        ws.close()
    # ... and the hub goes on: a new connection works
    ws = connect(hub.ws_url + "/ws")
    try:
        ws.send(json.dumps({"type": "ping", "message_id": "after-1009"}))
        assert window(ws, "after-1009", STREAM_REPLIES, events) == []
    finally:
        ws.close()
    return errors


def register(hub: Hub, name: str, capability: str) -> websocket.WebSocket:
    ws = connect(hub.ws_url + "/agents/ws")
    ws.send(
        json.dumps(
            {
                "type": "register",
                "message_id": "reg",
                "data": {"name": name, "capabilities": [{"name": capability, "proficiency": 0.9}]},
            }
        )
    )
    m = recv_json(ws)
    assert m["type"] == "registered", m
    return ws


def fuzz_agent_socket(hub: Hub, round_no: int) -> int:
    capability = f"fuzz-{round_no}"
    ws = register(hub, f"fuzz-agent-{round_no}", capability)
    errors = 0
    try:
        real_task = make_task(hub, capability)  # assigned to this agent
        for n, frame in enumerate(fuzz_stream("agent", real_task)):
            send(ws, frame)
            probe = f"probe-{n}"
            # always refused, synchronously: its reply closes the window
            ws.send(json.dumps({"type": "task_started", "message_id": probe, "data": {}}))
            got = window(ws, probe, AGENT_REPLIES, set())
            errs = [m for m in got if m["type"] == "error"]
            if frame.must_error:
                assert errs, (frame.describe(), got)
                for m in errs:
                    assert_error_shape(m, frame)
            errors += bool(errs)
        ws.send(oversized("agent"))
        assert recv_close_code(ws) == 1009
    finally:
        ws.close()
    return errors


def fuzz_agent_first_frame(hub: Hub) -> None:
    for frame in first_frames():
        ws = connect(hub.ws_url + "/agents/ws")
        try:
            send(ws, frame)
            if isinstance(frame.payload, str):
                assert_error_shape(recv_json(ws), frame)
            assert recv_close_code(ws) == 1008, frame.describe()
        finally:
            ws.close()
    for payload in (b'{"type": "register", "data": {"name": "bin"}}', oversized("agent")):
        ws = connect(hub.ws_url + "/agents/ws")
        try:
            send(ws, Frame(payload, True, "first frame"))
            code = recv_close_code(ws)
            assert code == (1008 if isinstance(payload, bytes) else 1009), (payload[:40], code)
        finally:
            ws.close()


def one_round(hub: Hub, round_no: int, events: set[str]) -> None:
    stream_errors = fuzz_stream_socket(hub, events)
    agent_errors = fuzz_agent_socket(hub, round_no)
    fuzz_agent_first_frame(hub)
    # the stream is mostly mistakes: make sure the fuzzing did not go vacuous
    assert stream_errors > FRAMES_PER_STREAM // 2
    assert agent_errors > FRAMES_PER_STREAM // 2


# ----------------------------------------------------------------- test


@pytest.fixture
def ws_hub(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub(tmp_path / "hive.db", "--rate-limit", "0", "--max-frame", str(MAX_FRAME)).start()
    try:
        yield hub
    finally:
        hub.stop()


def test_ws_fuzz(ws_hub: Hub) -> None:
    from hivehub.core.events import DATA_TYPES

    events = set(DATA_TYPES)
    assert ws_hub.proc is not None
    proc = psutil.Process(ws_hub.proc.pid)

    one_round(ws_hub, 0, events)  # warm-up: caches, code paths, allocator arenas
    rss_before = proc.memory_info().rss
    for round_no in (1, 2, 3):
        one_round(ws_hub, round_no, events)
    rss_after = proc.memory_info().rss

    status, health = ws_hub.request("GET", "/health")
    assert isinstance(health, dict) and health.get("status") != "unhealthy", (status, health)
    logs = ws_hub.logs()
    assert "Traceback" not in logs, logs[-5000:]
    assert "internal error" not in logs and "internal_error" not in logs, logs[-5000:]
    growth = rss_after - rss_before
    assert growth < RSS_GROWTH_LIMIT, (
        f"hub RSS grew {growth / MIB:.1f} MiB over 3 fuzz rounds ({rss_before / MIB:.1f} -> {rss_after / MIB:.1f} MiB)"
    )
