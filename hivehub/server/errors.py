"""The one table that maps errors to HTTP statuses and WS error codes.

Looked up by MRO, so a subclass inherits its parent's mapping unless it has
its own row. Foreign exceptions (msgspec validation, aiohttp size limits) are
translated here at the boundary. Anything unmapped is logged with its
traceback and answered with a generic 500 (HTTP) or an ``internal_error``
message (WS), never with internals.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from aiohttp import web

from ..core import errors as E

log = logging.getLogger("hivehub.errors")

STATUS: dict[type[E.HiveError], int] = {
    E.HiveError: 400,
    E.InvalidInput: 422,
    E.PayloadTooLarge: 413,
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
            return web.Response(
                body=_enc.encode({"error": {"code": code, "message": exc.reason, "details": {}}}),
                status=exc.status,
                content_type="application/json",
            )
        raise
    except Exception as exc:
        if isinstance(exc, ConnectionResetError):
            raise  # the peer is gone: nothing to answer
        mapped = translate(exc)
        if mapped is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.Response(
                body=_enc.encode({"error": {"code": "internal_error", "message": "internal error", "details": {}}}),
                status=500,
                content_type="application/json",
            )
        return error_response(mapped)


def parse_message(text: str) -> tuple[str, dict[str, Any], str | None]:
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
    mid = str(mid) if mid is not None else None
    data = obj.get("data")
    if data is None:  # absent or null: no arguments (0, "", [] or false are mistakes)
        data = {}
    if not isinstance(data, dict):
        raise E.InvalidInput('"data" must be an object', message_id=mid)
    return obj["type"], data, mid
