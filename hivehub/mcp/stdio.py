"""Serve the MCP server over stdio (``hive mcp``), for assistants that launch a command.

One ``HiveClient`` for the whole process, with the URL and token given on the
command line: the assistant's user chose them, so every tool acts with that
token's role. Logs go to stderr; stdout carries only the protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from ..client import HiveClient
from .server import build_server


async def serve_stdio(url: str, token: str | None = None) -> None:
    """Answer MCP on stdin/stdout until stdin closes."""
    async with HiveClient(url, token) as client:

        @asynccontextmanager
        async def connect(_ctx: ServerRequestContext[Any, Any]) -> AsyncIterator[HiveClient]:
            yield client

        server = build_server(connect)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
