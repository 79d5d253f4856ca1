"""The app factory: wires the service, the stream, the agent gateway and the
routes. No module-level instances; everything is passed in."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

from aiohttp import web

from ..bus import open_bus
from ..monitor.modules import ModuleMonitor
from ..monitor.watch import HiveWatch
from ..protocol.errors import CLOSE_GOING_AWAY
from ..store import open_store
from ..store.base import EventStore
from . import (  # noqa: F401 - observability registers its routes, after rest.py's
    heap,
    observability,
    placement,
)
from .agents import AgentGateway
from .background import LearningRunner
from .clientlimits import Connections, RateLimiter
from .cluster import Cluster
from .config import ServerConfig
from .errors import install_log_filters
from .hub import HUB, Hub
from .internal import internal_execute
from .metrics import HiveCollector, Metrics
from .middleware import auth_middleware, cors_middleware, error_middleware, start_token_watch
from .modulebus import ModuleBus
from .namespaces import derive_config, install, validate_names
from .placement import Replicas
from .rest import add_routes
from .service import HubService
from .stream import StreamHub
from .tokens import TokenStore
from .view import CommittedView

log = logging.getLogger("hivehub.app")
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"


def create_app(
    config: ServerConfig,
    store: EventStore | None = None,
    *,
    replicas: Replicas | None = None,
    hive_index: int = 0,
) -> web.Application:
    """The hub's app: the default namespace at today's URLs and, for each of
    ``config.namespaces``, a whole hub of its own built here from a derived
    configuration and served under ``/ns/NAME/`` (``server/namespaces.py``).
    Raises ValueError for an invalid or repeated namespace name.

    ``replicas`` and ``hive_index`` are given to a namespace's app by the default's:
    the process's replica registration and the hive's number (``placement.py``)."""
    names = validate_names(list(config.namespaces))
    app = web.Application(
        middlewares=[cors_middleware, error_middleware, auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    install_log_filters()
    service = HubService(
        store or open_store(config.db, busy_timeout_ms=config.store_busy_timeout_ms),
        hive_config=config.hive,
        tick_max_seconds=config.tick_max_seconds,
        bus=open_bus(config.bus) if config.bus not in (None, "", "memory") else None,
        snapshot_events=config.snapshot_events,
        snapshot_seconds=config.snapshot_interval,
    )
    hub = app[HUB] = Hub(
        config=config,
        service=service,
        view=CommittedView(service),
        tokens=(tokens := TokenStore(config.db, env_admin_token=config.admin_token, mode=config.auth)),
        rate_limiter=RateLimiter.configured(
            config.rate_limit_per_second, config.rate_limit_burst, lambda: tokens.enabled
        ),
    )
    # Each part is built with what it calls; the hub stands in (``ports.StatusBoard``)
    # for the status and alerts the stream shows, built after it.
    # The listeners' order is the order of fan-out: stream, gateway, learning, metrics.
    hub.stream = StreamHub(service, config, hub.view, hub.rate_limiter, board=hub)
    hub.gateway = AgentGateway(service, config)
    hub.connections = Connections(service, hub.gateway)
    hub.module_bus = ModuleBus(service, hub.stream.wants)
    hub.learning = LearningRunner(service, hub.module_bus)
    hub.modules = ModuleMonitor(service, hub.stream, config)
    hub.watch = HiveWatch(
        service,
        hub.modules,
        db=config.db,
        status_interval=config.status_interval,
        resource_interval=config.resource_interval,
        thresholds=config.thresholds,
    )
    hub.metrics = Metrics(
        service,
        hub.module_bus,
        HiveCollector(service, hub.stream, hub.gateway, hub.tokens, hub.modules, hub.watch),
    )
    service.error_hook = hub.watch.report_error
    if clustered(config):
        replica_id = config.replica_id or f"{socket.gethostname()}:{config.port}"
        own = replicas is None
        if replicas is None:  # the default namespace: this process registers here
            replicas = Replicas(
                config.db,
                replica_id=replica_id,
                advertise=config.advertise or f"http://127.0.0.1:{config.port}",
                settle_seconds=config.leader_grace,
            )
        hub.cluster = Cluster(
            service,
            config.db,
            replica_id=replica_id,
            advertise=config.advertise or f"http://127.0.0.1:{config.port}",
            secret=config.cluster_secret or "",
            on_lead=hub.on_lead,
            replicas=replicas,
            own_replicas=own,
            hive_index=hive_index,
            grace=config.leader_grace,
        )
        app.router.add_post("/internal/execute", internal_execute)
        hub.on_lead.append(hub.watch.start)
    add_routes(app)
    _mount_protocols(app, config)
    app.router.add_get("/ws", hub.stream.handle)
    app.router.add_get("/agents/ws", hub.gateway.handle)
    if (DASHBOARD / "index.html").exists():
        app.router.add_get("/", _index)
        app.router.add_static("/static/", DASHBOARD, name="static")
    app.on_startup.append(start_token_watch)
    app.on_startup.append(_startup)
    app.on_startup.append(_start_heap_trim)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    if names:
        # built after the default, started after it (its on_startup hooks come last)
        reg = hub.cluster.replicas if hub.cluster is not None else None
        install(
            app,
            {
                n: create_app(
                    derive_config(config, n), replicas=reg, hive_index=placement.hive_index(n, names)
                )
                for n in names
            },
        )
    return app


def _mount_protocols(app: web.Application, config: ServerConfig) -> None:
    """The open agent protocols on the hub's port: MCP at ``/mcp`` (``hivehub.mcp``),
    A2A at ``/a2a`` with the Agent Card at ``/.well-known/agent-card.json``
    (``hivehub.a2a``). Each is an ASGI app over the hub's own API (``asgi.mount``),
    built on the first request to it (``asgi.Lazy``): the SDKs load only then."""
    from ..a2a.server_mount import mount_a2a  # noqa: PLC0415
    from ..mcp.mount import mount_mcp  # noqa: PLC0415

    mount_mcp(app, config)
    mount_a2a(app, config)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DASHBOARD / "index.html")


def clustered(config: ServerConfig) -> bool:
    """On PostgreSQL the hub runs as one of possibly several replicas."""
    return config.db.startswith(("postgresql://", "postgres://"))


async def _startup(app: web.Application) -> None:
    cluster = app[HUB].cluster
    if cluster is not None:
        # Bind the bus to this log first; then start as a follower (the election
        # promotes this replica if it wins).
        await cluster.bind_bus()
        await app[HUB].service.start(follower=True)
        app[HUB].modules.start()
        await cluster.start()
        return
    await app[HUB].service.start()
    app[HUB].modules.start()
    app[HUB].watch.start()


async def _start_heap_trim(app: web.Application) -> None:
    # every replica, leader or follower: each holds its own clients' buffers
    interval = app[HUB].config.heap_trim_interval
    if interval > 0 and heap.available():
        app[HUB].background.append(asyncio.create_task(heap.trim_every(interval)))


async def _shutdown(app: web.Application) -> None:
    for t in app[HUB].background:
        t.cancel()
    await app[HUB].stream.close_all(CLOSE_GOING_AWAY, "hub shutting down")
    await app[HUB].gateway.close_all(CLOSE_GOING_AWAY, "hub shutting down")


async def _cleanup(app: web.Application) -> None:
    bg: list[asyncio.Task[Any]] = app[HUB].background
    for t in bg:
        try:
            await t
        except (asyncio.CancelledError, Exception):
            pass
    cluster = app[HUB].cluster
    if cluster is not None:
        await cluster.stop()
    await app[HUB].watch.stop()
    await app[HUB].modules.stop()
    await app[HUB].service.stop()
