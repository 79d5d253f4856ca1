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

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from ..core.errors import Forbidden, HiveError, RateLimited, Unauthorized
from .errors import error_response
from .hub import HELD, HUB, IDENTITY

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


AUTH_MODES = ("auto", "on", "off")


class TokenStore:
    """Hashed tokens in a ``tokens`` table beside the event log (SQLite), plus an
    optional admin token from the environment.

    The table is held in memory: a request never reads SQLite, whether its token
    is known or not. ``watch()`` keeps the copy current off the event loop: it
    reads the one-row ``token_meta`` version (bumped by triggers on every change
    to ``tokens``, whoever writes it) every ``poll_seconds`` and re-reads the table
    only when the version moved. A cluster reuses the same shape: each replica
    watches the shared table and closes its own connections (``on_revoked``).

    Auth mode (``--auth``): ``off`` lets everyone in (logged loudly); ``on``
    refuses anonymous requests from the start; ``auto`` turns on as soon as a
    token or an admin token exists and then stays on, persisted as
    ``token_meta.auth_on``: revoking every token does not open the hub again.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS tokens (
        id TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, agent_id TEXT,
        note TEXT, created_at REAL NOT NULL, revoked_at REAL);
    CREATE TABLE IF NOT EXISTS token_meta (
        id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, auth_on INTEGER NOT NULL);
    INSERT OR IGNORE INTO token_meta VALUES (1, 0, EXISTS (SELECT 1 FROM tokens));
    CREATE TRIGGER IF NOT EXISTS tokens_inserted AFTER INSERT ON tokens
        BEGIN UPDATE token_meta SET version = version + 1, auth_on = 1; END;
    CREATE TRIGGER IF NOT EXISTS tokens_updated AFTER UPDATE ON tokens
        BEGIN UPDATE token_meta SET version = version + 1; END;
    CREATE TRIGGER IF NOT EXISTS tokens_deleted AFTER DELETE ON tokens
        BEGIN UPDATE token_meta SET version = version + 1; END;
    """

    def __init__(
        self,
        db_path: str | None,
        env_admin_token: str | None = None,
        mode: str = "auto",
        poll_seconds: float = 0.5,
    ) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"auth mode must be one of {AUTH_MODES}")
        self.db_path = (
            db_path
            if db_path and db_path not in ("memory", "memory:", ":memory:") and "://" not in db_path
            else None
        )
        self.mode = mode
        self.poll_seconds = poll_seconds
        #: token id -> (hash, role, agent id) of the active tokens
        self._records: dict[str, tuple[str, str, str | None]] = {}
        self._version: int | None = None
        self._version_seen = False
        #: persisted "auth has been on" (mode auto)
        self._auth_on = False
        #: reads of the token table (``hive_token_table_reads_total``): one per change, never per request
        self.reads = 0
        #: called on the event loop with the identities that stopped being valid
        self.on_revoked: list[Any] = []
        self._env_secret = env_admin_token or None
        #: secrets the hub gives its own in-process clients (demo agents); they do not turn auth on
        self._internal: set[str] = set()

    @property
    def has_internal(self) -> bool:
        return bool(self._internal)

    def add_internal(self) -> str:
        secret = secrets.token_urlsafe(32)
        self._internal.add(secret)
        return secret

    def _connect(self) -> sqlite3.Connection:
        assert self.db_path is not None
        d = os.path.dirname(os.path.abspath(self.db_path))
        os.makedirs(d, exist_ok=True)
        c = sqlite3.connect(self.db_path, timeout=5)
        c.executescript(self.SCHEMA)
        return c

    def open(self) -> None:
        """Read the table once and persist that auth is on (``--auth on`` or an admin
        token in mode auto). Call before serving; blocking (a start-up step)."""
        if self.db_path is None:
            self._auth_on = self._env_secret is not None or self.mode == "on"
            return
        c = self._connect()
        try:
            if self.mode == "on" or (self.mode == "auto" and self._env_secret is not None):
                with c:
                    c.execute("UPDATE token_meta SET auth_on = 1")
        finally:
            c.close()
        self._poll()

    def _poll(self) -> list[Identity] | None:
        """Blocking (run it in a thread): re-read the table if its version moved.
        Returns the identities no longer valid, or None when nothing changed."""
        assert self.db_path is not None
        c = sqlite3.connect(self.db_path, timeout=5)
        try:
            version, auth_on = c.execute("SELECT version, auth_on FROM token_meta").fetchone()
            if version == self._version:
                return None
            rows = c.execute(
                "SELECT id, hash, role, agent_id FROM tokens WHERE revoked_at IS NULL"
            ).fetchall()
        finally:
            c.close()
        self.reads += 1
        records = {r[0]: (r[1], r[2], r[3]) for r in rows}
        was_enabled = self.enabled
        gone = [
            Identity(tid, rec[1], rec[2]) for tid, rec in self._records.items() if records.get(tid) != rec
        ]
        # swap whole objects (no partial state is ever visible to the loop)
        self._version_seen = self._version is not None
        self._records, self._version, self._auth_on = records, version, bool(auth_on)
        if not was_enabled and self.enabled and self._version_seen:
            log.warning("authentication is now ON (a token was created); anonymous connections are closed")
            gone.append(ANONYMOUS)
        return gone

    async def watch(self) -> None:
        """Keep the in-memory table current; run as a background task."""
        if self.db_path is None:
            return
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                gone = await asyncio.to_thread(self._poll)
            except (sqlite3.Error, TypeError) as exc:
                log.warning("cannot read tokens: %s (keeping the last known set)", exc)
                continue
            if gone:
                log.info("tokens no longer valid: %s", ", ".join(str(i) for i in gone))
                for cb in self.on_revoked:
                    cb(gone)

    @property
    def enabled(self) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        return self._auth_on or bool(self._records) or self._env_secret is not None

    def authenticate(self, token: str) -> Identity | None:
        """In memory only: a known and an unknown token cost the same."""
        for secret in self._internal:
            if hmac.compare_digest(token.encode(), secret.encode()):
                return Identity("internal", "admin")
        if self._env_secret is not None and hmac.compare_digest(token.encode(), self._env_secret.encode()):
            return Identity("env-admin", "admin")
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "hv":
            return None
        _, tid, secret = parts
        rec = self._records.get(tid)
        # hash even for an unknown id, so timing does not tell known ids apart
        digest = hash_secret(secret)
        if rec is None or not hmac.compare_digest(digest, rec[0]):
            return None
        return Identity(tid, rec[1], rec[2])

    def valid(self, ident: Identity) -> bool:
        """Is this identity still current (its token not revoked, auth not switched on
        under an anonymous connection)?"""
        if ident is ANONYMOUS:
            return not self.enabled
        if ident.token_id in ("internal", "env-admin"):
            return True
        rec = self._records.get(ident.token_id)
        return rec is not None and rec[1] == ident.role and rec[2] == ident.agent_id

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
            n = c.execute(
                "UPDATE tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (time.time(), tid)
            ).rowcount
        c.close()
        return n > 0

    def list(self) -> list[dict[str, Any]]:
        c = self._connect()
        rows = c.execute(
            "SELECT id, role, agent_id, note, created_at, revoked_at FROM tokens ORDER BY created_at"
        ).fetchall()
        c.close()
        return [
            dict(zip(("id", "role", "agent_id", "note", "created_at", "revoked_at"), r, strict=True))
            for r in rows
        ]


# ------------------------------------------------------------------ classification

AGENT_TASK_REPORTS = ("start", "progress", "complete", "fail", "release")


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
            raise RateLimited(
                f"rate limit of {self.rate:g} requests/s exceeded",
                retry_after=round(wait, 3),
                limit=self.rate,
            )
        b.tokens -= 1


def client_key(request: web.Request) -> str:
    ident = request.get(IDENTITY)
    if ident is not None and ident is not ANONYMOUS:
        return f"token:{ident.token_id}"
    return f"ip:{request.remote}"


# ------------------------------------------------------------------ open connections


class Held:
    """An open WebSocket or a parked ``claim``, under the identity it was let in with."""

    __slots__ = ("agent_id", "identity", "revoked", "ws")

    def __init__(self, identity: Identity, agent_id: str | None = None) -> None:
        self.identity = identity
        self.agent_id = agent_id
        self.ws: web.WebSocketResponse | None = None
        self.revoked = False


class Connections:
    """Who is connected with which token, so a revocation can close them. Per
    process: in a cluster every replica closes its own (each one watches the
    shared token table)."""

    REASON = "unauthorized: token revoked"

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.by_token: dict[str, set[Held]] = {}

    def add(self, held: Held) -> None:
        self.by_token.setdefault(held.identity.token_id, set()).add(held)

    def discard(self, held: Held) -> None:
        s = self.by_token.get(held.identity.token_id)
        if s is not None:
            s.discard(held)
            if not s:
                del self.by_token[held.identity.token_id]

    def on_revoked(self, gone: list[Identity]) -> None:
        asyncio.ensure_future(self._revoke(gone))

    async def _revoke(self, gone: list[Identity]) -> None:
        from ..core.commands import EvictAgent

        held = [h for i in gone for h in self.by_token.get(i.token_id, ())]
        evict = {i.agent_id for i in gone if i.role == "agent" and i.agent_id}
        evict |= {h.agent_id for h in held if h.agent_id}
        for h in held:
            h.revoked = True
        # Evict before closing: the close's AgentDisconnected would hold the tasks for a
        # reconnect that cannot come with this token.
        service = self.app[HUB].service
        gateway = self.app[HUB].gateway
        for agent_id in sorted(evict):
            try:
                await service.execute(EvictAgent(id="token-revoked", agent_id=agent_id))
            except HiveError:
                pass  # not registered (yet), or removed meanwhile
            gateway.wake(agent_id)  # a parked claim sees it is revoked
        for h in held:
            if h.ws is not None:
                await close_revoked(h.ws)


async def close_revoked(ws: web.WebSocketResponse) -> None:
    try:
        await ws.close(code=1008, message=Connections.REASON.encode())
    except Exception:  # noqa: BLE001 - the peer may be gone already
        pass


def attach(request: web.Request, ws: web.WebSocketResponse, agent_id: str | None = None) -> None:
    """Tell the connection registry which socket (and agent) this request became.
    Call right after ``ws.prepare``; a revocation that came meanwhile closes it now."""
    held: Held | None = request.get(HELD)
    if held is None:
        return
    held.ws = ws
    if agent_id is not None:
        held.agent_id = agent_id
    if held.revoked:
        asyncio.ensure_future(close_revoked(ws))


async def start_token_watch(app: web.Application) -> None:
    """on_startup: load the tokens, say what the auth mode is, watch for changes."""
    cfg = app[HUB].config
    tokens: TokenStore = app[HUB].tokens
    tokens.open()
    if tokens.mode == "off":
        log.warning(
            "authentication is OFF (--auth off): anyone who can reach %s:%d may read, submit, cancel "
            "and act as any agent",
            cfg.host,
            cfg.port,
        )
    elif tokens.enabled:
        log.info("authentication is on (--auth %s)", tokens.mode)
    else:
        log.info("authentication is off until a token is created (--auth auto); then it stays on")
        if cfg.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "authentication is off and the hub listens on %s: anyone on the network may use it", cfg.host
            )
    tokens.on_revoked.append(app[HUB].connections.on_revoked)
    app[HUB].background.append(asyncio.create_task(tokens.watch(), name="token-watch"))


# ------------------------------------------------------------------ middleware


async def _ws_reject(request: web.Request, reason: str) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=1008, message=reason.encode()[:120])
    return ws


def _is_ws(request: web.Request) -> bool:
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
            if _is_ws(request):
                return await _ws_reject(request, f"{exc.code}: {exc.message}")
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
    if ident is not None and (_is_ws(request) or (kind == "agent" and raw_path.endswith("/claim"))):
        # registered so that revoking the token closes it (see Connections)
        parts = segments(raw_path)
        held = Held(ident, parts[2] if parts[:2] == ["api", "agents"] else None)
        request[HELD] = held
        app[HUB].connections.add(held)
    try:
        if _is_ws(request):
            key = client_key(request)
            conns: dict[str, int] = app[HUB].ws_clients
            if conns.get(key, 0) >= cfg.max_ws_per_client:
                return await _ws_reject(
                    request,
                    f"rate_limited: too many connections from this client (limit {cfg.max_ws_per_client})",
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
