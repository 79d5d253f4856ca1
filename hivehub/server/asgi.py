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
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from aiohttp import web

from ..core import errors as E
from .keys import NAMESPACE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]

#: how often a request whose body is read checks that its client is still there
DISCONNECT_POLL_S = 0.25


def mount(app: web.Application, prefix: str, asgi: ASGIApp, max_body_bytes: int | None = None) -> None:
    """Route ``prefix`` and everything under it to ``asgi``. A request body longer
    than ``max_body_bytes`` (declared or, when chunked, counted) is answered 413."""
    prefix = prefix.rstrip("/")

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(request, asgi, prefix, max_body_bytes)

    app.router.add_route("*", prefix, handler)
    app.router.add_route("*", prefix + "/{tail:.*}", handler)


def lifespan(app: web.Application, run: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    """Keep ``run()`` (e.g. an MCP session manager's ``run``) entered while the hub serves."""

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await hold(stack, run)
            yield

    app.cleanup_ctx.append(ctx)


async def hold(stack: AsyncExitStack, run: Callable[[], AbstractAsyncContextManager[Any]]) -> None:
    """Enter ``run()`` now and keep it entered until ``stack`` closes.

    An anyio task group (the MCP session manager holds one) must be left by the
    task that entered it; aiohttp's cleanup runs in another, so the context lives
    in a task of its own."""
    entered = asyncio.Event()
    leave = asyncio.Event()

    async def holding() -> None:
        async with run():
            entered.set()
            await leave.wait()

    task = asyncio.create_task(holding())
    waiting = asyncio.create_task(entered.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # entering failed: raise it

    async def release() -> None:
        leave.set()
        await task

    stack.push_async_callback(release)


class Lazy:
    """An ASGI app built on the first request to it, so a hub does not import an
    SDK (the MCP and A2A ones take most of a second) before it can answer
    ``/health``. ``build(stack)`` returns the app; what it enters or opens it
    leaves on ``stack``, which :meth:`close` closes (at the hub's cleanup). A
    build that fails answers that request 500 and is tried again on the next."""

    def __init__(self, build: Callable[[AsyncExitStack], Awaitable[ASGIApp]]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._building: asyncio.Lock | None = None
        self._stack = AsyncExitStack()

    @property
    def built(self) -> bool:
        return self._app is not None

    async def get(self) -> ASGIApp:
        if self._app is None:
            if self._building is None:
                self._building = asyncio.Lock()
            async with self._building:  # concurrent first requests build it once
                if self._app is None:
                    self._app = await self._build(self._stack)
        return self._app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        await (await self.get())(scope, receive, send)

    async def close(self) -> None:
        self._app = None
        await self._stack.aclose()
        self._stack = AsyncExitStack()

    def close_on_cleanup(self, app: web.Application) -> None:
        async def close(_: web.Application) -> None:
            await self.close()

        app.on_cleanup.append(close)


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
        # the namespace's URL prefix (``/ns/NAME``; "" for the default), for ``loopback_url``
        "hive_prefix": request.get(NAMESPACE, ""),
    }


class BodyTooLarge(Exception):
    pass


async def serve(
    request: web.Request, asgi: ASGIApp, prefix: str, max_body_bytes: int | None = None
) -> web.StreamResponse:
    if max_body_bytes is not None and (request.content_length or 0) > max_body_bytes:
        raise _too_large(max_body_bytes)
    response: web.StreamResponse | None = None
    status = 500
    headers: list[tuple[str, str]] = []
    body_done = False
    body_read = 0
    too_large = False  # then what the app sends (its 500 for our exception) is dropped
    finished = asyncio.Event()

    async def receive() -> Message:
        nonlocal body_done, body_read
        if not body_done:
            # readany, not readchunk: with chunked transfer encoding readchunk's
            # "end" marks the end of one HTTP chunk, not of the body
            chunk = await request.content.readany()
            body_read += len(chunk)
            if max_body_bytes is not None and body_read > max_body_bytes:
                nonlocal too_large
                too_large = True
                raise BodyTooLarge
            if not chunk or request.content.at_eof():
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
        if too_large:
            return
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
    except BodyTooLarge:
        if response is None and max_body_bytes is not None:
            raise _too_large(max_body_bytes) from None
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        finished.set()
        raise
    finally:
        finished.set()
    if too_large and response is None and max_body_bytes is not None:
        raise _too_large(max_body_bytes)  # the app caught it and answered nothing we kept
    if response is None:
        # the app ended without a body message: send what it started (or a 500)
        response = web.Response(status=status, headers=headers)
    return response


def _too_large(limit: int) -> E.PayloadTooLarge:
    # the hub's error middleware answers it: 413 with the table's body
    return E.PayloadTooLarge("request body too large", limit=limit)


def loopback_url(scope: Scope) -> str:
    """The hub's own base URL as seen from inside it, for an adapter mounted here that
    calls the hub's API with ``HiveClient`` (so it gets the same auth, roles and errors
    as any client): the socket the request came in on, a wildcard address made loopback,
    and the namespace's prefix when the request came in under ``/ns/NAME/``."""
    server = scope.get("server") or ("127.0.0.1", 3001)
    host, port = str(server[0]), int(server[1])
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{scope.get('hive_prefix', '')}"
