"""Serve the MCP server at ``/mcp`` on the hub's port."""

from __future__ import annotations

from aiohttp import web

from ..server.config import ServerConfig


def mount_mcp(app: web.Application, config: ServerConfig) -> None:
    """Wiring point, filled in with the MCP server (issue 14)."""
