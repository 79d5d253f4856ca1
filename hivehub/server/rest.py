"""The REST API: the route table (:mod:`.routes`) filled by the route modules,
turned into the aiohttp routes and ``/api/openapi.json``. Every route is declared
once with its request and response schemas, so the document cannot drift from
what validates.

- :mod:`.rest_status`: ``/api``, ``/health``, ``/api/hive/status``;
- :mod:`.rest_agents`: agents, and the pull transport's heartbeat and claim;
- :mod:`.rest_tasks`: tasks, the pull transport's reports, approval and input, ``/api/events``;
- :mod:`.rest_usage`: quota pools and budgets;
- :mod:`.rest_history`: the history from the log (every task, chart series, an agent over time);
- :mod:`.observability`: ``/metrics`` and module routes (it imports this module, so
  its routes come after these; ``create_app`` imports it).
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect
from aiohttp import web

from .. import __version__
from ..protocol.limits import type_info
from ..protocol.messages import ErrorBody
from .hub import HUB

# The route modules register in import order, which is the order of the OpenAPI
# document and of docs/rest.md: keep it (hence no import sorting here).
# isort: off
from . import rest_status  # noqa: F401
from . import rest_agents  # noqa: F401
from . import rest_tasks  # noqa: F401
from . import rest_usage  # noqa: F401
from . import rest_history  # noqa: F401

# isort: on
from .rest_agents import agent_claim, create_agent
from .rest_status import health
from .routes import ROUTES, Route, body_as, json, raw_json, route

# body_as, json, raw_json, route: for observability.py, whose routes must come after
# these (it imports this module, so they do)
__all__ = ["ROUTES", "WS_ROUTES", "Route", "add_routes", "body_as", "json", "openapi", "raw_json", "route"]

_enc = msgspec.json.Encoder()


def openapi() -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for r in ROUTES:
        for t in (r.body, r.response):
            if t is not None and t not in types:
                types.append(t)
    (schemas, components) = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    # Agent reports must name their attempt. The field is optional in the struct so
    # that the core's rule answers (422 attempt_required, as on /agents/ws) rather
    # than a generic decode error; the document states the rule.
    for name in (
        "AgentReport",
        "ProgressReport",
        "CompleteReport",
        "FailReport",
        "ReleaseReport",
        "InputRequestBody",
    ):
        comp = components.get(name)
        if comp is not None:
            comp["properties"]["attempt"] = {"type": "integer"}
            comp["required"] = sorted({*comp.get("required", []), "attempt"})
    ref = dict(zip(types, schemas, strict=True))
    paths: dict[str, Any] = {}
    for r in ROUTES:
        op: dict[str, Any] = {"summary": r.summary, "operationId": r.handler.__name__, "responses": {}}
        params = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _path_params(r.path)
        ] + [
            {"name": k, "in": "query", "required": False, "description": v, "schema": {"type": "string"}}
            for k, v in r.query.items()
        ]
        if params:
            op["parameters"] = params
        if r.body is not None:
            # an empty body means {}: the body is only required when the schema has required fields
            op["requestBody"] = {
                "required": _has_required(r.body),
                "content": {"application/json": {"schema": ref[r.body]}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": ref[r.response]}}
        op["responses"][str(r.status)] = ok
        if r.handler is agent_claim:
            op["responses"]["204"] = {"description": "no task within the wait"}
        if r.handler is create_agent:
            op["responses"]["200"] = {**ok, "description": "registered again with a known id: updated"}
        # a body can be malformed JSON (400), too large or too deep (413) or invalid (422);
        # query parameters are validated too (422)
        # and must be sent as application/json (415)
        implied = ({400, 413, 415, 422} if r.body else set()) | ({422} if r.query else set())
        for code in sorted(set(r.errors) | implied | {429}):
            if r.handler is health and code == 503:  # the same report as the 200, not an ErrorBody
                op["responses"]["503"] = {"description": "unhealthy (the same report as the 200)"}
                continue
            op["responses"][str(code)] = {
                "description": "error",
                "content": {"application/json": {"schema": ref[ErrorBody]}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    # The WebSocket endpoints are registered in app.py; document their upgrade GETs too.
    for path, summary, query in WS_ROUTES:
        paths[path] = {
            "get": {
                "summary": summary,
                "operationId": "ws_" + path.strip("/").replace("/", "_"),
                "parameters": [
                    {
                        "name": k,
                        "in": "query",
                        "required": False,
                        "description": v,
                        "schema": {"type": "string"},
                    }
                    for k, v in query.items()
                ],
                "responses": {
                    "101": {"description": "Switching Protocols (WebSocket, permessage-deflate offered)"},
                    "400": {
                        "description": "not a WebSocket upgrade request",
                        "content": {"application/json": {"schema": ref[ErrorBody]}},
                    },
                    "422": {
                        "description": "error",
                        "content": {"application/json": {"schema": ref[ErrorBody]}},
                    },
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hive Hub", "version": __version__},
        "paths": paths,
        "components": {"schemas": components},
    }


WS_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    (
        "/ws",
        "Event stream (WebSocket): live events, replay, snapshot and control commands",
        {
            "types": "comma-separated event types",
            "agent_id": "only events about this agent",
            "task_id": "only events about this task",
            "since": "replay the events after this sequence, then continue live",
            "snapshot": "1: first message is a snapshot, then live events after it",
        },
    ),
    ("/agents/ws", "Agent gateway (WebSocket): register, receive assignments, report", {}),
]


def _has_required(typ: Any) -> bool:
    return any(f.required for f in type_info(typ).fields)


def _path_params(path: str) -> list[str]:
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]


@route("GET", "/api/openapi.json", "This document")
async def openapi_json(request: web.Request) -> web.Response:
    doc = request.app[HUB].openapi_doc
    if doc is None:
        doc = request.app[HUB].openapi_doc = _enc.encode(openapi())
    return web.Response(body=doc, content_type="application/json")


def add_routes(app: web.Application) -> None:
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler)
