"""Authentication, roles, origin checks, CORS and limits on a real hub."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websocket

from tests.hubproc import ROOT, Hub


def make_token(db: Path, role: str, agent: str | None = None) -> str:
    args = [sys.executable, "-m", "hivehub", "token", "create", "--role", role, "--db", str(db)]
    if agent:
        args += ["--agent", agent]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture
def secured(tmp_path: Path):
    db = tmp_path / "hive.db"
    tokens = {r: make_token(db, r) for r in ("viewer", "operator", "admin")}
    tokens["agent"] = make_token(db, "agent", agent="agent-7")
    hub = Hub(
        db,
        "--rate-limit",
        "20",
        "--max-ws-per-client",
        "3",
        "--allowed-origin",
        "https://ok.example",
        "--cors-origin",
        "https://ok.example",
    ).start()
    try:
        yield hub, tokens, db
    finally:
        hub.stop()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_auth_off_without_tokens(hub: Hub) -> None:
    assert hub.request("GET", "/api/tasks")[0] == 200
    assert hub.request("POST", "/api/tasks", {"type": "x"})[0] == 201


def test_tokens_and_roles(secured) -> None:
    hub, tok, _ = secured
    status, body = hub.request("GET", "/api/tasks")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = hub.request("GET", "/api/tasks", headers=auth("hv_nope_nope"))
    assert status == 401
    assert hub.request("GET", "/health")[0] == 200  # public
    # viewer reads, may not write
    assert hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 200
    status, body = hub.request("POST", "/api/tasks", {"type": "x"}, headers=auth(tok["viewer"]))
    assert status == 403 and body["error"]["code"] == "forbidden"
    # X-API-Key and ?token= work too
    assert hub.request("GET", "/api/agents", headers={"X-API-Key": tok["viewer"]})[0] == 200
    assert hub.request("GET", f"/api/hive/status?token={tok['viewer']}")[0] == 200
    # operator writes
    status, task = hub.request("POST", "/api/tasks", {"type": "x"}, headers=auth(tok["operator"]))
    assert status == 201
    assert task["created_by"].startswith("operator:")
    assert hub.request("POST", f"/api/tasks/{task['id']}/cancel", {}, headers=auth(tok["operator"]))[0] == 200
    # an agent token: only the agent protocol, only as its own agent
    status, _ = hub.request("GET", "/api/tasks", headers=auth(tok["agent"]))
    assert status == 403
    status, _ = hub.request(
        "POST", "/api/agents", {"name": "x", "id": "someone-else"}, headers=auth(tok["agent"])
    )
    assert status == 403
    status, agent = hub.request(
        "POST",
        "/api/agents",
        {"name": "seven", "id": "agent-7", "capabilities": [{"name": "x", "proficiency": 0.9}]},
        headers=auth(tok["agent"]),
    )
    assert status == 201 and agent["id"] == "agent-7"
    assert hub.request("POST", "/api/agents/agent-7/heartbeat", {}, headers=auth(tok["agent"]))[0] == 200
    other = hub.request(
        "POST",
        "/api/agents",
        {"name": "other", "capabilities": [{"name": "x", "proficiency": 0.1}]},
        headers=auth(tok["admin"]),
    )[1]
    assert (
        hub.request("POST", f"/api/agents/{other['id']}/heartbeat", {}, headers=auth(tok["agent"]))[0] == 403
    )
    t = hub.request(
        "POST",
        "/api/tasks",
        {"type": "x", "required_capabilities": [{"name": "x", "min_proficiency": 0.5}]},
        headers=auth(tok["operator"]),
    )[1]
    claim = hub.request("POST", "/api/agents/agent-7/claim?wait=5", headers=auth(tok["agent"]))
    assert claim[0] == 200 and claim[1]["task"]["id"] == t["id"]
    # reporting on behalf of another agent is refused
    status, _ = hub.request(
        "POST",
        f"/api/tasks/{t['id']}/complete",
        {"agent_id": other["id"], "attempt": 1, "result": 1},
        headers=auth(tok["agent"]),
    )
    assert status == 403
    status, done = hub.request(
        "POST",
        f"/api/tasks/{t['id']}/complete",
        {"agent_id": "agent-7", "attempt": claim[1]["attempt"], "result": 1},
        headers=auth(tok["agent"]),
    )
    assert status == 200 and done["status"] == "completed"


def test_revoked_token_is_refused(secured) -> None:
    hub, tok, db = secured
    assert hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 200
    subprocess.run(
        [sys.executable, "-m", "hivehub", "token", "revoke", tok["viewer"], "--db", str(db)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    from tests.hubproc import wait_for

    wait_for(
        lambda: hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 401,
        10,
        what="revocation to apply",
    )


def _ws(hub: Hub, query: str = "", **kw) -> websocket.WebSocket:
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/ws{query}", **kw)
    ws.settimeout(10)
    return ws


def test_ws_auth_closes_1008_with_reason(secured) -> None:
    hub, tok, _ = secured
    ws = _ws(hub)
    op, data = ws.recv_data()
    assert op == websocket.ABNF.OPCODE_CLOSE
    code = int.from_bytes(data[:2], "big")
    assert code == 1008 and b"unauthorized" in data[2:]
    ws.shutdown()
    ws = _ws(hub, f"?token={tok['viewer']}")
    ws.send('{"type":"ping","message_id":"p1"}')
    assert '"pong"' in ws.recv()
    # a viewer may watch but not control
    ws.send('{"type":"create_task","data":{"type":"x"},"message_id":"c1"}')
    reply = ws.recv()
    assert '"forbidden"' in reply and '"c1"' in reply
    ws.close()


def test_ws_origin_allow_list(secured) -> None:
    hub, tok, _ = secured
    # refused before the upgrade: a foreign page does not even get a socket
    ws = websocket.WebSocket()
    try:
        with pytest.raises(websocket.WebSocketBadStatusException) as exc:
            ws.connect(f"{hub.ws_url}/ws?token={tok['viewer']}", origin="https://evil.example")
    finally:
        ws.shutdown()
    assert exc.value.status_code == 403 and b"origin" in exc.value.resp_body
    ok = _ws(hub, f"?token={tok['viewer']}", origin="https://ok.example")
    ok.send('{"type":"ping"}')
    assert '"pong"' in ok.recv()
    ok.close()


def test_cors_headers_for_allowed_origins(secured) -> None:
    hub, tok, _ = secured
    import urllib.request

    req = urllib.request.Request(
        hub.url + "/api/tasks",
        method="OPTIONS",
        headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"},
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    # an origin not listed gets neither the headers nor an answer (403, even with a token)
    status, body = hub.request(
        "GET", "/api/tasks", headers={"Origin": "https://evil.example", **auth(tok["viewer"])}
    )
    assert status == 403 and body["error"]["message"] == "origin not allowed"
    req = urllib.request.Request(
        hub.url + "/api/tasks", headers={"Origin": "https://ok.example", **auth(tok["viewer"])}
    )
    with urllib.request.urlopen(req) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "https://ok.example"


def test_rate_limit_per_client_with_retry_after(secured) -> None:
    hub, tok, _ = secured
    import urllib.error
    import urllib.request

    statuses = []
    retry_after = None
    for _ in range(60):
        req = urllib.request.Request(
            hub.url + "/api/tasks",
            data=b'{"type":"x"}',
            method="POST",
            headers={"Content-Type": "application/json", **auth(tok["operator"])},
        )
        try:
            with urllib.request.urlopen(req) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            statuses.append(e.code)
            if e.code == 429:
                retry_after = e.headers["Retry-After"]
                assert b"rate_limited" in e.read()
    assert 429 in statuses and statuses[0] == 201
    assert retry_after is not None and int(retry_after) >= 1
    # another client (the admin token) is not affected by the operator's bucket
    assert hub.request("POST", "/api/tasks", {"type": "x"}, headers=auth(tok["admin"]))[0] == 201
    # reads are not limited
    assert hub.request("GET", "/api/tasks", headers=auth(tok["operator"]))[0] == 200


def test_connections_per_client_limit(secured) -> None:
    hub, tok, _ = secured
    conns = [_ws(hub, f"?token={tok['viewer']}") for _ in range(3)]
    extra = _ws(hub, f"?token={tok['viewer']}")
    op, data = extra.recv_data()
    assert op == websocket.ABNF.OPCODE_CLOSE and b"too many connections" in data
    extra.shutdown()
    conns[0].close()
    from tests.hubproc import wait_for

    def can_connect() -> bool:
        w = _ws(hub, f"?token={tok['viewer']}")
        try:
            w.send('{"type":"ping"}')
            return '"pong"' in w.recv()
        finally:
            w.shutdown()

    wait_for(can_connect, 10, what="a slot to free up")
    for c in conns[1:]:
        c.close()


def test_agent_ws_bound_to_its_agent(secured) -> None:
    hub, tok, _ = secured
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/agents/ws?token={tok['agent']}")
    ws.settimeout(10)
    ws.send('{"type":"register","data":{"name":"x","id":"not-me"},"message_id":"r"}')
    reply = ws.recv()
    assert '"forbidden"' in reply
    ws.close()
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/agents/ws?token={tok['agent']}")
    ws.settimeout(10)
    ws.send('{"type":"register","data":{"name":"seven"},"message_id":"r"}')
    reply = ws.recv()
    assert '"registered"' in reply and '"agent-7"' in reply
    ws.close()
    # a viewer cannot speak the agent protocol
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/agents/ws?token={tok['viewer']}")
    op, data = ws.recv_data()
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1008
    ws.shutdown()


# ------------------------------------------------------------------ issue 11: trust


def revoke(db: Path, token: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "hivehub", "token", "revoke", token, "--db", str(db)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def test_revoking_the_only_token_keeps_auth_on(tmp_path: Path) -> None:
    from tests.hubproc import wait_for

    db = tmp_path / "hive.db"
    only = make_token(db, "admin")
    hub = Hub(db).start()
    try:
        assert hub.request("GET", "/api/tasks")[0] == 401
        assert hub.request("GET", "/api/tasks", headers=auth(only))[0] == 200
        revoke(db, only)
        wait_for(
            lambda: hub.request("GET", "/api/tasks", headers=auth(only))[0] == 401,
            10,
            what="revocation to apply",
        )
        # no token left, and still nobody anonymous gets in: not on REST, not on /ws
        status, body = hub.request("GET", "/api/tasks")
        assert status == 401 and body["error"]["code"] == "unauthorized"
        assert hub.request("POST", "/api/tasks", {"type": "x"})[0] == 401
        ws = _ws(hub)
        op, data = ws.recv_data()
        assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1008
        ws.shutdown()
    finally:
        hub.stop()
    # persisted: a restart in the default mode (auto) keeps it on
    hub = Hub(db).start()
    try:
        assert hub.request("GET", "/api/tasks")[0] == 401
    finally:
        hub.stop()


def test_auth_off_is_explicit_and_logged(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    make_token(db, "admin")
    hub = Hub(db, "--auth", "off").start()
    try:
        assert hub.request("GET", "/api/tasks")[0] == 200
        assert hub.request("POST", "/api/tasks", {"type": "x"})[0] == 201
        assert "authentication is OFF" in hub.logs()
    finally:
        hub.stop()


def test_auth_on_refuses_anonymous_without_any_token(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hive.db", "--auth", "on").start()
    try:
        assert hub.request("GET", "/api/tasks")[0] == 401
        assert hub.request("GET", "/health")[0] == 200
    finally:
        hub.stop()


def _agent_ws(hub: Hub, token: str, agent_id: str, proficiency: float) -> websocket.WebSocket:
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/agents/ws?token={token}")
    ws.settimeout(10)
    ws.send(
        json.dumps(
            {
                "type": "register",
                "message_id": "r",
                "data": {
                    "id": agent_id,
                    "name": agent_id,
                    "capabilities": [{"name": "x", "proficiency": proficiency}],
                },
            }
        )
    )
    assert '"registered"' in ws.recv()
    return ws


def _until(ws: websocket.WebSocket, pred, deadline: float) -> tuple[int, bytes]:
    """Frames until ``pred(opcode, data)``; fails at the monotonic ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "deadline passed"
        ws.settimeout(left)
        op, data = ws.recv_data()
        if pred(op, data):
            return op, data
        assert op != websocket.ABNF.OPCODE_CLOSE, data


def _close_code(op: int, data: bytes) -> bool:
    return op == websocket.ABNF.OPCODE_CLOSE


def test_revocation_closes_open_connections_and_requeues(tmp_path: Path) -> None:
    from tests.conftest import TIME_SCALE

    db = tmp_path / "hive.db"
    viewer = make_token(db, "viewer")
    operator = make_token(db, "operator")
    seven = make_token(db, "agent", agent="agent-7")
    eight = make_token(db, "agent", agent="agent-8")
    # a long heartbeat timeout: a re-queue within seconds can only come from the revocation
    hub = Hub(db, "--heartbeat-timeout", "60").start()
    opened: list[websocket.WebSocket] = []
    try:
        stream = _ws(hub, f"?token={operator}")
        watcher = _ws(hub, f"?token={viewer}")
        a7 = _agent_ws(hub, seven, "agent-7", 0.9)
        opened += [stream, watcher, a7]
        status, task = hub.request(
            "POST",
            "/api/tasks",
            {"type": "x", "required_capabilities": [{"name": "x", "min_proficiency": 0.1}]},
            headers=auth(operator),
        )
        assert status == 201
        _until(
            a7,
            lambda op, d: b'"assign"' in d and task["id"].encode() in d,
            time.monotonic() + 10 * TIME_SCALE,
        )
        a8 = _agent_ws(hub, eight, "agent-8", 0.5)
        opened.append(a8)
        revoke(db, operator)
        revoke(db, seven)
        deadline = time.monotonic() + 2.0 * TIME_SCALE  # the documented bound
        for ws in (stream, a7):
            op, data = _until(ws, _close_code, deadline)
            assert int.from_bytes(data[:2], "big") == 1008 and b"revoked" in data[2:], data
        # the viewer's token is still valid: its stream stays open
        watcher.send('{"type":"ping","message_id":"p"}')
        _until(watcher, lambda op, d: b'"pong"' in d, time.monotonic() + 5 * TIME_SCALE)
        # agent-7's task is not kept by it: it goes to agent-8, long before the heartbeat timeout
        op, data = _until(a8, lambda op, d: b'"assign"' in d, time.monotonic() + 10 * TIME_SCALE)
        assert task["id"].encode() in data
        status, t = hub.request("GET", f"/api/tasks/{task['id']}", headers=auth(viewer))
        assert t["assigned_agent_id"] == "agent-8" and t["attempt"] == 2
        status, a = hub.request("GET", "/api/agents/agent-7", headers=auth(viewer))
        assert a["status"] == "offline" and not a["current_tasks"]
    finally:
        for ws in opened:
            ws.shutdown()
        hub.stop()


def test_default_bind_is_loopback(tmp_path: Path) -> None:
    import psutil

    hub = Hub(tmp_path / "hive.db", host=None).start()
    try:
        assert hub.proc is not None
        listening = [
            c.laddr
            for c in psutil.Process(hub.proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(addr.ip in ("127.0.0.1", "::1") for addr in listening), listening
    finally:
        hub.stop()


def test_cross_site_requests_refused_with_auth_off(hub: Hub) -> None:
    import urllib.error
    import urllib.request

    def post(body: bytes, headers: dict[str, str]) -> int:
        req = urllib.request.Request(hub.url + "/api/tasks", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    # the "simple" cross-site form POST a page can send without a preflight
    assert post(b'{"type":"x"}', {"Content-Type": "text/plain"}) == 415
    assert post(b'{"type":"x"}', {"Content-Type": "text/plain", "Origin": "https://evil.example"}) in (
        403,
        415,
    )
    assert (
        post(b'{"type":"x"}', {"Content-Type": "application/json", "Origin": "https://evil.example"}) == 403
    )
    assert hub.request("GET", "/api/tasks", headers={"Origin": "https://evil.example"})[0] == 403
    assert hub.request("POST", "/api/tasks/x/cancel", {}, headers={"Origin": "null"})[0] == 403
    assert not hub.get("/api/tasks")["tasks"]  # nothing got in
    # the hub's own origin (the dashboard) and clients without an Origin (CLI, SDK) pass
    assert post(b'{"type":"x"}', {"Content-Type": "application/json", "Origin": hub.url}) == 201
    assert post(b'{"type":"x"}', {"Content-Type": "application/json; charset=utf-8"}) == 201
    # both WebSockets refuse a foreign origin before the upgrade
    for path in ("/ws", "/agents/ws"):
        ws = websocket.WebSocket()
        try:
            with pytest.raises(websocket.WebSocketBadStatusException) as exc:
                ws.connect(f"{hub.ws_url}{path}", origin="https://evil.example")
        finally:
            ws.shutdown()
        assert exc.value.status_code == 403
    ok = websocket.WebSocket()
    try:
        ok.connect(f"{hub.ws_url}/ws", origin=hub.url)
        ok.settimeout(10)
        ok.send('{"type":"ping"}')
        assert '"pong"' in ok.recv()
    finally:
        ok.shutdown()


def _metric(hub: Hub, name: str, token: str) -> float:
    import urllib.request

    req = urllib.request.Request(hub.url + "/metrics", headers=auth(token))
    with urllib.request.urlopen(req) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_unknown_tokens_do_not_read_the_token_table(secured) -> None:
    hub, tok, _ = secured
    before = _metric(hub, "hive_token_table_reads_total", tok["viewer"])
    for i in range(300):
        assert hub.request("GET", "/api/tasks", headers=auth(f"hv_unknown{i}_secret"))[0] == 401
    assert hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 200
    assert _metric(hub, "hive_token_table_reads_total", tok["viewer"]) == before


def test_token_created_while_running_is_accepted(secured) -> None:
    from tests.hubproc import wait_for

    hub, _, db = secured
    fresh = make_token(db, "viewer")
    wait_for(
        lambda: hub.request("GET", "/api/tasks", headers=auth(fresh))[0] == 200,
        10,
        what="the new token to be known",
    )


def test_pull_agent_with_agent_token_sees_cancellation(tmp_path: Path, agents) -> None:
    from tests.hubproc import wait_for

    db = tmp_path / "hive.db"
    operator = make_token(db, "operator")
    agent_token = make_token(db, "agent", agent="puller")
    other = make_token(db, "agent", agent="other")
    hub = Hub(db, "--heartbeat-timeout", "3").start()
    try:
        marker = tmp_path / "cancelled"
        started = tmp_path / "started"
        agents(
            hub,
            "puller",
            ["x"],
            "tests.e2e.handlers:gate",
            pull=True,
            agent_id="puller",
            env={"HIVE_TOKEN": agent_token},
        )
        spec = {
            "id": "job/1",
            "type": "x",
            "required_capabilities": [{"name": "x", "min_proficiency": 0.1}],
            "input": {
                "release": str(tmp_path / "never"),
                "started": str(started),
                "cancelled_marker": str(marker),
            },
        }
        assert hub.request("POST", "/api/tasks", spec, headers=auth(operator))[0] == 201
        wait_for(started.exists, 20, what="the pull agent to start the task")
        # the agent holding it may read it (the id has a '/': %2F in the path); another agent may not
        t = wait_for(
            lambda: (r := hub.request("GET", "/api/tasks/job%2F1", headers=auth(agent_token)))[0] == 200
            and r[1]["status"] == "running"
            and r[1],
            10,
            what="the holder to read its task as running",
        )
        assert t["assigned_agent_id"] == "puller"
        assert hub.request("GET", "/api/tasks/job%2F1", headers=auth(other))[0] == 403
        assert hub.request("GET", "/api/tasks", headers=auth(agent_token))[0] == 403
        status, _ = hub.request(
            "POST",
            "/api/tasks/job%2F1/progress",
            {"agent_id": "puller", "attempt": t["attempt"], "progress": 0.5},
            headers=auth(agent_token),
        )
        assert status == 200
        assert hub.request("POST", "/api/tasks/job%2F1/cancel", {}, headers=auth(operator))[0] == 200
        wait_for(marker.exists, 20, what="the pull agent to notice the cancellation")
        status, t = hub.request("GET", "/api/tasks/job%2F1", headers=auth(agent_token))
        assert status == 200 and t["status"] == "cancelled"
    finally:
        hub.stop()
