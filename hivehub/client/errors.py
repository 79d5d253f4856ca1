"""Errors raised by the client: the hub's own classes, rebuilt from its error codes.

The hub answers every deliberate failure with ``{"error": {"code", "message",
"details"}}`` (REST) or ``{"type": "error", "data": {...}}`` (/ws). The client
raises the class that ``hivehub.core.errors.ERRORS_BY_CODE`` names for the code,
so ``except TaskNotFound`` works the same in the hub and in a client program.
The instance carries the hub's exact ``code``, its ``message`` and ``details``,
and ``status``: the HTTP status (``None`` for a /ws reply).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import (
    ERRORS_BY_CODE,
    Conflict,
    Forbidden,
    HiveError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    Unauthorized,
)


class HubUnreachable(HiveError):
    """The hub could not be reached (refused, reset, DNS, or no answer in time)."""

    code = "hub_unreachable"
    status: int | None = None


#: codes the hub's adapters add on top of the core tree (``server/errors.py``)
_EXTRA_CODES: dict[str, type[HiveError]] = {
    "malformed_json": InvalidInput,
    "unknown_message_type": InvalidInput,
    "unsupported_frame": InvalidInput,
    "unsupported_media_type": InvalidInput,
}
#: an unknown code falls back to the class the HTTP status stands for
_BY_STATUS: dict[int, type[HiveError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: RateLimited,
    503: StoreUnavailable,
}


def error_class(code: str | None, status: int | None = None) -> type[HiveError]:
    """The class for a hub error ``code`` (then by HTTP ``status``), else ``HiveError``."""
    if code:
        cls = ERRORS_BY_CODE.get(code) or _EXTRA_CODES.get(code)
        if cls is not None:
            return cls
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    return HiveError


def hive_error(code: str | None, message: str, details: dict[str, Any] | None = None, status: int | None = None) -> HiveError:
    """Build the exception the hub meant: right class, the hub's code, message, details, status."""
    cls = error_class(code, status)
    exc = cls(message)
    exc.details = dict(details or {})
    exc.code = code or cls.code  # the hub's exact code, even when the class is a fallback
    exc.status = status  # type: ignore[attr-defined]
    return exc


def from_error_body(body: Any, status: int | None, fallback: str = "") -> HiveError:
    """Rebuild an error from a REST ``{"error": {...}}`` body or a /ws error ``data``."""
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        details = err.get("details")
        return hive_error(err["code"], str(err.get("message", "")), details if isinstance(details, dict) else {}, status)
    text = fallback or (f"HTTP {status}" if status else "error")
    return hive_error("http_error" if status else None, text, {}, status)


def unreachable(message: str, **details: Any) -> HubUnreachable:
    exc = HubUnreachable(message, **details)
    exc.status = None
    return exc
