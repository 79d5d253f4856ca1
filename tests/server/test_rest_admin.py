"""Access control on every surface: tokens and roles, auth modes, revocation,
origin checks and CORS (docs/api.md "Authentication and roles"; rate limits and
revocation: test_clientlimits.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import WSServerHandshakeError

from .conftest import Hub, HubFactory, ask, bearer, make_token, recv_close

ADMIN = "s3cret-admin"


# ------------------------------------------------------------------ 401 and public routes


async def test_with_auth_on_a_request_without_a_valid_token_is_401(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", admin_token=ADMIN)
    r = await hub.get("/api/tasks")
    assert (r.status, r.code) == (401, "unauthorized")
    r = await hub.get("/api/tasks", headers=bearer("hv_nope_nope"))
    assert (r.status, r.code) == (401, "unauthorized")
    r = await hub.post("/api/tasks", {"id": "t1"})
    assert (r.status, r.code) == (401, "unauthorized")
    ok = await hub.get("/api/tasks", headers=bearer(ADMIN))
    assert ok.status == 200
    assert (await hub.get("/api/tasks/t1", headers=bearer(ADMIN))).status == 404


@pytest.mark.parametrize(
    "how",
    [
        lambda t: ({"headers": {"Authorization": f"Bearer {t}"}}),
        lambda t: ({"headers": {"X-API-Key": t}}),
        lambda t: ({"headers": {}, "params": {"token": t}}),
    ],
    ids=["bearer", "x-api-key", "query"],
)
async def test_a_token_is_accepted_in_each_documented_place(hub_factory: HubFactory, how) -> None:
    hub = await hub_factory(db="memory", admin_token=ADMIN)
    r = await hub.post("/api/tasks", {"id": "t1"}, **how(ADMIN))
    assert r.status == 201, r


@pytest.mark.parametrize("path", ["/health", "/api", "/"])  # /api/openapi.json: test_health_metrics.py
async def test_public_routes_need_no_token(hub_factory: HubFactory, path: str) -> None:
    hub = await hub_factory(db="memory", admin_token=ADMIN)
    r = await hub.get(path)
    assert r.status == 200, r


async def test_ws_without_a_token_is_closed_1008_with_the_reason(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", admin_token=ADMIN)
    for path in ("/ws", "/agents/ws"):
        ws = await hub.ws(path)
        code, reason, seen = await recv_close(ws)
        assert (code, seen) == (1008, []), path
        assert reason.startswith("unauthorized:"), reason
    ws = await hub.ws("/ws", params={"token": ADMIN})
    assert (await ask(ws, {"type": "ping", "message_id": "p"}))["type"] == "pong"
    await ws.close()


# ------------------------------------------------------------------ roles


@pytest.mark.parametrize(
    ("role", "method", "path", "status"),
    [
        ("viewer", "GET", "/api/tasks", 200),
        ("viewer", "GET", "/api/agents", 200),
        ("viewer", "GET", "/metrics", 200),
        ("viewer", "POST", "/api/tasks", 403),
        ("viewer", "POST", "/api/tasks/t0/cancel", 403),
        ("viewer", "PATCH", "/api/resources", 403),
        ("operator", "POST", "/api/tasks", 201),
        ("operator", "POST", "/api/tasks/t0/cancel", 200),
        ("admin", "POST", "/api/tasks", 201),
        ("agent", "GET", "/api/tasks", 403),
        ("agent", "GET", "/api/agents", 403),
        ("agent", "POST", "/api/tasks", 403),
        ("agent", "GET", "/metrics", 403),
    ],
)
async def test_each_role_may_do_what_its_row_says(
    secured, role: str, method: str, path: str, status: int
) -> None:
    hub, tokens = secured
    assert (await hub.post("/api/tasks", {"id": "t0"}, headers=bearer(tokens["admin"]))).status == 201
    body = {} if method in ("POST", "PATCH") else None
    r = await hub.request(method, path, json=body, headers=bearer(tokens[role]))
    assert r.status == status, r
    if status == 403:
        assert r.code == "forbidden"


async def test_an_agent_token_acts_only_as_its_own_agent(secured) -> None:
    hub, tokens = secured
    agent = bearer(tokens["agent"])
    r = await hub.post("/api/agents", {"id": "a2", "name": "impostor"}, headers=agent)
    assert (r.status, r.code) == (403, "forbidden"), r
    r = await hub.post(
        "/api/agents",
        {"id": "a1", "name": "me", "capabilities": [{"name": "code", "proficiency": 1}]},
        headers=agent,
    )
    assert r.status == 201, r
    admin = bearer(tokens["admin"])
    assert (await hub.post("/api/agents", {"id": "a2", "name": "other"}, headers=admin)).status == 201
    assert (await hub.post("/api/agents/a2/heartbeat", headers=agent)).code == "forbidden"
    assert (await hub.post("/api/agents/a2/claim", headers=agent)).code == "forbidden"
    assert (await hub.post("/api/agents/a1/heartbeat", headers=agent)).status == 200
    await hub.post("/api/tasks", {"id": "mine", "required_capabilities": [{"name": "code"}]}, headers=admin)
    await hub.post("/api/tasks", {"id": "theirs"}, headers=admin)
    mine = await hub.get("/api/tasks/mine", headers=agent)
    assert mine.status == 200 and mine.body["assigned_agent_id"] == "a1"
    theirs = await hub.get("/api/tasks/theirs", headers=agent)
    assert (theirs.status, theirs.code) == (403, "forbidden")
    r = await hub.post("/api/tasks/mine/start", {"agent_id": "a2", "attempt": 1}, headers=agent)
    assert (r.status, r.code) == (403, "forbidden")
    r = await hub.post("/api/tasks/mine/start", {"agent_id": "a1", "attempt": 1}, headers=agent)
    assert r.status == 200 and r.body["status"] == "running"


async def test_a_viewer_may_stream_but_not_send_control_commands(secured) -> None:
    hub, tokens = secured
    ws = await hub.ws("/ws", params={"token": tokens["viewer"]})
    reply = await ask(ws, {"type": "create_task", "data": {"id": "t1"}, "message_id": "c1"})
    assert (reply["type"], reply["message_id"], reply["data"]["code"]) == ("error", "c1", "forbidden")
    assert (await ask(ws, {"type": "get_status", "message_id": "s1"}))["type"] == "get_status_result"
    await ws.close()
    assert (await hub.get("/api/tasks/t1", headers=bearer(tokens["admin"]))).status == 404


async def test_an_agent_token_is_refused_on_the_event_stream(secured) -> None:
    hub, tokens = secured
    ws = await hub.ws("/ws", params={"token": tokens["agent"]})
    code, reason, _ = await recv_close(ws)
    assert code == 1008 and reason.startswith("forbidden:"), reason


# ------------------------------------------------------------------ modes and revocation


async def test_auth_auto_is_off_until_a_token_exists(hub_factory: HubFactory, tmp_path: Path) -> None:
    hub = await hub_factory()
    assert (await hub.post("/api/tasks", {"id": "t1"})).status == 201


async def test_auth_on_refuses_anonymous_requests_with_no_token_at_all(hub_factory: HubFactory) -> None:
    hub = await hub_factory(auth="on")
    r = await hub.get("/api/tasks")
    assert (r.status, r.code) == (401, "unauthorized")


async def test_auth_off_lets_everyone_in_even_with_tokens(hub_factory: HubFactory, tmp_path: Path) -> None:
    make_token(tmp_path / "hive.db", "viewer")
    hub = await hub_factory(auth="off")
    assert (await hub.post("/api/tasks", {"id": "t1"})).status == 201


async def test_a_token_created_while_running_turns_auth_on(hub_factory: HubFactory, tmp_path: Path) -> None:
    hub = await hub_factory()
    ws = await hub.ws("/ws")  # anonymous, let in while auth is off
    token = make_token(tmp_path / "hive.db", "admin")
    # the hub's token watch picks the token up and closes anonymous connections
    code, reason, _ = await recv_close(ws)
    assert code == 1008 and reason.startswith("unauthorized"), reason
    assert (await hub.get("/api/tasks")).status == 401
    assert (await hub.get("/api/tasks", headers=bearer(token))).status == 200


# ------------------------------------------------------------------ origin and CORS


async def test_a_foreign_origin_is_403_on_rest_and_gets_no_socket(hub: Hub) -> None:
    foreign = {"Origin": "https://evil.example"}
    r = await hub.post("/api/tasks", {"id": "t1"}, headers=foreign)
    assert (r.status, r.code) == (403, "forbidden"), r
    assert (await hub.get("/api/tasks/t1")).status == 404
    with pytest.raises(WSServerHandshakeError) as exc:
        await hub.ws("/ws", headers=foreign)
    assert exc.value.status == 403
    # public routes stay public; the hub's own origin passes
    assert (await hub.get("/health", headers=foreign)).status == 200
    host = hub.client.server.host, hub.client.server.port
    own = {"Origin": f"http://{host[0]}:{host[1]}", "Host": f"{host[0]}:{host[1]}"}
    assert (await hub.post("/api/tasks", {"id": "t1"}, headers=own)).status == 201


async def test_an_allowed_cors_origin_gets_cors_headers_and_a_preflight(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    r = await hub.get("/api/tasks", headers=origin)
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    pre = await hub.request(
        "OPTIONS", "/api/tasks", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert pre.status == 204
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    other = await hub.get("/api/tasks", headers={"Origin": "https://other.example"})
    assert other.status == 403 and "Access-Control-Allow-Origin" not in other.headers


# ------------------------------------------------------------------ rate limits
