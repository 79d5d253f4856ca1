"""hivehub.server.clientlimits: per-client rate limits, the WebSocket limit per
client, and the connection registry a revocation closes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from hivehub.core.errors import RateLimited
from hivehub.server.clientlimits import (
    AUTO_RATE_LIMIT,
    AUTO_WS_PER_CLIENT,
    Held,
    RateLimiter,
    client_key,
    ws_limit,
)
from hivehub.server.keys import IDENTITY
from hivehub.server.tokens import ANONYMOUS, Identity

from .conftest import Hub, HubFactory, ask, bearer, recv_close, revoke_token


def test_a_bucket_allows_its_burst_then_names_the_wait() -> None:
    limiter = RateLimiter(rate=0.001, burst=2)
    limiter.check("ip:a")
    limiter.check("ip:a")
    with pytest.raises(RateLimited) as exc:
        limiter.check("ip:a")
    assert exc.value.details["limit"] == 0.001 and exc.value.details["retry_after"] > 900
    limiter.check("ip:b")  # every client has its own bucket
    RateLimiter(rate=0, burst=0).check("ip:a")  # 0: no limit


def test_auto_limits_only_while_auth_is_on_and_an_explicit_rate_always() -> None:
    auth = {"on": False}
    auto = RateLimiter.configured(None, None, lambda: auth["on"])
    for _ in range(int(5 * AUTO_RATE_LIMIT)):
        auto.check("ip:127.0.0.1")  # auth off: every local process shares this key
    auth["on"] = True
    with pytest.raises(RateLimited) as exc:
        for _ in range(int(5 * AUTO_RATE_LIMIT)):
            auto.check("token:t1")
    assert exc.value.details["limit"] == AUTO_RATE_LIMIT
    explicit = RateLimiter.configured(0.001, None, lambda: False)
    explicit.check("ip:a")  # bursts of twice the rate, at least one
    with pytest.raises(RateLimited):
        explicit.check("ip:a")


def test_the_client_key_is_the_token_else_the_address() -> None:
    req = make_mocked_request("GET", "/api/tasks")
    assert client_key(req).startswith("ip:")
    req[IDENTITY] = ANONYMOUS
    assert client_key(req).startswith("ip:")
    req[IDENTITY] = Identity("abc", "viewer")
    assert client_key(req) == "token:abc"


async def test_the_registry_forgets_what_it_no_longer_holds(hub: Hub) -> None:
    from hivehub.server.hub import HUB

    conns = hub.client.app[HUB].connections
    held = Held(Identity("abc", "viewer"))
    conns.add(held)
    assert conns.by_token == {"abc": {held}}
    conns.discard(held)
    assert conns.by_token == {}


async def test_revoking_a_token_closes_its_open_sockets_and_refuses_it(secured, tmp_path: Path) -> None:
    hub, tokens = secured
    ws = await hub.ws("/ws", params={"token": tokens["viewer"]})
    assert (await ask(ws, {"type": "ping", "message_id": "p"}))["type"] == "pong"
    revoke_token(tmp_path / "hive.db", tokens["viewer"])
    code, reason, _ = await recv_close(ws)
    assert (code, reason) == (1008, "unauthorized: token revoked")
    r = await hub.get("/api/tasks", headers=bearer(tokens["viewer"]))
    assert (r.status, r.code) == (401, "unauthorized")
    assert (await hub.get("/api/tasks", headers=bearer(tokens["operator"]))).status == 200


async def test_writes_over_the_rate_limit_are_429_with_retry_after(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", rate_limit_per_second=0.5, rate_limit_burst=2)
    assert (await hub.post("/api/tasks", {})).status == 201
    assert (await hub.post("/api/tasks", {})).status == 201
    r = await hub.post("/api/tasks", {})
    assert (r.status, r.code) == (429, "rate_limited"), r
    assert int(r.headers["Retry-After"]) >= 1
    # reads are not limited
    assert (await hub.get("/api/tasks")).status == 200
    assert len((await hub.get("/api/tasks")).body["tasks"]) == 2


def test_the_auto_websocket_cap_applies_only_while_auth_is_on_and_an_explicit_one_always() -> None:
    assert (ws_limit(None, False), ws_limit(None, True)) == (None, AUTO_WS_PER_CLIENT)
    assert (ws_limit(3, False), ws_limit(3, True)) == (3, 3)


async def test_auto_lets_one_local_client_open_more_sockets_than_the_cap_while_auth_is_off(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(db="memory")  # auth off, --max-ws-per-client auto
    # (a session of its own: the test client's pools at most 100 connections)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        socks = [await session.ws_connect(hub.client.make_url("/ws")) for _ in range(AUTO_WS_PER_CLIENT + 4)]
        # the last one is as open as the first: it answers
        assert (await ask(socks[-1], {"type": "ping", "message_id": "p"}))["type"] == "pong"
        for w in socks:
            await w.close()


async def test_auto_caps_one_token_once_auth_is_on(hub_factory: HubFactory, tmp_path: Path) -> None:
    from .conftest import make_token

    token = make_token(tmp_path / "hive.db", "viewer")
    hub = await hub_factory()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        url = hub.client.make_url("/ws")
        socks = [await session.ws_connect(url, headers=bearer(token)) for _ in range(AUTO_WS_PER_CLIENT)]
        over = await session.ws_connect(url, headers=bearer(token))
        code, reason, _ = await recv_close(over)
        assert code == 1008 and reason.endswith(f"(limit {AUTO_WS_PER_CLIENT})"), reason
        for w in socks:
            await w.close()


async def test_ws_connections_over_the_per_client_limit_are_closed_1008(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", max_ws_per_client=1)
    first = await hub.ws("/ws")
    second = await hub.ws("/ws")
    code, reason, _ = await recv_close(second)
    assert code == 1008 and reason.startswith("rate_limited"), reason
    assert (await ask(first, {"type": "ping", "message_id": "p"}))["type"] == "pong"
    await first.close()
