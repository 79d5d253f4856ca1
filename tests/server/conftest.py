"""In-process server tests: the real aiohttp app on the memory store, driven over
HTTP and WebSockets by aiohttp's test client.

The app is built in ONE place (``build_app``) so that a change to ``create_app``'s
signature is adapted here only. The tests use nothing but the HTTP/WS surface (and
the memory store they hand in), never the app's internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer

# the settings the tests pass in (ServerConfig.hive and .thresholds), imported here
# only, so a move of either is adapted in this file
from hivehub.core.hive import HiveConfig
from hivehub.monitor.resources import Thresholds
from hivehub.server.app import create_app
from hivehub.server.config import ServerConfig
from hivehub.store.memory import MemoryEventStore
from tests.conftest import TIME_SCALE

#: the store every test hands in
MemoryStore = MemoryEventStore

__all__ = ["HiveConfig", "MemoryStore"]

HERE = Path(__file__).resolve().parent

#: the longest any test waits for one reply or event (scaled by HIVE_TEST_TIME_SCALE)
WAIT = 5.0 * TIME_SCALE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # create_app stores its parts under string app keys (and the auth middleware under
    # string request keys), which aiohttp warns about on every app built in process.
    # Only that warning is ignored, only here; it goes once app keys are typed
    # (issue 12 item 2). Every other warning stays an error.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning"))


def build_app(config: ServerConfig, store: MemoryEventStore) -> web.Application:
    """The one place the app is constructed."""
    return create_app(config, store=store)


def make_token(db: Path, role: str, agent_id: str | None = None) -> str:
    """A token as ``hive token create`` makes it (call before the hub starts, or wait
    for the hub's token watch to pick it up)."""
    from hivehub.server.auth import TokenStore

    token, _ = TokenStore(str(db)).create(role, agent_id)
    return token


def revoke_token(db: Path, token: str) -> None:
    """As ``hive token revoke``."""
    from hivehub.server.auth import TokenStore

    assert TokenStore(str(db)).revoke(token)


def is_domain(event: dict[str, Any]) -> bool:
    """A task or agent event (not one of the hub's observations of itself)."""
    return str(event.get("type", "")).startswith(("task_", "agent_"))


def increasing(seqs: list[int]) -> bool:
    return all(a < b for a, b in zip(seqs, seqs[1:], strict=False))


class Reply:
    """An HTTP answer: status, headers and the decoded JSON body (None if not JSON)."""

    def __init__(self, status: int, headers: Any, body: Any, text: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.text = text

    @property
    def code(self) -> str | None:
        """The stable error ``code`` of an error answer."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")  # type: ignore[no-any-return]
        return None

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.text[:300]!r}>"


class Hub:
    """A running in-process hub and a client for it."""

    def __init__(self, client: TestClient, store: MemoryEventStore, config: ServerConfig) -> None:
        self.client = client
        self.store = store
        self.config = config
        #: sent on every request unless a test passes its own headers
        self.headers: dict[str, str] = {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Reply:
        h = dict(self.headers if headers is None else headers)
        if json is not None:
            data = msgspec.json.encode(json)
            h.setdefault("Content-Type", "application/json")
        async with self.client.request(method, path, data=data, headers=h, **kw) as resp:
            text = await resp.text()
            body = None
            if resp.content_type == "application/json":
                body = msgspec.json.decode(text) if text else None
            return Reply(resp.status, resp.headers, body, text)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)

    async def submit(self, **spec: Any) -> dict[str, Any]:
        r = await self.post("/api/tasks", spec)
        assert r.status == 201, r
        return r.body  # type: ignore[no-any-return]

    async def register(self, name: str = "a1", caps: list[str] | None = None, **spec: Any) -> dict[str, Any]:
        """A pull agent registered over REST."""
        body = {"name": name, "capabilities": [{"name": c, "proficiency": 0.9} for c in caps or []], **spec}
        r = await self.post("/api/agents", body)
        assert r.status in (200, 201), r
        return r.body  # type: ignore[no-any-return]

    async def events(
        self, since: int = 0, types: str | None = None, *, everything: bool = False
    ) -> list[dict[str, Any]]:
        """The logged events after ``since``: by default only the task and agent events
        (the hub's own observations, such as a module going degraded on a busy machine,
        may come between them at any time)."""
        params = {"since": str(since)}
        if types:
            params["types"] = types
        r = await self.get("/api/events", params=params)
        assert r.status == 200, r
        events: list[dict[str, Any]] = r.body["events"]
        return events if everything or types else [e for e in events if is_domain(e)]

    async def head(self) -> int:
        r = await self.get("/api/hive/status")
        assert r.status == 200, r
        return r.body["published_sequence"]  # type: ignore[no-any-return]

    async def ws(
        self, path: str = "/ws", params: dict[str, str] | None = None, **kw: Any
    ) -> ClientWebSocketResponse:
        kw.setdefault("headers", self.headers)
        return await self.client.ws_connect(path, params=params, **kw)


async def recv(ws: ClientWebSocketResponse, timeout: float = WAIT) -> dict[str, Any]:
    """The next JSON text message; fails on a close, a binary frame or the timeout."""
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
    return msg.json()  # type: ignore[no-any-return]


async def recv_until(
    ws: ClientWebSocketResponse, pred: Callable[[dict[str, Any]], bool], timeout: float = WAIT
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read until a message matches; returns it and every message before it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: list[dict[str, Any]] = []
    while True:
        m = await recv(ws, max(0.01, deadline - loop.time()))
        if pred(m):
            return m, seen
        seen.append(m)


async def ask(ws: ClientWebSocketResponse, msg: dict[str, Any]) -> dict[str, Any]:
    """Send a /ws control message and return the reply that echoes its message_id
    (events, which may come between, carry a sequence; replies do not)."""
    await ws.send_json(msg)
    reply, _ = await recv_until(
        ws, lambda m: m.get("message_id") == msg.get("message_id") and "sequence" not in m
    )
    return reply


async def recv_close(
    ws: ClientWebSocketResponse, timeout: float = WAIT
) -> tuple[int | None, str, list[dict[str, Any]]]:
    """Read until the hub closes; returns (close code, reason, messages before it)."""
    seen: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type == WSMsgType.TEXT:
            seen.append(msg.json())
            continue
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), (msg.type, msg.data)
        if msg.type == WSMsgType.CLOSE:  # the code and reason of the hub's close frame
            return int(msg.data), msg.extra or "", seen
        return ws.close_code, "", seen


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """``await hub_factory(**ServerConfig overrides)`` -> a started Hub; all closed after.

    Defaults keep tests fast and the log quiet: no resource alerts (an alert would
    add events a test does not expect on a busy machine), no periodic status events."""
    started: list[TestClient] = []

    async def make(store: MemoryEventStore | None = None, **overrides: Any) -> Hub:
        opts: dict[str, Any] = {
            "db": str(tmp_path / "hive.db"),
            "demo_agents": False,
            "demo_workload": False,
            "status_interval": 3600.0,
            "resource_interval": 3600.0,
            # above 100 %: a loaded test machine raises no resource alert
            "thresholds": Thresholds(cpu=1000, memory=1000, disk=1000, event_loop_lag_ms=600_000),
            **overrides,
        }
        config = ServerConfig(**opts)
        store = store if store is not None else MemoryEventStore()
        client = TestClient(TestServer(build_app(config, store)))
        await client.start_server()
        started.append(client)
        return Hub(client, store, config)

    yield make
    for c in reversed(started):
        await c.close()


@pytest.fixture
async def hub(hub_factory: HubFactory) -> Hub:
    """A hub with auth off (no token exists)."""
    return await hub_factory(db="memory")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def secured(hub_factory: HubFactory, tmp_path: Path) -> tuple[Hub, dict[str, str]]:
    """A hub with auth on and one token per role (the agent token bound to ``a1``)."""
    db = tmp_path / "hive.db"
    tokens = {role: make_token(db, role) for role in ("viewer", "operator", "admin")}
    tokens["agent"] = make_token(db, "agent", "a1")
    hub = await hub_factory()
    return hub, tokens
