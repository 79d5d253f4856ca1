"""Bad input over REST (and the agent socket) against the real hub: the right
4xx with ``{"error": {"code", "message", "details"}}``, never a 500."""

from __future__ import annotations

import json
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
    for raw in (b'{"timeout_seconds": 1e400}', b'{"priority": 1e400}', b'{"input": 1e400, "max_retries": 1.5}'):
        assert_error(hub.request("POST", "/api/tasks", raw=raw), 422, "invalid_input")
    # unknown dependency: its own code, still 422
    assert_error(hub.request("POST", "/api/tasks", {"depends_on": ["no-such-task"]}), 422, "dependency_not_found")
    # query parameters
    for q in ("/api/tasks?limit=abc", "/api/tasks?limit=-1", "/api/agents?limit=100000", "/api/events?since=abc", "/api/agents/x/claim?wait=61"):
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
    assert_error(hub.request("POST", f"/api/tasks/{ids['task']}/start", {"agent_id": ids["agent"], "attempt": 1}), 409, "not_task_holder")
    assert_error(hub.request("POST", f"/api/agents/{nope}/reset-learning", {}), 404, "agent_not_found")
    assert_error(hub.request("POST", "/api/tasks", {"id": ids["task"]}), 409, "invalid_transition")
    assert "unhandled error" not in hub.logs()


def test_size_and_depth_limits_are_413(hub_factory: Any) -> None:
    h = hub_factory("--max-body", "4096").start()
    # over --max-body
    assert_error(h.request("POST", "/api/tasks", {"description": "x" * 5000}), 413, "payload_too_large")
    assert_error(h.request("POST", "/api/tasks/batch", {"tasks": [{"description": "y" * 100}] * 50}), 413, "payload_too_large")
    # just under it is fine
    h.post("/api/tasks", {"description": "x" * 3000}, expect=201)
    # JSON deeper than 64 levels, at the top and inside a field, and far deeper
    for depth in (65, 100, 1000, 2000):
        assert_error(h.request("POST", "/api/tasks", raw=b"[" * depth + b"]" * depth), 413, "payload_too_large")
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
    deep = '{"type": "register", "data": {"name": "deep", "metadata": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}"
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
