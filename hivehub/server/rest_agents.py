"""REST routes of agents: registration, listing, changes, removal, and the pull
transport's heartbeat and long-poll claim."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..core import commands as C
from ..core.model import Agent, AgentStatus, AgentType
from ..protocol.messages import (
    AgentPage,
    Claim,
    HeartbeatReply,
    ResetLearningBody,
)
from .hub import HUB
from .keys import HELD
from .routes import (
    actor,
    agent_json,
    body_as,
    hub,
    json,
    paginate,
    q_enum,
    q_float,
    raw_json,
    request_id,
    route,
    svc,
    view,
)
from .view import HiveReader

_enc = msgspec.json.Encoder()


@route(
    "POST",
    "/api/agents",
    "Register an agent (201); registering again with a known id updates it and brings it online (200)",
    body=C.AgentSpec,
    response=Agent,
    status=201,
    errors=(400, 404, 422),
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
                HeartbeatReply(
                    agent_id=agent_id,
                    status=r.agent(agent_id).status,
                    heartbeat_timeout=r.config.heartbeat_timeout,
                    heartbeat_interval=gateway.heartbeat_interval(),
                )
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
