"""Serve the MCP server at ``/mcp`` on the hub's port (streamable HTTP).

The request has passed the hub's middlewares before it gets here (auth with the
``read`` class, origin checks, the body limit, rate limits); each tool then calls
the hub's REST API on the hub's own port (``asgi.loopback_url``) with the token the
request carried, so a write tool is refused (``forbidden``) for a viewer token just
as the REST route is.

Stateless mode: each POST is one self-contained exchange (its progress
notifications and its answer on that response's SSE stream), and the hub keeps no
MCP session. Nothing is lost by it: the tools have no per-session state (a task is
in the hub, found again by its id), server-to-client requests (sampling,
elicitation) are not used, and any replica of a cluster can answer any request
without sticky sessions or a session table to expire.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..server import asgi
from ..server.config import ServerConfig

if TYPE_CHECKING:  # the SDK loads with the first request to /mcp (``mount_mcp``)
    from mcp.server.context import ServerRequestContext

    from ..client import HiveClient
    from .clients import ClientCache

PATH = "/mcp"


def caller_token(request: Any) -> str | None:
    """The token the HTTP request carried, read as the hub's auth reads it
    (``Authorization: Bearer``, ``X-API-Key``, ``?token=``)."""
    if request is None:
        return None
    h = request.headers.get("authorization", "")
    if h.lower().startswith("bearer "):
        return str(h[7:].strip()) or None
    k = request.headers.get("x-api-key")
    if k:
        return str(k.strip())
    return request.query_params.get("token") or None


def loopback_connect(
    cache: ClientCache,
) -> Callable[[ServerRequestContext[Any, Any]], AbstractAsyncContextManager[HiveClient]]:
    """The tools' ``connect``: the cached client for the hub's own port and the
    caller's token (``mcp/clients.py``)."""

    @asynccontextmanager
    async def connect(ctx: ServerRequestContext[Any, Any]) -> AsyncIterator[HiveClient]:
        request = ctx.request
        if request is None:  # not over HTTP: nothing to call the hub with
            raise RuntimeError("the /mcp server was called without an HTTP request")
        # the default 30 s per REST call; wait_for_task follows /ws, bounded by its own timeout_s
        async with cache.client(asgi.loopback_url(request.scope), caller_token(request)) as c:
            yield c

    return connect


def mount_mcp(app: web.Application, config: ServerConfig) -> asgi.Lazy:
    """Route ``/mcp`` to the MCP server. It is built on the first request (the SDK
    takes most of a second to import, on a thread so the hub goes on serving), and
    its session manager then runs until the hub stops."""

    async def build(stack: AsyncExitStack) -> asgi.ASGIApp:
        await asyncio.to_thread(importlib.import_module, f"{__package__}.server")
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager  # noqa: PLC0415

        from .clients import ClientCache  # noqa: PLC0415
        from .server import build_server  # noqa: PLC0415

        clients = ClientCache()
        stack.push_async_callback(clients.close)
        manager = StreamableHTTPSessionManager(
            app=build_server(loopback_connect(clients)),
            stateless=True,
            json_response=False,  # SSE answers: progress notifications stream before the result
            # the hub's middleware already checks Origin and Host (origin_ok) and the body size
            security_settings=None,
            max_request_body_size=config.max_body_bytes,
        )
        await asgi.hold(stack, manager.run)
        return manager.handle_request

    lazy = asgi.Lazy(build)
    asgi.mount(app, PATH, lazy, max_body_bytes=config.max_body_bytes)
    lazy.close_on_cleanup(app)
    return lazy
