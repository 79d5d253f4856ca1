"""Serve an ASGI application (the MCP and A2A SDKs' Starlette apps) under a path of
the hub's aiohttp app, on the hub's port, behind the hub's middlewares.

``mount(app, "/mcp", asgi_app)`` adds one catch-all route. Each request becomes an
ASGI ``http`` scope (``root_path`` is the mount path, ``path`` the full path); the
body is handed over in chunks as it arrives, and the response is streamed as the app
sends it (server-sent events pass straight through). When the client goes away the
app's next ``receive()`` answers ``http.disconnect``, so a stream it serves ends.
Lifespan events are not sent: the owner of the ASGI app runs what it needs from the
aiohttp app's ``cleanup_ctx`` (see ``lifespan``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiohttp import web

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

#: how often a request whose body is read checks that its client is still there
DISCONNECT_POLL_S = 0.25


def mount(app: web.Application, prefix: str, asgi: ASGIApp) -> None:
    """Route ``prefix`` and everything under it to ``asgi``."""
    prefix = prefix.rstrip("/")

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(request, asgi, prefix)

    app.router.add_route("*", prefix, handler)
    app.router.add_route("*", prefix + "/{tail:.*}", handler)


def lifespan(app: web.Application, run: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    """Keep ``run()`` (e.g. an MCP session manager's ``run``) entered while the hub serves."""

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        async with run():
            yield

    app.cleanup_ctx.append(ctx)


def _scope(request: web.Request, prefix: str) -> Scope:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    sock = transport.get_extra_info("sockname") if transport is not None else None
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode(),
        "root_path": prefix,
        "query_string": request.query_string.encode(),
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
        "state": {},
    }


async def serve(request: web.Request, asgi: ASGIApp, prefix: str) -> web.StreamResponse:
    response: web.StreamResponse | None = None
    status = 500
    headers: list[tuple[str, str]] = []
    body_done = False
    finished = asyncio.Event()

    async def receive() -> Message:
        nonlocal body_done
        if not body_done:
            chunk, end = await request.content.readchunk()
            while not chunk and not end:
                chunk, end = await request.content.readchunk()
            if end or request.content.at_eof():
                body_done = True
            return {"type": "http.request", "body": chunk, "more_body": not body_done}
        # the body is read: answer only when the client leaves or the response ends
        while not finished.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                await asyncio.wait_for(finished.wait(), DISCONNECT_POLL_S)
            except TimeoutError:
                pass
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal response, status, headers
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())]
            return
        if kind != "http.response.body":
            return
        if response is None:
            response = web.StreamResponse(status=status)
            for k, v in headers:
                if k.lower() not in ("content-length", "transfer-encoding"):
                    response.headers.add(k, v)
            if not message.get("more_body", False):
                response.content_length = len(message.get("body", b""))
            await response.prepare(request)
        body = message.get("body", b"")
        if body:
            await response.write(body)
        if not message.get("more_body", False):
            await response.write_eof()
            finished.set()

    try:
        await asgi(_scope(request, prefix), receive, send)
    except (ConnectionResetError, asyncio.CancelledError):
        finished.set()
        raise
    finally:
        finished.set()
    if response is None:
        # the app ended without a body message: send what it started (or a 500)
        response = web.Response(status=status, headers=headers)
    return response
