"""Bad input over REST (and the agent socket) against the real hub: the right
4xx with ``{"error": {"code", "message", "details"}}``, never a 500."""

from __future__ import annotations

import json
import socket
import struct
import urllib.error
import urllib.request
from typing import Any

import pytest
import websocket

from tests.hubproc import Hub


def assert_error(resp: tuple[int, Any], status: int, code: str) -> dict[str, Any]:
    got_status, body = resp
    assert got_status == status, resp
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, body
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    return err


WRITE_ROUTES = [
    ("POST", "/api/agents"),
    ("POST", "/api/tasks"),
    ("POST", "/api/tasks/batch"),
    ("PATCH", "/api/agents/{agent}"),
    ("POST", "/api/tasks/{task}/cancel"),
    ("POST", "/api/tasks/{task}/retry"),
    ("POST", "/api/tasks/{task}/start"),
    ("POST", "/api/tasks/{task}/progress"),
    ("POST", "/api/tasks/{task}/complete"),
    ("POST", "/api/tasks/{task}/fail"),
    ("POST", "/api/tasks/{task}/release"),
]


@pytest.fixture
def ids(hub: Hub) -> dict[str, str]:
    a = hub.post("/api/agents", {"name": "target"}, expect=201)
    t = hub.post("/api/tasks", {"required_capabilities": [{"name": "nobody"}]}, expect=201)
    return {"agent": a["id"], "task": t["id"]}


def test_malformed_json_is_400_everywhere(hub: Hub, ids: dict[str, str]) -> None:
    for method, path in WRITE_ROUTES:
        url = path.format(**ids)
        for raw in (b"{", b'{"name": }', b"\xff\xfe\x00", b'{"a": 1} trailing', b"{'single': 1}"):
            assert_error(hub.request(method, url, raw=raw), 400, "malformed_json")
    assert hub.get("/health")["status"] == "healthy"
    assert "unhandled error" not in hub.logs()


def test_wrong_types_out_of_range_and_unknown_fields_are_422(hub: Hub, ids: dict[str, str]) -> None:
    t, a = ids["task"], ids["agent"]
    cases: list[tuple[str, str, Any]] = [
        # tasks
        ("POST", "/api/tasks", {"priority": 9}),
        ("POST", "/api/tasks", {"priority": 0}),
        ("POST", "/api/tasks", {"priority": "urgent"}),
        ("POST", "/api/tasks", {"priority": 2.5}),
        ("POST", "/api/tasks", {"description": 5}),
        ("POST", "/api/tasks", {"description": "x" * 10_001}),
        ("POST", "/api/tasks", {"type": ""}),
        ("POST", "/api/tasks", {"timeout_seconds": 0}),
        ("POST", "/api/tasks", {"timeout_seconds": -1}),
        ("POST", "/api/tasks", {"timeout_seconds": "soon"}),
        ("POST", "/api/tasks", {"max_retries": -1}),
        ("POST", "/api/tasks", {"max_retries": 101}),
        ("POST", "/api/tasks", {"required_capabilities": "python"}),
        ("POST", "/api/tasks", {"required_capabilities": [{"name": "py", "min_proficiency": 1.5}]}),
        ("POST", "/api/tasks", {"required_capabilities": [{"min_proficiency": 0.5}]}),
        ("POST", "/api/tasks", {"depends_on": "abc"}),
        ("POST", "/api/tasks", {"unknown_field": 1}),
        ("POST", "/api/tasks", {"id": ""}),
        ("POST", "/api/tasks", [1, 2, 3]),
        ("POST", "/api/tasks", "a string"),
        ("POST", "/api/tasks", 42),
        ("POST", "/api/tasks", {"priority": 10**40}),
        ("POST", "/api/tasks/batch", {"tasks": {}}),
        ("POST", "/api/tasks/batch", {"tasks": [{"priority": 7}]}),
        ("POST", "/api/tasks/batch", {"tasks": [], "extra": 1}),
        # agents
        ("POST", "/api/agents", {}),
        ("POST", "/api/agents", {"name": ""}),
        ("POST", "/api/agents", {"name": 7}),
        ("POST", "/api/agents", {"name": "a", "type": "robot"}),
        ("POST", "/api/agents", {"name": "a", "capabilities": [{"name": "x", "proficiency": 1.01}]}),
        ("POST", "/api/agents", {"name": "a", "capabilities": [{"name": "x", "proficiency": -0.1}]}),
        ("POST", "/api/agents", {"name": "a", "capabilities": [{"name": "x"}]}),
        ("POST", "/api/agents", {"name": "a", "max_concurrent_tasks": 0}),
        ("POST", "/api/agents", {"name": "a", "max_concurrent_tasks": "many"}),
        ("POST", "/api/agents", {"name": "a", "colour": "red"}),
        ("PATCH", f"/api/agents/{a}", {}),
        ("PATCH", f"/api/agents/{a}", {"capabilities": [{"name": "x", "proficiency": 2}]}),
        ("PATCH", f"/api/agents/{a}", {"status": "idle"}),
        ("PATCH", f"/api/agents/{a}", {"max_concurrent_tasks": -3}),
        # task reports and commands
        ("POST", f"/api/tasks/{t}/cancel", {"reason": 5}),
        ("POST", f"/api/tasks/{t}/cancel", {"why": "x"}),
        ("POST", f"/api/tasks/{t}/retry", {"by": "x"}),
        ("POST", f"/api/tasks/{t}/start", {}),
        ("POST", f"/api/tasks/{t}/progress", {"agent_id": a, "progress": 1.5}),
        ("POST", f"/api/tasks/{t}/complete", {"agent_id": a, "quality": -1}),
        ("POST", f"/api/tasks/{t}/fail", {"agent_id": a, "error": "boom"}),
        ("POST", f"/api/tasks/{t}/release", {"agent_id": 5}),
    ]
    for method, path, body in cases:
        assert_error(hub.request(method, path, body), 422, "invalid_input")
    for raw in (
        b'{"timeout_seconds": 1e400}',
        b'{"priority": 1e400}',
        b'{"input": 1e400, "max_retries": 1.5}',
    ):
        assert_error(hub.request("POST", "/api/tasks", raw=raw), 422, "invalid_input")
    # unknown dependency: its own code, still 422
    assert_error(
        hub.request("POST", "/api/tasks", {"depends_on": ["no-such-task"]}), 422, "dependency_not_found"
    )
    # query parameters
    for q in (
        "/api/tasks?limit=abc",
        "/api/tasks?limit=-1",
        "/api/agents?limit=100000",
        "/api/events?since=abc",
        "/api/agents/x/claim?wait=61",
    ):
        method = "POST" if q.endswith("wait=61") else "GET"
        if method == "POST":
            # an unknown agent is found out first; use the real one
            q = q.replace("/x/", f"/{a}/")
        assert_error(hub.request(method, q), 422, "invalid_input")
    # nothing was created by any of that
    assert hub.get("/api/hive/status")["metrics"]["total_tasks"] == 1
    assert hub.get("/api/hive/status")["metrics"]["total_agents"] == 1
    assert "unhandled error" not in hub.logs()


def test_unknown_ids_are_404(hub: Hub, ids: dict[str, str]) -> None:
    nope = "no-such-id"
    for method, path, body in [
        ("GET", f"/api/tasks/{nope}", None),
        ("POST", f"/api/tasks/{nope}/cancel", {}),
        ("POST", f"/api/tasks/{nope}/retry", {}),
        ("POST", f"/api/tasks/{nope}/start", {"agent_id": ids["agent"]}),
        ("POST", f"/api/tasks/{nope}/progress", {"agent_id": ids["agent"], "progress": 0.5}),
        ("POST", f"/api/tasks/{nope}/complete", {"agent_id": ids["agent"]}),
        ("POST", f"/api/tasks/{nope}/fail", {"agent_id": ids["agent"]}),
        ("POST", f"/api/tasks/{nope}/release", {"agent_id": ids["agent"]}),
    ]:
        assert_error(hub.request(method, path, body), 404, "task_not_found")
    for method, path, body in [
        ("GET", f"/api/agents/{nope}", None),
        ("PATCH", f"/api/agents/{nope}", {"name": "x"}),
        ("DELETE", f"/api/agents/{nope}", None),
        ("POST", f"/api/agents/{nope}/heartbeat", None),
        ("POST", f"/api/agents/{nope}/claim", None),
    ]:
        assert_error(hub.request(method, path, body), 404, "agent_not_found")
    assert_error(hub.request("GET", "/api/nothing-here"), 404, "not_found")
    assert_error(hub.request("PUT", "/api/tasks"), 405, "method_not_allowed")
    # a report from an agent that does not hold the task is a conflict, not a 404 or 500
    assert_error(
        hub.request("POST", f"/api/tasks/{ids['task']}/start", {"agent_id": ids["agent"], "attempt": 1}),
        409,
        "not_task_holder",
    )
    assert_error(hub.request("POST", f"/api/agents/{nope}/reset-learning", {}), 404, "agent_not_found")
    # a task id that is taken: its own code, like agent_exists
    assert_error(hub.request("POST", "/api/tasks", {"id": ids["task"]}), 409, "task_exists")
    assert_error(
        hub.request("POST", "/api/tasks/batch", {"tasks": [{"id": ids["task"]}]}), 409, "task_exists"
    )
    assert "unhandled error" not in hub.logs()


def test_size_and_depth_limits_are_413(hub_factory: Any) -> None:
    h = hub_factory("--max-body", "4096").start()
    # over --max-body
    assert_error(h.request("POST", "/api/tasks", {"description": "x" * 5000}), 413, "payload_too_large")
    assert_error(
        h.request("POST", "/api/tasks/batch", {"tasks": [{"description": "y" * 100}] * 50}),
        413,
        "payload_too_large",
    )
    # just under it is fine
    h.post("/api/tasks", {"description": "x" * 3000}, expect=201)
    # JSON deeper than 64 levels, at the top and inside a field, and far deeper
    for depth in (65, 100, 1000, 2000):
        assert_error(
            h.request("POST", "/api/tasks", raw=b"[" * depth + b"]" * depth), 413, "payload_too_large"
        )
        nested = b'{"input": ' + b"[" * depth + b"]" * depth + b"}"
        assert_error(h.request("POST", "/api/tasks", raw=nested), 413, "payload_too_large")
        nested_obj = b'{"input": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
        assert_error(h.request("POST", "/api/tasks", raw=nested_obj), 413, "payload_too_large")
    # 64 levels are allowed
    ok = {"input": json.loads("[" * 63 + "]" * 63)}
    h.post("/api/tasks", ok, expect=201)
    assert h.get("/health")["status"] == "healthy"
    assert "unhandled error" not in h.logs()


def test_bad_agent_socket_input_never_an_internal_error(hub: Hub) -> None:
    """The agent gateway (/agents/ws) answers bad frames with error codes, not internal errors."""
    deep = (
        '{"type": "register", "data": {"name": "deep", "metadata": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}"
    )
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(deep)
        err = json.loads(ws.recv())
        assert err["type"] == "error"
        assert err["data"]["code"] == "payload_too_large", err
    finally:
        ws.close()
        ws.shutdown()
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(json.dumps({"type": "register", "data": {"name": "ok"}}))
        assert json.loads(ws.recv())["type"] == "registered"
        for frame, code in (
            ('{"type": "dance"}', "unknown_message_type"),
            ('{"type": "task_started", "data": {}}', "invalid_input"),
            ('{"type": "task_started", "data": {"task_id": "no-such-task"}}', "task_not_found"),
            ('{"type": "heartbeat", "data": {"x": ' + "[" * 5000 + "]" * 5000 + "}}", "payload_too_large"),
        ):
            ws.send(frame)
            while True:
                m = json.loads(ws.recv())
                if m["type"] == "error":
                    break
            assert m["data"]["code"] == code, (frame[:40], m)
    finally:
        ws.close()
        ws.shutdown()
    assert "Traceback" not in hub.logs()


def test_agent_socket_malformed_json_code_matches_rest_and_stream(hub: Hub) -> None:
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(json.dumps({"type": "register", "data": {"name": "ok"}}))
        assert json.loads(ws.recv())["type"] == "registered"
        ws.send("{nope")
        while True:
            m = json.loads(ws.recv())
            if m["type"] == "error":
                break
        assert m["data"]["code"] == "malformed_json", m
    finally:
        ws.close()
        ws.shutdown()


# ----------------------------------------------------------------- issue 11, items 18-21


def _fill(path: str, ids: dict[str, str]) -> str:
    path = path.replace("{id}", ids["agent"] if path.startswith("/api/agents/") else ids["task"])
    return path.replace("{name}", "pool").replace("{owner}", "someone")  # quotas, budgets


def test_body_that_is_not_utf8_is_400_on_every_json_endpoint(hub: Hub, ids: dict[str, str]) -> None:
    doc = hub.get("/api/openapi.json")
    routes = [
        (m.upper(), p) for p, ops in doc["paths"].items() for m, op in ops.items() if "requestBody" in op
    ]
    assert len(routes) >= 11, routes
    for method, path in routes:
        for raw in (b'{"name": "\xff"}', b'{"reason": "caf\xc3"}', b'{"\xfe": 1}'):
            assert_error(hub.request(method, _fill(path, ids), raw=raw), 400, "malformed_json")
    assert "unhandled error" not in hub.logs() and "Traceback" not in hub.logs()


def test_duplicate_capability_names_are_invalid_input(hub: Hub, ids: dict[str, str]) -> None:
    twice = [{"name": "x", "proficiency": 0.2}, {"name": "x", "proficiency": 0.9}]
    err = assert_error(
        hub.request("POST", "/api/agents", {"name": "dup", "capabilities": twice}), 422, "invalid_input"
    )
    assert err["details"] == {"capability": "x"}
    assert_error(
        hub.request("PATCH", f"/api/agents/{ids['agent']}", {"capabilities": twice}), 422, "invalid_input"
    )
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(
            json.dumps(
                {"type": "register", "message_id": "r1", "data": {"name": "dup", "capabilities": twice}}
            )
        )
        m = json.loads(ws.recv())
        assert m["type"] == "error" and m["data"]["code"] == "invalid_input" and m["message_id"] == "r1", m
    finally:
        ws.close()
        ws.shutdown()
    assert hub.get("/api/hive/status")["metrics"]["total_agents"] == 1


def test_free_text_over_its_limit_is_invalid_input(hub: Hub, ids: dict[str, str]) -> None:
    t, a = ids["task"], ids["agent"]
    long = "x" * 1001
    for method, path, body in [
        ("POST", f"/api/tasks/{t}/cancel", {"reason": long}),
        ("POST", f"/api/tasks/{t}/cancel", {"cancelled_by": "y" * 201}),
        ("POST", f"/api/tasks/{t}/retry", {"requested_by": "y" * 201}),
        ("POST", f"/api/tasks/{t}/release", {"agent_id": a, "reason": long}),
        ("POST", f"/api/tasks/{t}/progress", {"agent_id": a, "progress": 0.5, "current_step": long}),
        ("POST", f"/api/tasks/{t}/fail", {"agent_id": a, "error": {"code": "E", "message": "m" * 10_001}}),
        ("POST", f"/api/tasks/{t}/fail", {"agent_id": a, "error": {"code": "C" * 101, "message": "m"}}),
    ]:
        assert_error(hub.request(method, path, body), 422, "invalid_input")
    # the limits are in the document
    schemas = hub.get("/api/openapi.json")["components"]["schemas"]
    assert schemas["CancelBody"]["properties"]["reason"]["maxLength"] == 1000
    assert schemas["ReportedError"]["properties"]["message"]["maxLength"] == 10_000
    # ... and hold on the sockets too: /ws cancel_task, agent reports
    ws = websocket.create_connection(hub.ws_url + "/ws", timeout=10)
    try:
        ws.send(
            json.dumps({"type": "cancel_task", "message_id": "c1", "data": {"task_id": t, "reason": long}})
        )
        m = json.loads(ws.recv())
        assert m["type"] == "error" and m["data"]["code"] == "invalid_input" and m["message_id"] == "c1", m
    finally:
        ws.close()
        ws.shutdown()
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(json.dumps({"type": "register", "data": {"name": "texty"}}))
        assert json.loads(ws.recv())["type"] == "registered"
        for typ, data in (
            ("task_progress", {"task_id": t, "progress": 0.1, "current_step": long}),
            ("task_failed", {"task_id": t, "error": {"code": "E", "message": "m" * 10_001}}),
            ("task_released", {"task_id": t, "reason": long}),
        ):
            ws.send(json.dumps({"type": typ, "message_id": typ, "data": data}))
            while True:
                m = json.loads(ws.recv())
                if m.get("message_id") == typ:
                    break
            assert m["type"] == "error" and m["data"]["code"] == "invalid_input", m
    finally:
        ws.close()
        ws.shutdown()
    assert hub.get(f"/api/tasks/{t}")["status"] == "pending"


def test_non_string_message_id_is_refused_and_echoed_as_json(hub: Hub) -> None:
    for mid in ({"a": [1]}, 5, ["x"], True):
        ws = websocket.create_connection(hub.ws_url + "/ws", timeout=10)
        try:
            ws.send(json.dumps({"type": "ping", "message_id": mid}))
            m = json.loads(ws.recv())
            assert m["type"] == "error" and m["data"]["code"] == "invalid_input", m
            assert m["message_id"] == mid, m  # the value as sent, not a Python repr
        finally:
            ws.close()
            ws.shutdown()
        ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
        try:
            ws.send(json.dumps({"type": "register", "message_id": mid, "data": {"name": "m"}}))
            m = json.loads(ws.recv())
            assert m["type"] == "error" and m["data"]["code"] == "invalid_input" and m["message_id"] == mid, m
        finally:
            ws.close()
            ws.shutdown()


def test_openapi_document_agrees_with_validation(hub: Hub) -> None:
    doc = hub.get("/api/openapi.json")
    t = hub.post("/api/tasks", {"required_capabilities": [{"name": "nobody"}]}, expect=201)
    a = hub.post("/api/agents", {"name": "doc"}, expect=201)
    ids = {"task": t["id"], "agent": a["id"]}
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "requestBody" not in op:
                continue
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            required = schemas[schema["$ref"].rsplit("/", 1)[-1]].get("required", [])
            # a body is required exactly when its schema has required fields
            assert op["requestBody"]["required"] == bool(required), (method, path)
            if not required and path not in (
                "/api/agents/{id}",
                "/api/quotas/{name}",
                "/api/budgets/{owner}",
            ):  # an empty PATCH changes nothing, a pool or budget needs a limit: 422 by rule
                status, body = hub.request(method.upper(), _fill(path, ids), raw=b"")
                assert status < 400 or body["error"]["code"] not in ("invalid_input", "malformed_json"), (
                    method,
                    path,
                    body,
                )
    # JSON Schema counts 1.0 as an integer: so does validation
    made = hub.post(
        "/api/tasks",
        {"priority": 3.0, "max_retries": 2.0, "required_capabilities": [{"name": "nobody"}]},
        expect=201,
    )
    assert made["priority"] == 3 and made["max_retries"] == 2
    hub.post(
        "/api/tasks/batch",
        {"tasks": [{"priority": 1.0, "required_capabilities": [{"name": "nobody"}]}]},
        expect=201,
    )
    agent = hub.post("/api/agents", {"name": "ints", "max_concurrent_tasks": 2.0}, expect=201)
    assert agent["max_concurrent_tasks"] == 2
    assert_error(hub.request("POST", "/api/tasks", {"priority": 2.5}), 422, "invalid_input")
    # a 405 names the allowed methods
    req = urllib.request.Request(hub.url + "/api/tasks", method="PUT", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    exc.value.close()
    assert exc.value.code == 405
    allow = {m.strip() for m in (exc.value.headers.get("Allow") or "").split(",")}
    assert {"GET", "POST"} <= allow, exc.value.headers


def test_malformed_request_line_is_logged_once_as_a_warning(hub: Hub) -> None:
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", hub.port), timeout=10) as s:
            s.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\nGET /\x00bad HTTP/9.9\r\n\r\n")
            got = b""
            while b"400 Bad Request" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            assert b"400 Bad Request" in got, got
    hub.get("/health")  # the hub still serves
    logs = hub.logs()
    lines = [
        ln for ln in logs.splitlines() if "malformed HTTP request" in ln or "Error handling request" in ln
    ]
    assert len(lines) == 1, lines
    assert " WARNING " in lines[0], lines
    assert "Traceback" not in logs


def test_cursor_beyond_the_head_is_refused_alike_on_rest_and_ws(hub: Hub, ids: dict[str, str]) -> None:
    head = hub.get("/api/events?limit=10000")["next_since"]
    assert head >= 2
    for since in (head + 1, head + 1000, 2**62, 2**63, 2**64 + 5):
        err = assert_error(hub.request("GET", f"/api/events?since={since}"), 400, "cursor_out_of_range")
        assert err["details"] == {"since": since, "head": head}, err
        ws = websocket.create_connection(f"{hub.ws_url}/ws?since={since}", timeout=10)
        try:
            m = json.loads(ws.recv())
            assert m["type"] == "error" and m["data"]["code"] == "cursor_out_of_range", m
            assert m["data"]["details"] == {"since": since, "head": head}, m
            frame = ws.recv_frame()
            assert frame.opcode == websocket.ABNF.OPCODE_CLOSE, frame
            assert struct.unpack("!H", frame.data[:2])[0] == 1008
            assert frame.data[2:].startswith(b"cursor_out_of_range: ")
        finally:
            ws.shutdown()
    # at the head: nothing yet, then the next event, on both
    assert hub.get(f"/api/events?since={head}") == {"events": [], "next_since": head}
    ws = websocket.create_connection(f"{hub.ws_url}/ws?since={head}", timeout=10)
    try:
        hub.post("/api/tasks", {"required_capabilities": [{"name": "nobody"}]}, expect=201)
        assert json.loads(ws.recv())["sequence"] == head + 1
    finally:
        ws.close()
        ws.shutdown()
    assert hub.get(f"/api/events?since={head}")["events"][0]["sequence"] == head + 1
    assert "unhandled error" not in hub.logs() and "Traceback" not in hub.logs()


@pytest.mark.parametrize("path", ["/ws", "/agents/ws"])
def test_frame_just_over_the_default_limit_closes_with_1009(hub: Hub, path: str) -> None:
    """The hub sees from the frame header that the frame is too large and closes with
    1009 while the peer is still sending it. It must keep reading until the peer is
    done: closing the socket with the rest unread resets the connection instead."""
    text = json.dumps({"type": "ping" if path == "/ws" else "heartbeat", "data": {"pad": "x" * (1 << 20)}})
    assert len(text) >= (1 << 20) + 10
    raw = websocket.ABNF.create_frame(text, websocket.ABNF.OPCODE_TEXT).format()
    ws = websocket.create_connection(hub.ws_url + path, timeout=30)
    try:
        if path == "/agents/ws":
            ws.send(json.dumps({"type": "register", "data": {"name": "big"}}))
            assert json.loads(ws.recv())["type"] == "registered"
        ws.sock.sendall(raw[:65536])  # the header and the start of the frame
        while True:
            frame = ws.recv_frame()
            if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                break
        assert struct.unpack("!H", frame.data[:2])[0] == 1009
        # the peer is still sending: the rest of the frame, then its own close frame
        ws.sock.sendall(raw[65536:])
        ws.sock.sendall(
            websocket.ABNF.create_frame(struct.pack("!H", 1000), websocket.ABNF.OPCODE_CLOSE).format()
        )
        ws.sock.shutdown(socket.SHUT_WR)
        assert ws.sock.recv(100) == b""  # a clean end of stream, not ECONNRESET
    finally:
        ws.shutdown()
    assert hub.get("/health")["status"] == "healthy"


def test_peer_that_resets_during_the_upgrade_is_not_an_unhandled_error(hub: Hub) -> None:
    """A client that sends a WebSocket upgrade and resets the connection at once: the
    hub's 101 cannot be written. That is a disconnect, not an error with a traceback."""
    for path in ("/ws", "/ws?since=0", "/agents/ws"):
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", hub.port), timeout=10)
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST
    # every one of those connections has been handled once /health answers after them
    ws = websocket.create_connection(hub.ws_url + "/ws", timeout=10)
    try:
        ws.send(json.dumps({"type": "ping", "message_id": "after"}))
        assert json.loads(ws.recv())["type"] == "pong"
    finally:
        ws.close()
        ws.shutdown()
    logs = hub.logs()
    assert "Error handling request" not in logs and "Traceback" not in logs, logs[-3000:]
