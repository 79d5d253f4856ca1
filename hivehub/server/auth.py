"""Authentication, roles, origin checks, CORS and per-client rate limits.

Auth is off while no token exists (local use) and on as soon as one does
(``hive token create`` or ``HIVE_ADMIN_TOKEN``). A token looks like
``hv_<id>_<secret>``; only ``sha256(secret)`` is stored, and the secret is
compared with ``hmac.compare_digest`` after looking the record up by its id.

Roles (each includes the ones above it, except ``agent``, which is separate)::

    viewer    read endpoints and the /ws stream
    operator  + create/cancel/retry tasks, manage agents, /ws control commands
    admin     everything
    agent     only the agent protocol, bound to one agent id

Requests are classified once by method and path (``classify``); the middleware
(``server/middleware.py``, which applies these rules) answers 401/403 with the
JSON error shape, and upgrades then closes WebSockets with 1008 and a reason so
browsers can see why.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from .clientlimits import (
    Connections,
    Held,
    RateLimiter,
    TokenBucket,
    attach,
    client_key,
    close_revoked,
)
from .tokens import (
    ANONYMOUS,
    AUTH_MODES,
    RANK,
    ROLES,
    Identity,
    TokenStore,
    hash_secret,
    new_token,
)

# the tokens and the limits live beside this module; the app, the adapters and the
# CLI import them from here as before
__all__ = [
    "ANONYMOUS",
    "AUTH_MODES",
    "RANK",
    "ROLES",
    "Connections",
    "Held",
    "Identity",
    "RateLimiter",
    "TokenBucket",
    "TokenStore",
    "allowed",
    "attach",
    "classify",
    "client_key",
    "close_revoked",
    "hash_secret",
    "new_token",
    "origin_ok",
    "token_from",
]

log = logging.getLogger("hivehub.auth")

# ------------------------------------------------------------------ classification

AGENT_TASK_REPORTS = ("start", "progress", "complete", "fail", "release", "input-request")


def segments(raw_path: str) -> list[str]:
    """Path segments, each percent-decoded on its own: a task id ``a/b`` sent as
    ``a%2Fb`` stays one segment (the router matches the same way)."""
    return [unquote(p) for p in raw_path.strip("/").split("/")]


def classify(method: str, raw_path: str) -> str:
    """One of: public, read, task_read (one task), write, agent (agent protocol),
    register, stream (/ws), internal. ``raw_path`` is the path as sent (percent-encoded)."""
    path = raw_path
    if path in ("/health", "/api", "/api/openapi.json", "/", "/favicon.ico") or path.startswith("/static/"):
        return "public"
    if path == "/.well-known/agent-card.json":
        return "public"  # the hive's A2A Agent Card (hivehub.a2a.server)
    if path in ("/mcp", "/a2a") or path.startswith(("/mcp/", "/a2a/")):
        # The agent protocols: a viewer may open them; each tool or method then calls
        # the hub's API with the caller's own token, so the usual roles apply per call.
        return "read"
    if path == "/agents/ws":
        return "agent"
    if path.startswith("/internal/"):
        return "internal"  # replica to replica: the cluster secret, checked by the handler
    if path == "/ws":
        return "stream"
    parts = segments(path)
    if (
        method == "POST"
        and len(parts) == 4
        and parts[:2] == ["api", "agents"]
        and parts[3] in ("claim", "heartbeat")
    ):
        return "agent"
    if (
        method == "POST"
        and len(parts) == 4
        and parts[:2] == ["api", "tasks"]
        and parts[3] in AGENT_TASK_REPORTS
    ):
        return "agent"
    if method == "POST" and path == "/api/agents":
        return "register"
    if method in ("GET", "HEAD"):
        if len(parts) == 3 and parts[:2] == ["api", "tasks"] and parts[2] != "batch":
            return "task_read"
        return "read"
    return "write"


def allowed(identity: Identity, kind: str) -> bool:
    if kind == "public":
        return True
    if identity.role == "agent":
        # task_read: only a task it holds or held (checked with the hive's state)
        return kind in ("agent", "register", "task_read")
    rank = RANK.get(identity.role, 0)
    if kind in ("read", "task_read", "stream"):
        return rank >= 1
    return rank >= 2  # write, register, agent protocol: operators and admins


def token_from(request: web.Request) -> str | None:
    h = request.headers.get("Authorization", "")
    if h.lower().startswith("bearer "):
        return h[7:].strip()
    k = request.headers.get("X-API-Key")
    if k:
        return k.strip()
    return request.query.get("token") or None


# ------------------------------------------------------------------ middleware


async def ws_reject(request: web.Request, reason: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=1008, message=reason.encode()[:120])
    return ws


def is_ws(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _trusted_host(hostname: str, cfg: Any) -> bool:
    """A name a DNS-rebinding page cannot stand behind: an IP literal, localhost,
    the configured --host, or the host of an allowed origin."""
    hostname = hostname.strip("[]").lower()
    try:
        ipaddress.ip_address(hostname)
        return True
    except ValueError:
        pass
    if hostname == "localhost" or hostname.endswith(".localhost") or hostname == str(cfg.host).lower():
        return True
    return any(urlsplit(o).hostname == hostname for o in (*cfg.allowed_origins, *cfg.cors_origins))


def origin_ok(request: web.Request, cfg: Any, auth_on: bool = True) -> bool:
    """Browsers send Origin; a cross-site page must not act through the user's
    browser (CSRF, CSWSH), with or without a token. Listed origins pass; the hub's
    own origin (the dashboard) passes, by a trusted Host name while auth is off
    (DNS rebinding); non-browser clients send no Origin and pass."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    listed = (*cfg.allowed_origins, *cfg.cors_origins)
    if "*" in listed or origin in listed:
        return True
    host = request.headers.get("Host", "")
    if origin.split("://", 1)[-1] != host:
        return False
    return auth_on or _trusted_host(urlsplit(origin).hostname or "", cfg)


def json_content_ok(request: web.Request) -> bool:
    """A JSON endpoint takes ``application/json`` (a cross-site form or ``text/plain``
    POST needs no preflight, so it must not be accepted). An empty body may come
    with any content type (``claim``, ``heartbeat``; HTTP clients label it
    ``application/octet-stream``): it carries nothing to forge."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.body_exists:
        return True
    ctype = request.headers.get("Content-Type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))
