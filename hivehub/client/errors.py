"""Errors raised by the client: the hub's own classes, rebuilt from its error codes.

The hub answers every deliberate failure with ``{"error": {"code", "message",
"details"}}`` (REST) or ``{"type": "error", "data": {...}}`` (/ws). The client
raises the class that the protocol's error table (``hivehub.protocol.errors``) names for the code,
so ``except TaskNotFound`` works the same in the hub and in a client program.
The instance carries the hub's exact ``code``, its ``message`` and ``details``,
and ``status``: the HTTP status (``None`` for a /ws reply).
"""

from __future__ import annotations

from typing import Any

from ..core.errors import HiveError
from ..protocol.errors import HubUnreachable, error_class, parse_error

__all__ = ["HubUnreachable", "error_class", "from_error_body", "hive_error", "unreachable"]


def hive_error(
    code: str | None, message: str, details: dict[str, Any] | None = None, status: int | None = None
) -> HiveError:
    """Build the exception the hub meant: right class (by ``code``, then by HTTP
    ``status``), the hub's code, message, details, and ``status``."""
    exc = error_class(code, status)(message)
    exc.details = dict(details or {})
    exc.code = code or type(exc).code  # the hub's exact code, even when the class is a fallback
    exc.status = status  # type: ignore[attr-defined]
    return exc


def from_error_body(body: Any, status: int | None, fallback: str = "") -> HiveError:
    """Rebuild an error from a REST ``{"error": {...}}`` body or a /ws error ``data``."""
    parsed = parse_error(body)
    if parsed is not None:
        return hive_error(*parsed, status)
    text = fallback or (f"HTTP {status}" if status else "error")
    return hive_error("http_error" if status else None, text, {}, status)


def unreachable(message: str, **details: Any) -> HubUnreachable:
    exc = HubUnreachable(message, **details)
    exc.status = None
    return exc
