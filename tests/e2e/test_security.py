"""Authentication, roles, origin checks, CORS and limits on a real hub."""

from __future__ import annotations

import subprocess
import sys
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
    hub = Hub(db, "--rate-limit", "20", "--max-ws-per-client", "3", "--allowed-origin", "https://ok.example",
              "--cors-origin", "https://ok.example").start()
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
    status, _ = hub.request("POST", "/api/agents", {"name": "x", "id": "someone-else"}, headers=auth(tok["agent"]))
    assert status == 403
    status, agent = hub.request("POST", "/api/agents", {"name": "seven", "id": "agent-7", "capabilities": [{"name": "x", "proficiency": 0.9}]}, headers=auth(tok["agent"]))
    assert status == 201 and agent["id"] == "agent-7"
    assert hub.request("POST", "/api/agents/agent-7/heartbeat", {}, headers=auth(tok["agent"]))[0] == 200
    other = hub.request("POST", "/api/agents", {"name": "other", "capabilities": [{"name": "x", "proficiency": 0.1}]}, headers=auth(tok["admin"]))[1]
    assert hub.request("POST", f"/api/agents/{other['id']}/heartbeat", {}, headers=auth(tok["agent"]))[0] == 403
    t = hub.request("POST", "/api/tasks", {"type": "x", "required_capabilities": [{"name": "x", "min_proficiency": 0.5}]}, headers=auth(tok["operator"]))[1]
    claim = hub.request("POST", "/api/agents/agent-7/claim?wait=5", headers=auth(tok["agent"]))
    assert claim[0] == 200 and claim[1]["task"]["id"] == t["id"]
    # reporting on behalf of another agent is refused
    status, _ = hub.request("POST", f"/api/tasks/{t['id']}/complete", {"agent_id": other["id"], "attempt": 1, "result": 1}, headers=auth(tok["agent"]))
    assert status == 403
    status, done = hub.request("POST", f"/api/tasks/{t['id']}/complete", {"agent_id": "agent-7", "attempt": claim[1]["attempt"], "result": 1}, headers=auth(tok["agent"]))
    assert status == 200 and done["status"] == "completed"


def test_revoked_token_is_refused(secured) -> None:
    hub, tok, db = secured
    assert hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 200
    subprocess.run([sys.executable, "-m", "hivehub", "token", "revoke", tok["viewer"], "--db", str(db)], cwd=ROOT, check=True, capture_output=True)
    from tests.hubproc import wait_for

    wait_for(lambda: hub.request("GET", "/api/tasks", headers=auth(tok["viewer"]))[0] == 401, 10, what="revocation to apply")


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
    ws = _ws(hub, f"?token={tok['viewer']}", origin="https://evil.example")
    op, data = ws.recv_data()
    assert op == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(data[:2], "big") == 1008 and b"origin" in data
    ws.shutdown()
    ok = _ws(hub, f"?token={tok['viewer']}", origin="https://ok.example")
    ok.send('{"type":"ping"}')
    assert '"pong"' in ok.recv()
    ok.close()


def test_cors_headers_for_allowed_origins(secured) -> None:
    hub, tok, _ = secured
    import urllib.request

    req = urllib.request.Request(hub.url + "/api/tasks", method="OPTIONS", headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "https://ok.example"
    req = urllib.request.Request(hub.url + "/api/tasks", headers={"Origin": "https://evil.example", **auth(tok["viewer"])})
    with urllib.request.urlopen(req) as r:
        assert "Access-Control-Allow-Origin" not in r.headers


def test_rate_limit_per_client_with_retry_after(secured) -> None:
    hub, tok, _ = secured
    import urllib.error
    import urllib.request

    statuses = []
    retry_after = None
    for _ in range(60):
        req = urllib.request.Request(hub.url + "/api/tasks", data=b'{"type":"x"}', method="POST", headers={"Content-Type": "application/json", **auth(tok["operator"])})
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
