"""A tiny in-process hub for the CLI tests: canned JSON replies per route, and a /ws
that sends a given list of event envelopes. It runs its own event loop in a thread,
because each ``hive`` command runs ``asyncio.run`` itself; every request it got is
recorded (method, path, query, JSON body) for the test to check."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web


class FakeRest:
    def __init__(self) -> None:
        #: ``(method, path)`` -> ``(status, JSON body)``
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}
        #: envelopes the /ws sends, in order (then it waits for the client to leave)
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, method: str, path: str, body: Any, status: int = 200) -> None:
        self.routes[(method, path)] = (status, body)

    async def _any(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/ws":
            return await self._ws(request)
        raw = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": json.loads(raw) if raw else None,
            }
        )
        found = self.routes.get((request.method, request.path))
        if found is None:
            err = {"error": {"code": "not_found", "message": f"no route {request.path}", "details": {}}}
            return web.json_response(err, status=404)
        status, body = found
        return web.json_response(body, status=status)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.requests.append({"method": "WS", "path": "/ws", "query": dict(request.query), "body": None})
        for e in self.events:
            await ws.send_str(json.dumps(e))
        async for msg in ws:  # answer pings until the client leaves
            obj = json.loads(msg.data)
            if obj.get("type") == "ping":
                await ws.send_str(
                    json.dumps({"type": "pong", "data": {}, "message_id": obj.get("message_id")})
                )
        return ws

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> FakeRest:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
