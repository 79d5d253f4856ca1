"""TCP connection guard: header deadline and a cap on connections per address.

aiohttp 3.14 has no deadline for reading a request's headers: its
``keepalive_timeout`` closes a connection that is idle *between* requests (and
one that has sent nothing since it opened), but a client that trickles header
bytes ("slowloris") holds its socket, and its file descriptor, for as long as it
likes. Nor does it limit connections per client. Both are enforced here, in a
small subclass of aiohttp's protocol, at the point where bytes arrive:

* a request's headers must be complete ``header_timeout`` seconds after the
  connection opened or after the request's first byte, else the connection is
  closed;
* an address with ``max_per_address`` connections open gets ``503`` and a close
  for the next one, so one client cannot use up the hub's file descriptors and
  lock everybody else out.

A WebSocket is no longer HTTP once upgraded: the protocol ping (``ws_heartbeat``)
bounds it instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("hivehub.connections")

REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Connection: close\r\n"
    b"Retry-After: 1\r\n"
)


class ConnectionGuard:
    """Counts open connections per peer address; shared by every connection."""

    def __init__(self, header_timeout: float, max_per_address: int) -> None:
        self.header_timeout = header_timeout
        self.max_per_address = max_per_address
        self.open: dict[str, int] = {}
        self.refused = 0
        self.timed_out = 0


class GuardedHandler(RequestHandler):
    """aiohttp's protocol with the header deadline and the per-address cap."""

    def __init__(self, manager: Any, *, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._peer: str | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._requests_seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        g = self._guard
        peer = transport.get_extra_info("peername")
        addr = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        n = g.open.get(addr, 0)
        if g.max_per_address > 0 and n >= g.max_per_address:
            g.refused += 1
            if g.refused == 1 or g.refused % 1000 == 0:  # one line, not one per attempt
                log.warning("refusing connections from %s: %d open (limit %d)", addr, n, g.max_per_address)
            body = (
                b'{"error": {"code": "too_many_connections", "message": "too many connections from this address",'
                b' "details": {"limit": %d}}}' % g.max_per_address
            )
            transport.write(  # type: ignore[attr-defined]
                REFUSAL + b"Content-Length: %d\r\n\r\n" % len(body) + body
            )
            self.force_close()
            return
        self._peer = addr
        g.open[addr] = n + 1
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None and self._guard.header_timeout > 0:
            self._header_timer = self._loop.call_later(self._guard.header_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._upgraded or self.transport is None:
            return
        self._guard.timed_out += 1
        log.info(
            "closing %s: request headers not complete within %ss", self._peer, self._guard.header_timeout
        )
        t = self.transport
        self.force_close()
        t.abort()  # nothing of ours is buffered; do not wait on a peer that does not read

    def data_received(self, data: bytes) -> None:
        if self._upgraded or self._payload_parser is not None:
            super().data_received(data)
            return
        # bytes of a request line or headers: the deadline runs from the first of them
        self._arm()
        super().data_received(data)
        if self._request_count != self._requests_seen:
            # a request's headers are complete: its deadline is met
            self._requests_seen = self._request_count
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._peer is not None:
            g = self._guard
            n = g.open.get(self._peer, 1) - 1
            if n > 0:
                g.open[self._peer] = n
            else:
                g.open.pop(self._peer, None)
            self._peer = None
        super().connection_lost(exc)


class GuardedServer(web.Server):
    """aiohttp's ``Server`` making :class:`GuardedHandler` protocols."""

    guard: ConnectionGuard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, guard=self.guard, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections go through the :class:`ConnectionGuard`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        server = GuardedServer(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        server.guard = self.guard
        return server
