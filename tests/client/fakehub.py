"""A scripted in-process stand-in for the hub's /ws and /api/hive/status, to make
the client meet what a healthy hub rarely does on cue: pings left unanswered,
1013 and 1008 closes, replays that overlap what was already delivered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Script = Callable[["Conn"], Awaitable[None]]


def event(seq: int | None, typ: str = "task_created", **data: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "type": typ,
        "data": {"timestamp": "2026-01-01T00:00:00Z", **data},
        "timestamp": "2026-01-01T00:00:00Z",
        "message_id": f"m{seq}",
    }
    if seq is not None:
        e["sequence"] = seq
    return e


class Conn:
    """One accepted /ws connection, as the script sees it."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, index: int) -> None:
        self.ws = ws
        self.query = dict(request.query)
        self.headers = dict(request.headers)
        self.index = index
        self.received: list[dict[str, Any]] = []

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(obj))

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    async def serve_pings(self) -> None:
        """Answer pings (and every other request, with an empty result) until closed."""
        async for msg in self.ws:
            obj = json.loads(msg.data)
            self.received.append(obj)
            typ = obj["type"]
            reply = "pong" if typ == "ping" else f"{typ}_result"
            await self.send(
                {"type": reply, "data": {}, "message_id": obj.get("message_id"), "timestamp": "x"}
            )

    async def ignore(self) -> None:
        """Read and drop everything: a hub that stopped answering."""
        async for msg in self.ws:
            self.received.append(json.loads(msg.data))


class FakeHub:
    def __init__(self, scripts: list[Script], published_sequence: int = 0) -> None:
        self.scripts = scripts
        self.published_sequence = published_sequence
        self.conns: list[Conn] = []
        self.rest_headers: list[dict[str, str]] = []
        self.connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _status(self, request: web.Request) -> web.Response:
        self.rest_headers.append(dict(request.headers))
        return web.json_response(
            {"published_sequence": self.published_sequence, "sequence": self.published_sequence}
        )

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Conn(ws, request, len(self.conns))
        self.conns.append(conn)
        self.connected.set()
        script = self.scripts[min(conn.index, len(self.scripts) - 1)]
        await script(conn)
        if not ws.closed:
            await ws.close()
        return ws

    async def __aenter__(self) -> FakeHub:
        app = web.Application()
        app.router.add_get("/api/hive/status", self._status)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_conns(self, n: int, timeout: float = 10.0) -> Conn:
        async def wait() -> Conn:
            while len(self.conns) < n:
                self.connected.clear()
                await self.connected.wait()
            return self.conns[n - 1]

        return await asyncio.wait_for(wait(), timeout)
