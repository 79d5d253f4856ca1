"""REST routes about the hub itself: ``/api`` (entry points), ``/health`` and
``/api/hive/status``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from .. import __version__
from ..protocol.messages import (
    ApiInfo,
)
from .hub import HUB
from .routes import (
    hub,
    json,
    raw_json,
    route,
)

_enc = msgspec.json.Encoder()


@route("GET", "/api", "Service name, version and entry points", response=ApiInfo)
async def api_info(request: web.Request) -> web.Response:
    return json(
        ApiInfo(
            name="Hive Hub",
            version=__version__,
            spec="AI Orchestrator Hub WebSocket API",
            endpoints={
                "stream": "/ws",
                "agents": "/agents/ws",
                "openapi": "/api/openapi.json",
                "health": "/health",
                "dashboard": "/",
            },
        )
    )


@route("GET", "/health", "Health folded from module states (503 when unhealthy)", errors=(503,))
async def health(request: web.Request) -> web.Response:
    report = request.app[HUB].modules.report()
    return json(report, status=503 if report["status"] == "unhealthy" else 200)


@route("GET", "/api/hive/status", "Hive status folded from the event log")
async def hive_status(request: web.Request) -> web.Response:
    h = hub(request)
    return raw_json(await h.view.read(lambda r: _enc.encode(h.status(r))))
