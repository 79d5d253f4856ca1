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
