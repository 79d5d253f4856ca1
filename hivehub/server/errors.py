"""The one table that maps errors to HTTP statuses and WS error codes.

Looked up by MRO, so a subclass inherits its parent's mapping unless it has
its own row. Foreign exceptions (msgspec validation, aiohttp size limits) are
translated here at the boundary. Anything unmapped is logged with its
traceback and answered with a generic 500 (HTTP) or an ``internal_error``
message (WS), never with internals.
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

log = logging.getLogger("hivehub.errors")

STATUS: dict[type[E.HiveError], int] = {
    E.HiveError: 400,
    E.InvalidInput: 422,
    E.PayloadTooLarge: 413,
    E.CursorOutOfRange: 400,
    E.NotFound: 404,
    E.DependencyNotFound: 422,
    E.Conflict: 409,
    E.Unauthorized: 401,
    E.Forbidden: 403,
    E.RateLimited: 429,
    E.StoreUnavailable: 503,
}


class MalformedJSON(E.InvalidInput):
    code = "malformed_json"


class UnknownMessageType(E.InvalidInput):
    code = "unknown_message_type"


class UnsupportedMediaType(E.InvalidInput):
    code = "unsupported_media_type"


STATUS[MalformedJSON] = 400
STATUS[UnsupportedMediaType] = 415


def status_for(exc: E.HiveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def translate(exc: BaseException) -> E.HiveError | None:
    """Map a foreign exception to a HiveError, or None when it is a bug."""
    if isinstance(exc, E.HiveError):
        return exc
    if isinstance(exc, msgspec.ValidationError):
        return E.InvalidInput(f"invalid request: {exc}")
    if isinstance(exc, msgspec.DecodeError):
        return MalformedJSON(f"malformed JSON: {exc}")
    if isinstance(exc, UnicodeDecodeError):
        # msgspec checks UTF-8 inside strings lazily and raises this, not DecodeError
        return MalformedJSON(f"malformed JSON: not valid UTF-8 ({exc.reason} at byte {exc.start})")
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return E.PayloadTooLarge("request body too large")
    if isinstance(exc, RecursionError):
        # msgspec gives up on JSON nested thousands deep before the depth check can run
        return E.PayloadTooLarge("JSON nested too deeply")
    return None


def error_body(exc: E.HiveError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}


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
        return await handler(request)
    except web.HTTPException as exc:
        if isinstance(exc, web.HTTPRequestEntityTooLarge):
            return error_response(E.PayloadTooLarge("request body too large", limit=request.app["config"].max_body_bytes))
        if exc.status >= 400:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            # keep the headers the exception carries (405 must name the allowed methods in Allow)
            headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
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
                body=_enc.encode({"error": {"code": "internal_error", "message": "internal error", "details": {}}}),
                status=500,
                content_type="application/json",
            )
        return error_response(mapped)


def parse_message(text: str | bytes) -> tuple[str, dict[str, Any], str | None]:
    """A WebSocket text frame -> (type, data, message_id), for /ws and /agents/ws alike.

    Raises MalformedJSON or InvalidInput; once the message_id is known it is set
    on the error (``exc.details["message_id"]``) so the error reply can echo it."""
    try:
        obj = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise E.InvalidInput('a message is a JSON object with a string "type"')
    mid = obj.get("message_id")
    if mid is not None and not isinstance(mid, str):
        # refused, and echoed as the JSON value it was sent as, so the sender can still match the reply
        raise E.InvalidInput("message_id must be a string", message_id=mid)
    data = obj.get("data")
    if data is None:  # absent or null: no arguments (0, "", [] or false are mistakes)
        data = {}
    if not isinstance(data, dict):
        raise E.InvalidInput('"data" must be an object', message_id=mid)
    return obj["type"], data, mid


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
        record.args = (remote, str(exc.message).splitlines()[0][:200] if exc.message else type(exc).__name__,
                       self.suppressed, self.interval, self.interval)
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
