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
answers 401/403 with the JSON error shape, and upgrades then closes WebSockets
with 1008 and a reason so browsers can see why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from ..core.errors import Forbidden, HiveError, RateLimited, Unauthorized
from .errors import error_response

log = logging.getLogger("hivehub.auth")

ROLES = ("viewer", "operator", "admin", "agent")
RANK = {"viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Identity:
    token_id: str
    role: str
    agent_id: str | None = None

    def __str__(self) -> str:
        return f"{self.role}:{self.token_id}"


ANONYMOUS = Identity("anonymous", "admin")  # auth off: local use, everything allowed


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """Returns (token, id, secret)."""
    tid = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    return f"hv_{tid}_{secret}", tid, secret


class TokenStore:
    """Hashed tokens in a ``tokens`` table beside the event log (SQLite), plus an
    optional admin token from the environment. Revocations are seen within
    ``refresh_seconds``."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, agent_id TEXT,
        note TEXT, created_at REAL NOT NULL, revoked_at REAL)"""

    def __init__(self, db_path: str | None, env_admin_token: str | None = None, refresh_seconds: float = 2.0) -> None:
        self.db_path = db_path if db_path and db_path not in ("memory", "memory:", ":memory:") and "://" not in db_path else None
        self.refresh_seconds = refresh_seconds
        self._records: dict[str, tuple[str, str, str | None]] = {}
        self._loaded_at = 0.0
        self._env: dict[str, tuple[str, str, str | None]] = {}
        if env_admin_token:
            self._env["env-admin"] = ("", "admin", None)
            self._env_secret = env_admin_token
        else:
            self._env_secret = None
        #: secrets the hub gives its own in-process clients (demo agents); they do not turn auth on
        self._internal: set[str] = set()

    def add_internal(self) -> str:
        secret = secrets.token_urlsafe(32)
        self._internal.add(secret)
        return secret

    def _connect(self) -> sqlite3.Connection:
        assert self.db_path is not None
        d = os.path.dirname(os.path.abspath(self.db_path))
        os.makedirs(d, exist_ok=True)
        c = sqlite3.connect(self.db_path, timeout=5)
        c.execute(self.SCHEMA)
        return c

    def refresh(self, force: bool = False) -> None:
        if self.db_path is None:
            return
        now = time.monotonic()
        if not force and now - self._loaded_at < self.refresh_seconds:
            return
        self._loaded_at = now
        try:
            c = self._connect()
            try:
                rows = c.execute("SELECT id, hash, role, agent_id FROM tokens WHERE revoked_at IS NULL").fetchall()
            finally:
                c.close()
        except sqlite3.Error as exc:
            log.warning("cannot read tokens: %s (keeping the last known set)", exc)
            return
        self._records = {r[0]: (r[1], r[2], r[3]) for r in rows}

    @property
    def enabled(self) -> bool:
        self.refresh()
        return bool(self._records) or self._env_secret is not None

    def authenticate(self, token: str) -> Identity | None:
        for secret in self._internal:
            if hmac.compare_digest(token.encode(), secret.encode()):
                return Identity("internal", "admin")
        if self._env_secret is not None and hmac.compare_digest(token.encode(), self._env_secret.encode()):
            return Identity("env-admin", "admin")
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "hv":
            return None
        _, tid, secret = parts
        self.refresh()
        rec = self._records.get(tid)
        if rec is None:
            self.refresh(force=True)  # created a moment ago?
            rec = self._records.get(tid)
            if rec is None:
                return None
        if not hmac.compare_digest(hash_secret(secret), rec[0]):
            return None
        return Identity(tid, rec[1], rec[2])

    # --- administration (the ``hive token`` command) ---

    def create(self, role: str, agent_id: str | None = None, note: str | None = None) -> tuple[str, str]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if role == "agent" and not agent_id:
            raise ValueError("an agent token must be bound to an agent id (--agent ID)")
        token, tid, secret = new_token()
        c = self._connect()
        with c:
            c.execute(
                "INSERT INTO tokens(id, hash, role, agent_id, note, created_at) VALUES (?,?,?,?,?,?)",
                (tid, hash_secret(secret), role, agent_id, note, time.time()),
            )
        c.close()
        return token, tid

    def revoke(self, token_or_id: str) -> bool:
        tid = token_or_id.split("_")[1] if token_or_id.startswith("hv_") else token_or_id
        c = self._connect()
        with c:
            n = c.execute("UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (time.time(), tid)).rowcount
        c.close()
        return n > 0

    def list(self) -> list[dict[str, Any]]:
        c = self._connect()
        rows = c.execute("SELECT id, role, agent_id, note, created_at, revoked_at FROM tokens ORDER BY created_at").fetchall()
        c.close()
        return [dict(zip(("id", "role", "agent_id", "note", "created_at", "revoked_at"), r, strict=True)) for r in rows]


# ------------------------------------------------------------------ classification

AGENT_TASK_REPORTS = ("start", "progress", "complete", "fail", "release")


def classify(method: str, path: str) -> str:
    """One of: public, read, write, agent (agent protocol), stream (/ws)."""
    if path in ("/health", "/api", "/api/openapi.json", "/", "/favicon.ico") or path.startswith("/static/"):
        return "public"
    if path == "/agents/ws":
        return "agent"
    if path.startswith("/internal/"):
        return "internal"  # replica to replica: the cluster secret, checked by the handler
    if path == "/ws":
        return "stream"
    parts = path.strip("/").split("/")
    if method == "POST" and len(parts) == 4 and parts[:2] == ["api", "agents"] and parts[3] in ("claim", "heartbeat"):
        return "agent"
    if method == "POST" and len(parts) == 4 and parts[:2] == ["api", "tasks"] and parts[3] in AGENT_TASK_REPORTS:
        return "agent"
    if method == "POST" and path == "/api/agents":
        return "register"
    if method in ("GET", "HEAD"):
        return "read"
    return "write"


def allowed(identity: Identity, kind: str) -> bool:
    if kind == "public":
        return True
    if identity.role == "agent":
        return kind in ("agent", "register")
    rank = RANK.get(identity.role, 0)
    if kind in ("read", "stream"):
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


# ------------------------------------------------------------------ rate limiting


class TokenBucket:
    __slots__ = ("last", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.last = now


class RateLimiter:
    """Per-client token buckets (client = token id, else remote address)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.buckets: dict[str, TokenBucket] = {}

    def check(self, client: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        b = self.buckets.get(client)
        if b is None:
            if len(self.buckets) > 100_000:
                self.buckets.clear()
            b = self.buckets[client] = TokenBucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.last) * self.rate)
        b.last = now
        if b.tokens < 1:
            wait = (1 - b.tokens) / self.rate
            raise RateLimited(f"rate limit of {self.rate:g} requests/s exceeded", retry_after=round(wait, 3), limit=self.rate)
        b.tokens -= 1


def client_key(request: web.Request) -> str:
    ident = request.get("identity")
    if ident is not None and ident is not ANONYMOUS:
        return f"token:{ident.token_id}"
    return f"ip:{request.remote}"


# ------------------------------------------------------------------ middleware


async def _ws_reject(request: web.Request, reason: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=1008, message=reason.encode()[:120])
    return ws


def _is_ws(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def origin_ok(request: web.Request, allowed_origins: list[str]) -> bool:
    """Browsers send Origin; a cross-site page must not ride a user's token (CSWSH).
    Same-origin and listed origins pass; non-browser clients send no Origin."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    if "*" in allowed_origins or origin in allowed_origins:
        return True
    host = request.headers.get("Host", "")
    return origin.split("://", 1)[-1] == host


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    app = request.app
    cfg = app["config"]
    tokens: TokenStore = app["tokens"]
    kind = classify(request.method, request.path)
    if request.method == "OPTIONS" or kind == "internal":
        return await handler(request)
    if not tokens.enabled:
        request["identity"] = ANONYMOUS
    elif kind == "public":
        request["identity"] = None
    else:
        raw = token_from(request)
        ident = tokens.authenticate(raw) if raw else None
        try:
            if ident is None:
                raise Unauthorized("a valid token is required" if raw is None else "invalid or revoked token")
            if not allowed(ident, kind):
                raise Forbidden(f"role {ident.role} may not do this", role=ident.role, needed=kind)
            if kind in ("stream", "agent") and _is_ws(request) and not origin_ok(request, cfg.allowed_origins):
                raise Forbidden("origin not allowed", origin=request.headers.get("Origin"))
        except HiveError as exc:
            if _is_ws(request):
                return await _ws_reject(request, f"{exc.code}: {exc.message}")
            return error_response(exc)
        request["identity"] = ident
        if ident.role == "agent":
            denied = await _agent_binding_violation(request, ident)
            if denied is not None:
                return error_response(denied)
    if kind == "write" or (kind == "register" and request.method == "POST"):
        try:
            app["rate_limiter"].check(client_key(request))
        except RateLimited as exc:
            return error_response(exc)
    if _is_ws(request):
        key = client_key(request)
        conns: dict[str, int] = app["ws_clients"]
        if conns.get(key, 0) >= cfg.max_ws_per_client:
            return await _ws_reject(request, f"rate_limited: too many connections from this client (limit {cfg.max_ws_per_client})")
        conns[key] = conns.get(key, 0) + 1
        try:
            return await handler(request)
        finally:
            conns[key] -= 1
            if not conns[key]:
                del conns[key]
    return await handler(request)


async def _agent_binding_violation(request: web.Request, ident: Identity) -> HiveError | None:
    """An agent token acts only for its own agent id."""
    parts = request.path.strip("/").split("/")
    if parts[:2] == ["api", "agents"] and len(parts) == 4 and parts[2] != ident.agent_id:
        return Forbidden("this token is bound to another agent", agent_id=ident.agent_id)
    if request.method == "POST" and (request.path == "/api/agents" or (parts[:2] == ["api", "tasks"] and len(parts) == 4)):
        try:
            body = msgspec.json.decode(await request.read())
        except msgspec.DecodeError:
            return None  # the handler reports malformed JSON
        key = "id" if request.path == "/api/agents" else "agent_id"
        if isinstance(body, dict) and body.get(key) != ident.agent_id:
            return Forbidden(f"this token may only act as agent {ident.agent_id}", agent_id=ident.agent_id)
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    origins: list[str] = request.app["config"].cors_origins
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
