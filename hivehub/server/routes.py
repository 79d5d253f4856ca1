"""The route table of the REST API and what every route module shares.

Each route is declared once with ``@route(...)`` (method, path, request and
response schemas); ``ROUTES`` collects them in declaration order, which
:mod:`.rest` turns into the aiohttp routes and ``/api/openapi.json``. The
helpers below read the typed hub (``request.app[HUB]``), decode bodies with the
protocol's limits, and page lists.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import msgspec.inspect
from aiohttp import web
from msgspec import Struct

from ..core.errors import InvalidInput, TaskNotFound
from ..core.model import Task
from ..protocol.limits import decode_body
from .hub import HUB, Hub
from .keys import IDENTITY
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


def task_read(t: Task, reason: str | None) -> bytes:
    """The task encoded with its ``blocked_reason`` (``TaskRead``), spliced in
    rather than copied into another struct."""
    return _enc.encode(t)[:-1] + b',"blocked_reason":' + _enc.encode(reason) + b"}"


async def task_json(request: web.Request, task_id: str) -> bytes:
    """The task at the committed sequence with its ``blocked_reason``, encoded
    (TaskNotFound: 404). A task evicted from memory (finished) is folded from the log."""
    now = svc(request).clock()

    def build(r: HiveReader) -> tuple[bytes | None, bool]:
        t = r.task(task_id)
        if t is not None:
            return task_read(t, r.blocked_reason(t, now)), False
        return None, r.is_evicted(task_id)

    body, evicted = await view(request).read(build)
    if body is None and evicted:
        t = await svc(request).task(task_id)
        body = None if t is None else task_read(t, None)
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
