"""The aiohttp middlewares and the start-up hook that read the hub.

They sit above ``server/hub.py`` (they read ``request.app[HUB]``), beside the
routes; the rules they apply live below, in ``auth.py`` (classification, roles,
origins), ``clientlimits.py`` (rate limits, the connection registry) and
``errors.py`` (the HTTP transport of the error table).

Order (``create_app``): ``cors_middleware``, ``error_middleware``, ``auth_middleware``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from ..core import errors as E
from ..core.errors import Forbidden, HiveError, RateLimited, Unauthorized
from .auth import allowed, classify, is_ws, json_content_ok, origin_ok, segments, token_from, ws_reject
from .clientlimits import Held, client_key, ws_limit
from .errors import error_response, translate
from .hub import HUB
from .keys import HELD, IDENTITY
from .tokens import ANONYMOUS, Identity, TokenStore

auth_log = logging.getLogger("hivehub.auth")
err_log = logging.getLogger("hivehub.errors")
_enc = msgspec.json.Encoder()


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return error_response(
                E.PayloadTooLarge("request body too large", limit=request.app[HUB].config.max_body_bytes)
            )
        if exc.status >= 400:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            # keep the headers the exception carries (405 must name the allowed methods in Allow)
            headers = {
                k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
            }
            return web.Response(
                body=_enc.encode({"error": {"code": code, "message": exc.reason, "details": {}}}),
                status=exc.status,
                content_type="application/json",
                headers=headers,
            )
        raise
    except Exception as exc:
        if isinstance(exc, ConnectionResetError):
            # The peer is gone (e.g. it reset the connection before the 101 of a WebSocket
            # upgrade could be written). Re-raising would make aiohttp log an unhandled
            # error and try to write a 500; this answer fails to send and aiohttp drops
            # it quietly (499: "client closed the request", in the access log only).
            err_log.debug("peer went away during %s %s: %s", request.method, request.path, exc)
            return web.Response(status=499)
        mapped = translate(exc)
        if mapped is None:
            err_log.exception("unhandled error on %s %s", request.method, request.path)
            return web.Response(
                body=_enc.encode(
                    {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
                ),
                status=500,
                content_type="application/json",
            )
        return error_response(mapped)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    from ..protocol.errors import UnsupportedMediaType

    app = request.app
    cfg = app[HUB].config
    tokens: TokenStore = app[HUB].tokens
    raw_path = request.rel_url.raw_path
    kind = classify(request.method, raw_path)
    if request.method == "OPTIONS" or kind == "internal":
        return await handler(request)
    enabled = tokens.enabled
    if kind != "public":
        # before the upgrade and before auth: a foreign page gets nothing, not even a socket
        if not origin_ok(request, cfg, enabled):
            return error_response(Forbidden("origin not allowed", origin=request.headers.get("Origin")))
        # an unknown route or method answers its own 404/405 first (with ``Allow``)
        if request.match_info.http_exception is None and not json_content_ok(request):
            return error_response(
                UnsupportedMediaType(
                    "send the body as application/json", content_type=request.headers.get("Content-Type")
                )
            )
    if not enabled:
        # the hub's own demo agents keep their identity, so turning auth on later
        # (which closes anonymous connections) leaves them be
        raw = token_from(request)
        ident = tokens.authenticate(raw) if raw and tokens.has_internal else None
        request[IDENTITY] = ident if ident is not None and ident.token_id == "internal" else ANONYMOUS
    elif kind == "public":
        request[IDENTITY] = None
    else:
        raw = token_from(request)
        ident = tokens.authenticate(raw) if raw else None
        try:
            if ident is None:
                raise Unauthorized("a valid token is required" if raw is None else "invalid or revoked token")
            if not allowed(ident, kind):
                raise Forbidden(f"role {ident.role} may not do this", role=ident.role, needed=kind)
        except HiveError as exc:
            if is_ws(request):
                return await ws_reject(request, f"{exc.code}: {exc.message}")
            return error_response(exc)
        request[IDENTITY] = ident
        if ident.role == "agent":
            denied = await _agent_binding_violation(request, ident, segments(raw_path), kind)
            if denied is not None:
                return error_response(denied)
    if kind == "write" or (kind == "register" and request.method == "POST"):
        try:
            app[HUB].rate_limiter.check(client_key(request))
        except RateLimited as exc:
            return error_response(exc)
    ident = request[IDENTITY]
    held: Held | None = None
    if ident is not None and (is_ws(request) or (kind == "agent" and raw_path.endswith("/claim"))):
        # registered so that revoking the token closes it (see Connections)
        parts = segments(raw_path)
        held = Held(ident, parts[2] if parts[:2] == ["api", "agents"] else None)
        request[HELD] = held
        app[HUB].connections.add(held)
    try:
        if is_ws(request):
            key = client_key(request)
            conns: dict[str, int] = app[HUB].ws_clients
            limit = ws_limit(cfg.max_ws_per_client, app[HUB].tokens.enabled)
            if limit is not None and conns.get(key, 0) >= limit:
                return await ws_reject(
                    request, f"rate_limited: too many connections from this client (limit {limit})"
                )
            conns[key] = conns.get(key, 0) + 1
            try:
                return await handler(request)
            finally:
                conns[key] -= 1
                if not conns[key]:
                    del conns[key]
        return await handler(request)
    finally:
        if held is not None:
            app[HUB].connections.discard(held)


async def _agent_binding_violation(
    request: web.Request, ident: Identity, parts: list[str], kind: str
) -> HiveError | None:
    """An agent token acts only for its own agent id, and reads only its own tasks."""
    if kind == "task_read":
        t = request.app[HUB].service.reader().task(parts[2])
        if t is None:
            return None  # the handler answers 404
        if t.assigned_agent_id != ident.agent_id:
            return Forbidden(
                "this token may only read tasks of agent " + str(ident.agent_id), agent_id=ident.agent_id
            )
        return None
    if parts[:2] == ["api", "agents"] and len(parts) == 4 and parts[2] != ident.agent_id:
        return Forbidden("this token is bound to another agent", agent_id=ident.agent_id)
    if request.method == "POST" and (
        request.path == "/api/agents" or (parts[:2] == ["api", "tasks"] and len(parts) == 4)
    ):
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return None  # the handler reports malformed JSON
        key = "id" if request.path == "/api/agents" else "agent_id"
        if isinstance(body, dict) and body.get(key) != ident.agent_id:
            return Forbidden(f"this token may only act as agent {ident.agent_id}", agent_id=ident.agent_id)
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origins: list[str] = request.app[HUB].config.cors_origins
    origin = request.headers.get("Origin")
    allow = origin if origin and ("*" in origins or origin in origins) else None
    if request.method == "OPTIONS" and allow:
        resp: web.StreamResponse = web.Response(status=204)
    else:
        resp = await handler(request)
    if allow and not resp.prepared:
        resp.headers["Access-Control-Allow-Origin"] = allow
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Headers"] = "Authorization, X-API-Key, Content-Type, X-Request-Id"
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE, OPTIONS"
    return resp


async def start_token_watch(app: web.Application) -> None:
    """on_startup: load the tokens, say what the auth mode is, watch for changes."""
    cfg = app[HUB].config
    tokens: TokenStore = app[HUB].tokens
    tokens.open()
    if tokens.mode == "off":
        auth_log.warning(
            "authentication is OFF (--auth off): anyone who can reach %s:%d may read, submit, cancel "
            "and act as any agent",
            cfg.host,
            cfg.port,
        )
    elif tokens.enabled:
        auth_log.info("authentication is on (--auth %s)", tokens.mode)
    else:
        auth_log.info("authentication is off until a token is created (--auth auto); then it stays on")
        if cfg.host not in ("127.0.0.1", "localhost", "::1"):
            auth_log.warning(
                "authentication is off and the hub listens on %s: anyone on the network may use it", cfg.host
            )
    tokens.on_revoked.append(app[HUB].connections.on_revoked)
    app[HUB].background.append(asyncio.create_task(tokens.watch(), name="token-watch"))
