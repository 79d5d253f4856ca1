"""Read-only views of the hive's health: /api/modules, /api/alerts, /metrics.

Prometheus figures are collected at scrape time from the folded state (tasks
and agents by status, module health, sequence numbers), so they cost nothing
per event; only the two histograms observe events, once per event.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.model import AgentStatus, TaskStatus
from ..monitor.modules import RANK
from .hub import HUB
from .rest import body_as, json, raw_json, route
from .service import HubService, Published
from .view import HiveReader

_enc = msgspec.json.Encoder()


class HiveCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        svc: HubService = self.app[HUB].service
        hive = svc.reader()
        g = GaugeMetricFamily("hive_tasks", "Tasks by status", labels=["status"])
        for st in TaskStatus:
            g.add_metric([st.value], hive.task_count(st))
        yield g
        g = GaugeMetricFamily("hive_agents", "Agents by status", labels=["status"])
        counts = {s: 0 for s in AgentStatus}
        for a in hive.agents():
            counts[a.status] += 1
        for ag_status, n in counts.items():
            g.add_metric([ag_status.value], n)
        yield g
        c = CounterMetricFamily(
            "hive_events_appended", "Events appended to the log (last committed sequence)"
        )
        c.add_metric([], svc.published_seq)
        yield c
        c = CounterMetricFamily("hive_events_delivered", "Event frames delivered to /ws subscribers")
        c.add_metric([], self.app[HUB].stream.delivered)
        yield c
        c = CounterMetricFamily(
            "hive_token_table_reads", "Reads of the token table (one per change to it, never per request)"
        )
        c.add_metric([], self.app[HUB].tokens.reads)
        yield c
        yield GaugeMetricFamily(
            "hive_subscribers", "Connected /ws subscribers", value=self.app[HUB].stream.count()
        )
        yield GaugeMetricFamily(
            "hive_connected_agents", "Agents connected over /agents/ws", value=self.app[HUB].gateway.count()
        )
        g = GaugeMetricFamily(
            "hive_module_health", "Module health: 0 healthy, 1 degraded, 2 unhealthy", labels=["module"]
        )
        for name, mod in self.app[HUB].modules.states().items():
            g.add_metric([name], RANK[mod["status"]])
        yield g
        yield GaugeMetricFamily(
            "hive_alerts_active", "Active alerts", value=len(self.app[HUB].watch.alerts())
        )
        yield GaugeMetricFamily(
            "hive_store_commit_seconds", "Duration of the last log commit", value=svc.last_commit_ms / 1000
        )


class Metrics:
    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HiveCollector(app))
        self.assign_latency = Histogram(
            "hive_task_assignment_latency_seconds",
            "From submission to first assignment",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
            registry=self.registry,
        )
        self.duration = Histogram(
            "hive_task_duration_seconds",
            "Execution time of completed tasks",
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=self.registry,
        )
        self.app = app
        app[HUB].service.listeners.append(self.on_published)

    def on_published(self, batch: list[Published]) -> None:
        hive = self.app[HUB].service.reader()
        for p in batch:
            if p.type == "task_assigned":
                d: Any = p.event.data
                if d.attempt_number == 1 and d.assignment_reason != "rebalanced":
                    t = hive.task(d.task_id)
                    if t is not None:
                        self.assign_latency.observe(max(0.0, (d.timestamp - t.created_at).total_seconds()))
            elif p.type == "task_completed":
                d = p.event.data
                ms: float = d.execution_time_ms
                self.app[HUB].module_bus.send(
                    "task_management",
                    "metrics_collection",
                    "TaskCompleted",
                    {"task_id": d.task_id, "execution_time_ms": ms, "sequence": p.sequence},
                    functools.partial(self.duration.observe, ms / 1000),
                )


@route("GET", "/api/modules", "Module states and the real signals behind them")
async def modules(request: web.Request) -> web.Response:
    hub = request.app[HUB]

    def build(r: HiveReader) -> bytes:
        report = hub.modules.report()
        report["recorded"] = dict(r.modules)
        return _enc.encode(report)

    return raw_json(await hub.view.read(build))


@route("GET", "/api/alerts", "Active alerts (folded from the log, plus any not yet logged)")
async def alerts(request: web.Request) -> web.Response:
    watch = request.app[HUB].watch
    return raw_json(await request.app[HUB].view.read(lambda r: _enc.encode({"alerts": watch.alerts(r)})))


@route("GET", "/metrics", "Prometheus text exposition")
async def metrics(request: web.Request) -> web.Response:
    # collected inside the read: the live state then is the state at a sequence that
    # the read returns only once it is committed
    registry = request.app[HUB].metrics.registry
    body = await request.app[HUB].view.read(lambda r: generate_latest(registry))
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


class ThresholdPatch(msgspec.Struct, forbid_unknown_fields=True):
    cpu: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    memory: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    disk: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    event_loop_lag_ms: Annotated[float, msgspec.Meta(gt=0, le=60_000)] | None = None


def _resources(app: web.Application) -> dict[str, Any]:
    watch = app[HUB].watch
    return {
        "last_sample_percent": watch.last_sample,
        "thresholds": {
            "cpu": watch.th.cpu,
            "memory": watch.th.memory,
            "disk": watch.th.disk,
            "event_loop_lag_ms": watch.th.event_loop_lag_ms,
            "hysteresis": watch.th.hysteresis,
        },
        "alerting": {name: w.active for name, w in watch.watches.items()},
        "trends": {name: w.trend() for name, w in watch.watches.items()},
    }


@route("GET", "/api/resources", "Last resource sample, thresholds and alert states")
async def resources(request: web.Request) -> web.Response:
    return json(_resources(request.app))


@route(
    "PATCH",
    "/api/resources",
    "Change resource alert thresholds at run time",
    body=ThresholdPatch,
    errors=(422,),
)
async def patch_resources(request: web.Request) -> web.Response:
    patch = await body_as(request, ThresholdPatch)
    request.app[HUB].watch.set_thresholds(
        **{k: v for k, v in msgspec.structs.asdict(patch).items() if v is not None}
    )
    return json(_resources(request.app))
