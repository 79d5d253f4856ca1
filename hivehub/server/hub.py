"""The typed hub: every part of one replica, composed, under one ``AppKey``.

``create_app`` builds it; the handler layer (middlewares, routes, start-up hooks)
reaches it as ``request.app[HUB]``. The components it holds never read it: each
is built with the collaborators it calls (a neighbour built after it is passed
as a small protocol from ``ports.py``, which the hub implements), so this module
imports them and none of them imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..monitor.modules import ModuleMonitor
from ..monitor.watch import HiveWatch
from .agents import AgentGateway
from .background import LearningRunner
from .clientlimits import Connections, RateLimiter
from .cluster import Cluster
from .config import ServerConfig
from .metrics import Metrics
from .modulebus import ModuleBus
from .service import HubService
from .stream import StreamHub
from .tokens import TokenStore
from .view import CommittedView, HiveReader


@dataclass(eq=False)
class Hub:
    config: ServerConfig
    service: HubService
    #: answers to clients: the state at the committed sequence
    view: CommittedView
    tokens: TokenStore
    rate_limiter: RateLimiter
    # set by create_app once built, in this order (each is given what it calls)
    connections: Connections = field(init=False)
    stream: StreamHub = field(init=False)
    gateway: AgentGateway = field(init=False)
    module_bus: ModuleBus = field(init=False)
    learning: LearningRunner = field(init=False)
    modules: ModuleMonitor = field(init=False)
    watch: HiveWatch = field(init=False)
    metrics: Metrics = field(init=False)
    cluster: Cluster | None = None
    #: open /ws and /agents/ws connections per client key
    ws_clients: dict[str, int] = field(default_factory=dict)
    #: tasks cancelled at shutdown (token watch, demo agents, ...)
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    #: called when this replica becomes the leader (the cluster holds the same list)
    on_lead: list[Callable[[], None]] = field(default_factory=list)
    openapi_doc: bytes | None = None
    demo_agents: list[Any] = field(default_factory=list)

    def alerts(self, reader: HiveReader | None = None) -> list[dict[str, Any]]:
        """The active alerts at ``reader``'s sequence (``ports.StatusBoard``)."""
        return self.watch.alerts(reader)

    def status(self, reader: HiveReader) -> dict[str, Any]:
        """``GET /api/hive/status`` (and ``get_status``, the snapshot's ``status``) at
        ``reader``'s sequence: build it inside ``CommittedView.read``."""
        s = self.service
        st = reader.status(s.clock())
        modules = self.modules.report()
        st["status"] = modules["status"]
        st["published_sequence"] = s.published_seq
        st["uptime_seconds"] = round(s.uptime(), 3)
        st["modules"] = modules["modules"]
        st["subscribers"] = self.stream.count()
        st["connected_agents"] = self.gateway.count()
        st["llm"] = reader.usage_summary()
        # which hive of the deployment answered (None: the default; docs/deployment.md)
        st["namespace"] = self.config.namespace
        cluster = self.cluster
        st["cluster"] = (
            {
                # "leader" once it takes forwarded commands (not while still promoting)
                "role": "leader" if cluster.is_leader else "follower",
                "replica_id": cluster.replica_id,
                "leader_id": cluster.leader_id,
                "leader_url": cluster.leader_url,
                # placement (server/placement.py): the replica this hive prefers to be
                # led by, and the live replicas it was computed from, sorted by id
                "preferred_leader_id": cluster.preferred_leader_id,
                "replicas": [{"replica_id": rid, "url": url} for rid, url in cluster.live],
                "cluster_id": cluster.cluster_id,
                "bus": self._bus_state(),
            }
            if cluster is not None
            else {"role": "single"}
        )
        return st

    def _bus_state(self) -> dict[str, Any] | None:
        bus = self.service.bus
        if bus is None:
            return None
        return {
            "kind": type(bus).__name__,
            "foreign_entries": bus.foreign_entries,
            "error": self.service.bus_error,
        }


HUB = web.AppKey("hub", Hub)
