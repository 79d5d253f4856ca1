"""Read-only views of the hive's health: /api/modules, /api/alerts, /metrics,
/api/resources (the figures behind ``/metrics`` are collected in ``metrics.py``)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web
from prometheus_client import generate_latest

from .hub import HUB
from .rest import body_as, json, raw_json, route
from .view import HiveReader

_enc = msgspec.json.Encoder()


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
