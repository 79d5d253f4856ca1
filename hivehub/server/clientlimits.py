"""Per-client limits: request rate (token buckets per client key) and the open
WebSocket connections (per client, and which identity holds each, so a revoked
token closes its sockets at once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web

from ..core.errors import HiveError, RateLimited
from .keys import HELD, IDENTITY
from .ports import Waker
from .service import HubService
from .tokens import ANONYMOUS, Identity

log = logging.getLogger("hivehub.auth")

# ------------------------------------------------------------------ rate limiting


class TokenBucket:
    __slots__ = ("last", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.last = now


#: ``--rate-limit auto`` once auth is on: mutating requests per second per token
#: (bursts of twice that). Above what one producer posting in a loop reaches on one
#: machine (about 1,500/s here, bench ``tasks``), below what the hub commits in total
#: (several thousand/s), so one runaway token cannot take the whole hub from the others.
AUTO_RATE_LIMIT = 1000.0


#: ``--max-ws-per-client auto`` once auth is on: open WebSockets per token. While
#: auth is off every local process is one client (one address), so a cap would only
#: refuse the user's own agents and subscribers past it (a load test from one machine
#: meets it in its first minute); the per-address TCP cap and the open-file limit
#: still bound them.
AUTO_WS_PER_CLIENT = 256


def ws_limit(configured: int | None, auth_on: bool) -> int | None:
    """The per-client WebSocket cap in force: an explicit one in every auth mode;
    auto: AUTO_WS_PER_CLIENT while auth is on, none while it is off."""
    if configured is not None:
        return configured
    return AUTO_WS_PER_CLIENT if auth_on else None


class RateLimiter:
    """Per-client token buckets (client = token id, else remote address).

    ``when``: the limit applies only while it returns True (``--rate-limit auto``:
    while auth is on); None: always."""

    def __init__(self, rate: float, burst: float, when: Callable[[], bool] | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self.when = when
        self.buckets: dict[str, TokenBucket] = {}

    @classmethod
    def configured(cls, rate: float | None, burst: float | None, auth_on: Callable[[], bool]) -> RateLimiter:
        """The limiter of ``ServerConfig.rate_limit_per_second``/``_burst``: an explicit
        rate applies in every auth mode; None (auto) applies AUTO_RATE_LIMIT while
        ``auth_on()``. With auth off every local process shares one bucket (one
        address, 127.0.0.1) and anyone who reaches the hub may already do everything
        a flood could, so a limit there only throttles the user's own load."""
        if rate is None:
            return cls(AUTO_RATE_LIMIT, burst or 2 * AUTO_RATE_LIMIT, when=auth_on)
        return cls(rate, burst if burst is not None else max(1.0, 2 * rate))

    def check(self, client: str) -> None:
        if self.rate <= 0 or (self.when is not None and not self.when()):
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

    def __init__(self, service: HubService, gateway: Waker) -> None:
        self.service = service
        self.gateway = gateway
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
        service, gateway = self.service, self.gateway
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
