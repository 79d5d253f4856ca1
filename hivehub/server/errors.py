"""HTTP transport of the error table (``hivehub/protocol/errors.py``).

The table itself (class -> HTTP status, WebSocket close code, stable ``code``,
looked up by MRO) lives in the protocol package, shared with the clients.
Here: aiohttp's own exceptions (body size limit, routing) are translated at
the boundary, and anything unmapped is logged with its traceback and answered
with a generic 500, never with internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..core import errors as E
from ..protocol import errors as P
from ..protocol.errors import (  # noqa: F401  (re-exported: the adapters' names for them)
    MalformedJSON,
    UnknownMessageType,
    UnsupportedMediaType,
    error_body,
    status_for,
)
from .hub import HUB

log = logging.getLogger("hivehub.errors")


def translate(exc: BaseException) -> E.HiveError | None:
    """Map a foreign exception to a HiveError, or None when it is a bug."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return E.PayloadTooLarge("request body too large")
    return P.translate(exc)


_enc = msgspec.json.Encoder()


def error_response(exc: E.HiveError) -> web.Response:
    headers = {}
    if isinstance(exc, E.RateLimited) and "retry_after" in exc.details:
        headers["Retry-After"] = str(max(1, int(exc.details["retry_after"] + 0.999)))
    return web.Response(
        body=_enc.encode(error_body(exc)),
        status=status_for(exc),
        content_type="application/json",
        headers=headers,
    )


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
            log.debug("peer went away during %s %s: %s", request.method, request.path, exc)
            return web.Response(status=499)
        mapped = translate(exc)
        if mapped is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.Response(
                body=_enc.encode(
                    {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
                ),
                status=500,
                content_type="application/json",
            )
        return error_response(mapped)


class MalformedRequestLogFilter(logging.Filter):
    """aiohttp logs every unparsable request (a malformed request line or header) at
    ERROR with a traceback, so anyone can flood the log. This filter, on the
    ``aiohttp.server`` logger, turns such a record into one WARNING line without the
    traceback, and drops the others for ``interval`` seconds (the next line that
    gets through says how many were dropped). Other records pass unchanged."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self._next = float("-inf")

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = self.clock()
        if now < self._next:
            self.suppressed += 1
            return False
        self._next = now + self.interval
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "malformed HTTP request from %s: %s (%d more not logged in the last %gs; at most one line per %gs)"
        record.args = (
            remote,
            str(exc.message).splitlines()[0][:200] if exc.message else type(exc).__name__,
            self.suppressed,
            self.interval,
            self.interval,
        )
        self.suppressed = 0
        record.levelno = logging.WARNING
        record.levelname = "WARNING"
        record.exc_info = None
        record.exc_text = None
        return True


def install_log_filters() -> None:
    """Idempotent: one filter per process, however many apps are created."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLogFilter) for f in logger.filters):
        logger.addFilter(MalformedRequestLogFilter())
