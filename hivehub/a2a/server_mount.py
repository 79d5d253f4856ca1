"""Serve the hive as an A2A agent: the Agent Card and the JSON-RPC endpoint."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..server.asgi import Scope, mount
from ..server.config import ServerConfig
from ..server.hub import HUB


def mount_a2a(app: web.Application, config: ServerConfig) -> None:
    """``/.well-known/agent-card.json`` (public) and ``/a2a`` (JSON-RPC, read role to
    open; each method then runs with the caller's own token) on the hub's port."""
    from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH  # noqa: PLC0415

    from .server import RPC_PATH, create_a2a_app  # noqa: PLC0415 - the SDK loads only here

    starlette = create_a2a_app(app[HUB])

    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        # Starlette routes on the path under root_path; ours are full paths
        await starlette({**scope, "root_path": ""}, receive, send)

    mount(app, RPC_PATH, asgi, max_body_bytes=config.max_body_bytes)
    mount(app, AGENT_CARD_WELL_KNOWN_PATH, asgi, max_body_bytes=config.max_body_bytes)


__all__ = ["mount_a2a"]
