"""Serve the hive as an A2A agent: the Agent Card and the JSON-RPC endpoint."""

from __future__ import annotations

from aiohttp import web

from ..server.config import ServerConfig


def mount_a2a(app: web.Application, config: ServerConfig) -> None:
    """Wiring point, filled in with the A2A server (issue 14)."""
