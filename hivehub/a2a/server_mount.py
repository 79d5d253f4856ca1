"""Serve the hive as an A2A agent: the Agent Card and the JSON-RPC endpoint."""

from __future__ import annotations

import asyncio
import importlib
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import web

from ..server.asgi import ASGIApp, Lazy, Scope, mount
from ..server.config import ServerConfig
from ..server.hub import HUB
from .paths import AGENT_CARD_PATH, RPC_PATH


def mount_a2a(app: web.Application, config: ServerConfig) -> Lazy:
    """``/.well-known/agent-card.json`` (public) and ``/a2a`` (JSON-RPC, read role to
    open; each method then runs with the caller's own token) on the hub's port. The
    A2A app is built on the first request to either (the SDK takes a good part of a
    second to import, on a thread so the hub goes on serving)."""

    async def build(stack: AsyncExitStack) -> ASGIApp:
        await asyncio.to_thread(importlib.import_module, f"{__package__}.server")
        from .server import create_a2a_app  # noqa: PLC0415 - the SDK loads only here

        starlette = create_a2a_app(app[HUB])

        async def asgi(scope: Scope, receive: Any, send: Any) -> None:
            # Starlette routes on the path under root_path; ours are full paths
            await starlette({**scope, "root_path": ""}, receive, send)

        return asgi

    lazy = Lazy(build)
    mount(app, RPC_PATH, lazy, max_body_bytes=config.max_body_bytes)
    mount(app, AGENT_CARD_PATH, lazy, max_body_bytes=config.max_body_bytes)
    lazy.close_on_cleanup(app)
    return lazy


__all__ = ["AGENT_CARD_PATH", "RPC_PATH", "mount_a2a"]
