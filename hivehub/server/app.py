"""The app factory: wires the service, the stream, the agent gateway and the
routes. No module-level instances; everything is passed in."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from ..monitor.modules import ModuleMonitor
from ..monitor.watch import HiveWatch
from ..store.base import EventStore, open_store
from . import observability
from .agents import AgentGateway
from .auth import RateLimiter, TokenStore, auth_middleware, cors_middleware
from .background import LearningRunner
from .config import ServerConfig
from .errors import error_middleware
from .rest import add_routes
from .service import HubService
from .stream import StreamHub

log = logging.getLogger("hivehub.app")
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"


def create_app(config: ServerConfig, store: EventStore | None = None) -> web.Application:
    app = web.Application(
        middlewares=[cors_middleware, error_middleware, auth_middleware], client_max_size=config.max_body_bytes
    )
    app["config"] = config
    app["tokens"] = TokenStore(config.db, env_admin_token=config.admin_token)
    app["rate_limiter"] = RateLimiter(config.rate_limit_per_second, config.rate_limit_burst)
    app["ws_clients"] = {}
    service = HubService(
        store or open_store(config.db, busy_timeout_ms=config.store_busy_timeout_ms),
        hive_config=config.hive,
        tick_max_seconds=config.tick_max_seconds,
    )
    app["service"] = service
    app["stream"] = StreamHub(service, app)
    app["gateway"] = AgentGateway(service, config)
    app["learning"] = LearningRunner(service)
    app["modules"] = ModuleMonitor(app)
    app["watch"] = HiveWatch(
        app,
        app["modules"],
        status_interval=config.status_interval,
        resource_interval=config.resource_interval,
        thresholds=config.thresholds,
    )
    app["metrics"] = observability.Metrics(app)
    app["background"] = []
    add_routes(app)
    app.router.add_get("/ws", app["stream"].handle)
    app.router.add_get("/agents/ws", app["gateway"].handle)
    if (DASHBOARD / "index.html").exists():
        app.router.add_get("/", _index)
        app.router.add_static("/static/", DASHBOARD, name="static")
    app.on_startup.append(_startup)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DASHBOARD / "index.html")


async def _startup(app: web.Application) -> None:
    await app["service"].start()
    app["modules"].start()
    app["watch"].start()


async def _shutdown(app: web.Application) -> None:
    for t in app["background"]:
        t.cancel()
    await app["stream"].close_all(1001, "hub shutting down")
    await app["gateway"].close_all(1001, "hub shutting down")


async def _cleanup(app: web.Application) -> None:
    bg: list[asyncio.Task[Any]] = app["background"]
    for t in bg:
        try:
            await t
        except (asyncio.CancelledError, Exception):
            pass
    await app["watch"].stop()
    await app["modules"].stop()
    await app["service"].stop()
