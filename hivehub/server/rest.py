"""REST API. Every route is declared once in ``ROUTES`` with its request and
response schemas; the same declarations register the aiohttp handlers and
generate ``/api/openapi.json``, so the document cannot drift from what validates."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import msgspec.inspect
from aiohttp import web
from msgspec import Struct

from .. import __version__
from ..core import commands as C
from ..core import events as ev
from ..core.errors import InvalidInput, TaskNotFound
from ..core.model import PRIORITY_NAMES, Agent, AgentStatus, AgentType, Task, TaskStatus
from ..protocol.limits import (  # noqa: F401  (check_depth, convert_object: the adapters' names)
    check_depth,
    convert_object,
    decode_body,
    type_info,
)
from ..protocol.messages import (
    AgentPage,
    AgentReport,
    ApiInfo,
    CancelBody,
    Claim,
    CompleteReport,
    ErrorBody,
    EventPage,
    FailReport,
    ProgressReport,
    ReleaseReport,
    ResetLearningBody,
    RetryBody,
    TaskBatch,
    TaskBatchResult,
    TaskPage,
)
from .hub import HELD, HUB, IDENTITY, Hub
from .service import HubService
from .view import CommittedView, HiveReader

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_enc = msgspec.json.Encoder()


# ----------------------------------------------------------------- schemas
# (the wire messages live in hivehub/protocol/messages.py)


class Route(Struct):
    method: str
    path: str
    handler: Any
    summary: str
    body: Any = None
    response: Any = None
    status: int = 200
    query: dict[str, str] = msgspec.field(default_factory=dict)
    errors: tuple[int, ...] = ()


ROUTES: list[Route] = []


def route(
    method: str,
    path: str,
    summary: str,
    *,
    body: Any = None,
    response: Any = None,
    status: int = 200,
    query: dict[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, fn, summary, body, response, status, query or {}, errors))
        return fn

    return deco


# ----------------------------------------------------------------- helpers


def json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_enc.encode(obj), status=status, content_type="application/json")


def raw_json(body: bytes, status: int = 200) -> web.Response:
    """A reply encoded already (inside ``CommittedView.read``)."""
    return web.Response(body=body, status=status, content_type="application/json")


async def agent_json(request: web.Request, agent_id: str) -> bytes:
    """The agent at the committed sequence, encoded (AgentNotFound: 404)."""
    return await view(request).read(lambda r: _enc.encode(r.agent(agent_id)))


def _task_or_none(t: Task | None) -> bytes | None:
    return None if t is None else _enc.encode(t)


async def task_json(request: web.Request, task_id: str) -> bytes:
    """The task at the committed sequence, encoded (TaskNotFound: 404)."""
    body = await view(request).task(task_id, _task_or_none)
    if body is None:
        raise TaskNotFound(f"no task {task_id}", task_id=task_id)
    return body


async def body_as(request: web.Request, typ: Any) -> Any:
    raw = await request.read()
    return decode_body(raw, typ, request.app[HUB].config.max_json_depth)


def hub(request: web.Request) -> Hub:
    return request.app[HUB]


def svc(request: web.Request) -> HubService:
    return request.app[HUB].service


def view(request: web.Request) -> CommittedView:
    return request.app[HUB].view


def request_id(request: web.Request) -> str:
    return request.headers.get("X-Request-Id") or f"http:{id(request):x}"


def actor(request: web.Request) -> str:
    ident = request.get(IDENTITY)
    return str(ident) if ident else "api"


def q_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name} must be an integer", parameter=name, value=raw) from None
    if not lo <= v <= hi:
        raise InvalidInput(f"query parameter {name} must be between {lo} and {hi}", parameter=name, value=v)
    return v


def q_float(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = float(raw)
    except ValueError:
        raise InvalidInput(f"query parameter {name} must be a number", parameter=name, value=raw) from None
    if not lo <= v <= hi:
        raise InvalidInput(f"query parameter {name} must be between {lo} and {hi}", parameter=name, value=v)
    return v


def q_enum(request: web.Request, name: str, enum: Any) -> Any:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return enum(raw)
    except ValueError:
        allowed = [e.value for e in enum]
        raise InvalidInput(f"{name} must be one of {allowed}", parameter=name, value=raw) from None


def _cursor_out(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _cursor_in(request: web.Request) -> str | None:
    raw = request.query.get("cursor")
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except Exception:
        raise InvalidInput("malformed cursor", parameter="cursor") from None


def paginate(items: list[Any], request: web.Request) -> tuple[list[Any], str | None]:
    limit = q_int(request, "limit", 100, 1, 1000)
    after = _cursor_in(request)
    start = 0
    if after is not None:
        for i, it in enumerate(items):
            if it.id == after:
                start = i + 1
                break
        else:
            raise InvalidInput(
                "cursor does not match any item (it may have been removed)", parameter="cursor"
            )
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, (_cursor_out(page[-1].id) if more and page else None)


# ----------------------------------------------------------------- meta


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


# ----------------------------------------------------------------- agents


@route(
    "POST",
    "/api/agents",
    "Register an agent (201); registering again with a known id updates it and brings it online (200)",
    body=C.AgentSpec,
    response=Agent,
    status=201,
    errors=(400, 422),
)
async def create_agent(request: web.Request) -> web.Response:
    spec = await body_as(request, C.AgentSpec)
    s = svc(request)
    # A pull agent registers again after its own restart or a hub restart: the same
    # command as a WebSocket register (the spec is updated, learning is kept).
    known = spec.id is not None and s.reader().find_agent(spec.id) is not None
    events = await s.execute(C.RegisterAgent(id=request_id(request), spec=spec))
    agent_id = spec.id if spec.id is not None else events[0].data.agent.id  # type: ignore[attr-defined]
    return raw_json(await agent_json(request, agent_id), status=200 if known else 201)


@route(
    "GET",
    "/api/agents",
    "List agents",
    response=AgentPage,
    query={
        "status": "idle|active|learning|offline|failed",
        "type": "agent type",
        "capability": "has this capability",
        "limit": "1..1000",
        "cursor": "from next_cursor",
    },
)
async def list_agents(request: web.Request) -> web.Response:
    status = q_enum(request, "status", AgentStatus)
    typ = q_enum(request, "type", AgentType)
    cap = request.query.get("capability")

    def build(r: HiveReader) -> bytes:
        items = [
            a
            for a in r.agents()
            if (status is None or a.status == status)
            and (typ is None or a.type == typ)
            and (not cap or a.capability(cap) is not None)
        ]
        page, nxt = paginate(items, request)
        return _enc.encode(AgentPage(page, nxt))

    return raw_json(await view(request).read(build))


@route("GET", "/api/agents/{id}", "One agent", response=Agent, errors=(404,))
async def get_agent(request: web.Request) -> web.Response:
    return raw_json(await agent_json(request, request.match_info["id"]))


@route(
    "PATCH",
    "/api/agents/{id}",
    "Change name, capabilities or concurrency",
    body=C.AgentPatch,
    response=Agent,
    errors=(404, 422),
)
async def patch_agent(request: web.Request) -> web.Response:
    s = svc(request)
    agent_id = request.match_info["id"]
    s.reader().agent(agent_id)  # 404 before the body is read
    patch = await body_as(request, C.AgentPatch)
    await s.execute(C.UpdateAgent(id=request_id(request), agent_id=agent_id, patch=patch))
    return raw_json(await agent_json(request, agent_id))


@route("DELETE", "/api/agents/{id}", "Remove an agent; its tasks are reassigned", errors=(404,))
async def delete_agent(request: web.Request) -> web.Response:
    s = svc(request)
    events = await s.execute(C.RemoveAgent(id=request_id(request), agent_id=request.match_info["id"]))
    removed = next(e for e in events if e.type == "agent_removed")
    return json(removed.data)


@route(
    "POST",
    "/api/agents/{id}/reset-learning",
    "Operator: put learned proficiencies back to the agent's declared ones (logged as agent_learning_reset)",
    body=ResetLearningBody,
    response=Agent,
    errors=(404, 422),
)
async def reset_learning(request: web.Request) -> web.Response:
    s = svc(request)
    agent_id = request.match_info["id"]
    s.reader().agent(agent_id)  # 404 before the body is read
    b = await body_as(request, ResetLearningBody)
    await s.execute(
        C.ResetLearning(
            id=request_id(request),
            agent_id=agent_id,
            capabilities=b.capabilities,
            requested_by=b.requested_by or actor(request),
        )
    )
    return raw_json(await agent_json(request, agent_id))


@route("POST", "/api/agents/{id}/heartbeat", "Agent heartbeat (pull transport)", errors=(404,))
async def agent_heartbeat(request: web.Request) -> web.Response:
    s = svc(request)
    agent_id = request.match_info["id"]
    await s.execute(C.Heartbeat(id=request_id(request), agent_id=agent_id))
    gateway = hub(request).gateway
    return raw_json(
        await view(request).read(
            lambda r: _enc.encode(
                {
                    "agent_id": agent_id,
                    "status": r.agent(agent_id).status,
                    "heartbeat_timeout": r.config.heartbeat_timeout,
                    "heartbeat_interval": gateway.heartbeat_interval(),
                }
            )
        )
    )


@route(
    "POST",
    "/api/agents/{id}/claim",
    "Long-poll for the next task assigned to this agent (204 when none)",
    response=Claim,
    query={"wait": "seconds to wait, 0..60"},
    errors=(404,),
)
async def agent_claim(request: web.Request) -> web.StreamResponse:
    wait = q_float(request, "wait", 0.0, 0.0, request.app[HUB].config.max_claim_wait)
    claim = await request.app[HUB].gateway.claim(
        request.match_info["id"], wait, request_id(request), request.get(HELD)
    )
    if claim is None:
        return web.Response(status=204)
    return raw_json(claim)


# ----------------------------------------------------------------- tasks


@route(
    "POST",
    "/api/tasks",
    "Submit a task",
    body=C.TaskSpec,
    response=Task,
    status=201,
    errors=(400, 409, 413, 422),
)
async def create_task(request: web.Request) -> web.Response:
    spec = await body_as(request, C.TaskSpec)
    s = svc(request)
    events = await s.execute(C.SubmitTask(id=request_id(request), spec=spec, created_by=actor(request)))
    return raw_json(await task_json(request, events[0].data.task.id), status=201)  # type: ignore[attr-defined]


@route(
    "POST",
    "/api/tasks/batch",
    "Submit up to 1000 tasks at once (all or none validated first)",
    body=TaskBatch,
    response=TaskBatchResult,
    status=201,
    errors=(400, 409, 413, 422),
)
async def create_tasks(request: web.Request) -> web.Response:
    batch = await body_as(request, TaskBatch)
    s = svc(request)
    # one core command: every task is validated before the first is created (all or none)
    events = await s.execute(
        C.SubmitTasks(id=request_id(request), specs=batch.tasks, created_by=actor(request))
    )
    created: list[Task] = []
    for e in events:
        if isinstance(e.data, ev.TaskCreated):
            # committed by the execute above: the lookup finds it (memory, or folded from the log)
            task = await s.task(e.data.task.id)
            if task is not None:
                created.append(task)
    return json(TaskBatchResult(created), status=201)


@route(
    "GET",
    "/api/tasks",
    "List the tasks in memory, newest first: every unfinished task and the newest --retain-finished finished ones",
    response=TaskPage,
    query={
        "status": "task status",
        "type": "task type",
        "agent_id": "assigned agent",
        "priority": "1..4 or name",
        "limit": "1..1000",
        "cursor": "from next_cursor",
        "order": "desc (default) or asc",
    },
)
async def list_tasks(request: web.Request) -> web.Response:
    status = q_enum(request, "status", TaskStatus)
    typ = request.query.get("type")
    agent_id = request.query.get("agent_id")
    prio_raw = request.query.get("priority")
    prio = None
    if prio_raw:
        if prio_raw in ("1", "2", "3", "4"):  # not isdigit(): "²" is a digit int() refuses
            prio = int(prio_raw)
        elif prio_raw in PRIORITY_NAMES:
            prio = PRIORITY_NAMES[prio_raw]
        else:
            raise InvalidInput("priority must be 1..4 or low|medium|high|critical", parameter="priority")
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc", parameter="order")

    def build(r: HiveReader) -> bytes:
        tasks = r.tasks()
        items = [
            t
            for t in (reversed(tasks) if order == "desc" else tasks)  # type: ignore[call-overload]
            if (status is None or t.status == status)
            and (not typ or t.type == typ)
            and (not agent_id or t.assigned_agent_id == agent_id)
            and (prio is None or t.priority == prio)
        ]
        page, nxt = paginate(items, request)
        return _enc.encode(TaskPage(page, nxt))

    return raw_json(await view(request).read(build))


@route(
    "GET",
    "/api/tasks/{id}",
    "One task (a finished task evicted from memory is read from the log)",
    response=Task,
    errors=(404,),
)
async def get_task(request: web.Request) -> web.Response:
    return raw_json(await task_json(request, request.match_info["id"]))


async def _task_command(request: web.Request, cmd: C.Command, task_id: str) -> web.Response:
    await svc(request).execute(cmd)
    return raw_json(await task_json(request, task_id))


@route(
    "POST",
    "/api/tasks/{id}/cancel",
    "Cancel a pending, assigned or running task",
    body=CancelBody,
    response=Task,
    errors=(404, 409),
)
async def cancel_task(request: web.Request) -> web.Response:
    b = await body_as(request, CancelBody)
    tid = request.match_info["id"]
    cmd = C.CancelTask(
        id=request_id(request), task_id=tid, reason=b.reason, cancelled_by=b.cancelled_by or actor(request)
    )
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/retry",
    "Put a failed or cancelled task back in the queue",
    body=RetryBody,
    response=Task,
    errors=(404, 409),
)
async def retry_task(request: web.Request) -> web.Response:
    b = await body_as(request, RetryBody)
    tid = request.match_info["id"]
    cmd = C.RetryTask(id=request_id(request), task_id=tid, requested_by=b.requested_by or actor(request))
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/start",
    "Agent report: started",
    body=AgentReport,
    response=Task,
    errors=(404, 409),
)
async def start_task(request: web.Request) -> web.Response:
    b = await body_as(request, AgentReport)
    tid = request.match_info["id"]
    return await _task_command(
        request, C.StartTask(id=request_id(request), task_id=tid, agent_id=b.agent_id, attempt=b.attempt), tid
    )


@route(
    "POST",
    "/api/tasks/{id}/progress",
    "Agent report: progress",
    body=ProgressReport,
    response=Task,
    errors=(404, 409),
)
async def progress_task(request: web.Request) -> web.Response:
    b = await body_as(request, ProgressReport)
    tid = request.match_info["id"]
    cmd = C.ReportProgress(
        id=request_id(request),
        task_id=tid,
        agent_id=b.agent_id,
        attempt=b.attempt,
        progress=b.progress,
        current_step=b.current_step,
    )
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/complete",
    "Agent report: completed with a result",
    body=CompleteReport,
    response=Task,
    errors=(404, 409),
)
async def complete_task(request: web.Request) -> web.Response:
    b = await body_as(request, CompleteReport)
    tid = request.match_info["id"]
    cmd = C.CompleteTask(
        id=request_id(request),
        task_id=tid,
        agent_id=b.agent_id,
        attempt=b.attempt,
        result=b.result,
        quality=b.quality,
    )
    return await _task_command(request, cmd, tid)


@route(
    "POST", "/api/tasks/{id}/fail", "Agent report: failed", body=FailReport, response=Task, errors=(404, 409)
)
async def fail_task(request: web.Request) -> web.Response:
    b = await body_as(request, FailReport)
    tid = request.match_info["id"]
    cmd = C.FailTask(
        id=request_id(request),
        task_id=tid,
        agent_id=b.agent_id,
        attempt=b.attempt,
        error=b.error.task_error(),
        retryable=b.retryable,
    )
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/release",
    "Agent report: hand the task back unfinished",
    body=ReleaseReport,
    response=Task,
    errors=(404, 409),
)
async def release_task(request: web.Request) -> web.Response:
    b = await body_as(request, ReleaseReport)
    tid = request.match_info["id"]
    cmd = C.ReleaseTask(
        id=request_id(request), task_id=tid, agent_id=b.agent_id, attempt=b.attempt, reason=b.reason
    )
    return await _task_command(request, cmd, tid)


# ----------------------------------------------------------------- events


@route(
    "GET",
    "/api/events",
    "Catch up on the event log over HTTP",
    response=EventPage,
    query={
        "since": "return events after this sequence (at most the head: 400 cursor_out_of_range)",
        "types": "comma-separated event types",
        "limit": "1..10000",
    },
    errors=(400,),
)
async def list_events(request: web.Request) -> web.Response:
    from ..protocol.codec import check_since, parse_since, parse_types

    since = parse_since(request.query.get("since")) or 0
    limit = q_int(request, "limit", 1000, 1, 10_000)
    types = parse_types(request.query.get("types"))
    s = svc(request)
    out: list[bytes] = []
    cursor = since
    ceiling = s.published_seq
    check_since(since, ceiling)
    while len(out) < limit and cursor < ceiling:
        rows = await s.store.read(cursor, min(5000, max(limit, 100)))
        if not rows:
            break
        for r in rows:
            if r.sequence > ceiling:
                break
            cursor = r.sequence
            if types is None or r.type in types:
                out.append(r.body)
                if len(out) >= limit:
                    break
        if rows[-1].sequence >= ceiling:
            break
    # stored bytes are the envelopes already: splice them, no re-encoding
    body = b'{"events":[' + b",".join(out) + b'],"next_since":' + str(cursor).encode() + b"}"
    return web.Response(body=body, content_type="application/json")


# ----------------------------------------------------------------- openapi


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
    for name in ("AgentReport", "ProgressReport", "CompleteReport", "FailReport", "ReleaseReport"):
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
