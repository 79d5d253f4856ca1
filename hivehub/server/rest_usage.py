"""REST routes of model usage limits: quota pools (``/api/quotas``) and owners'
daily budgets (``/api/budgets``). Writes need the operator role (``auth.classify``:
every non-GET route is a write)."""

from __future__ import annotations

from datetime import datetime

import msgspec
from aiohttp import web

from ..core import commands as C
from ..core.commands import BudgetSpec, QuotaSpec
from ..protocol.messages import (
    BudgetList,
    BudgetReply,
    BudgetView,
    Deleted,
    QuotaList,
    QuotaReply,
    QuotaView,
)
from .routes import actor, body_as, json, raw_json, request_id, route, svc, view
from .view import HiveReader

_enc = msgspec.json.Encoder()


def _quota_view(r: HiveReader, name: str) -> QuotaView:
    q = r.quota(name)
    in_flight, paused = r.pool_reading(name)
    return QuotaView(
        name=q.name,
        requests_per_minute=q.requests_per_minute,
        tokens_per_minute=q.tokens_per_minute,
        max_concurrent=q.max_concurrent,
        in_flight=in_flight,
        paused_until=paused.isoformat() if paused is not None else None,
        agents=sorted(a.id for a in r.agents() if a.quota == name),
    )


def _budget_view(r: HiveReader, owner: str, now: datetime) -> BudgetView:
    b = r.budget(owner)
    day, st, sc, rt, rc, blocked = r.budget_reading(owner, now)
    return BudgetView(
        owner=b.owner,
        tokens_per_day=b.tokens_per_day,
        cost_usd_per_day=b.cost_usd_per_day,
        day=day.isoformat(),
        spent_tokens=st,
        spent_cost_usd=round(sc, 9),
        reserved_tokens=rt,
        reserved_cost_usd=round(rc, 9),
        blocked=blocked,
    )


# ----------------------------------------------------------------- quotas


@route("GET", "/api/quotas", "Every quota pool, with what is in flight", response=QuotaList)
async def list_quotas(request: web.Request) -> web.Response:
    def build(r: HiveReader) -> bytes:
        return _enc.encode(
            QuotaList([_quota_view(r, q.name) for q in sorted(r.quotas(), key=lambda q: q.name)])
        )

    return raw_json(await view(request).read(build))


@route("GET", "/api/quotas/{name}", "One quota pool", response=QuotaReply, errors=(404,))
async def get_quota(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return raw_json(await view(request).read(lambda r: _enc.encode(QuotaReply(_quota_view(r, name)))))


@route(
    "PUT",
    "/api/quotas/{name}",
    "Create or change a quota pool (agents name it in AgentSpec.quota; operator)",
    body=QuotaSpec,
    response=QuotaReply,
    errors=(400, 422),
)
async def put_quota(request: web.Request) -> web.Response:
    spec = await body_as(request, QuotaSpec)
    name = request.match_info["name"]
    # convert, not the constructor: the name's limits are checked (422)
    cmd = msgspec.convert(
        {
            "id": request_id(request),
            "name": name,
            "requests_per_minute": spec.requests_per_minute,
            "tokens_per_minute": spec.tokens_per_minute,
            "max_concurrent": spec.max_concurrent,
            "requested_by": actor(request),
        },
        C.SetQuota,
    )
    await svc(request).execute(cmd)
    return raw_json(await view(request).read(lambda r: _enc.encode(QuotaReply(_quota_view(r, name)))))


@route(
    "DELETE",
    "/api/quotas/{name}",
    "Delete a quota pool no registered agent names (operator)",
    response=Deleted,
    errors=(404, 409),
)
async def delete_quota(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    await svc(request).execute(C.DeleteQuota(id=request_id(request), name=name, requested_by=actor(request)))
    return json(Deleted(name))


# ----------------------------------------------------------------- budgets


@route("GET", "/api/budgets", "Every owner's daily budget, with today's spend", response=BudgetList)
async def list_budgets(request: web.Request) -> web.Response:
    now = svc(request).clock()

    def build(r: HiveReader) -> bytes:
        owners = sorted(b.owner for b in r.budgets())
        return _enc.encode(BudgetList([_budget_view(r, o, now) for o in owners]))

    return raw_json(await view(request).read(build))


@route("GET", "/api/budgets/{owner}", "One owner's daily budget", response=BudgetReply, errors=(404,))
async def get_budget(request: web.Request) -> web.Response:
    owner = request.match_info["owner"]
    now = svc(request).clock()
    return raw_json(await view(request).read(lambda r: _enc.encode(BudgetReply(_budget_view(r, owner, now)))))


@route(
    "PUT",
    "/api/budgets/{owner}",
    "Create or change an owner's daily budget (per UTC day; operator)",
    body=BudgetSpec,
    response=BudgetReply,
    errors=(400, 422),
)
async def put_budget(request: web.Request) -> web.Response:
    spec = await body_as(request, BudgetSpec)
    owner = request.match_info["owner"]
    cmd = msgspec.convert(
        {
            "id": request_id(request),
            "owner": owner,
            "tokens_per_day": spec.tokens_per_day,
            "cost_usd_per_day": spec.cost_usd_per_day,
            "requested_by": actor(request),
        },
        C.SetBudget,
    )
    await svc(request).execute(cmd)
    now = svc(request).clock()
    return raw_json(await view(request).read(lambda r: _enc.encode(BudgetReply(_budget_view(r, owner, now)))))


@route(
    "DELETE", "/api/budgets/{owner}", "Delete an owner's budget (operator)", response=Deleted, errors=(404,)
)
async def delete_budget(request: web.Request) -> web.Response:
    owner = request.match_info["owner"]
    await svc(request).execute(
        C.DeleteBudget(id=request_id(request), owner=owner, requested_by=actor(request))
    )
    return json(Deleted(owner))
