"""The one error table of the wire: error class -> HTTP status, WebSocket close
code and stable ``code`` string, looked up by the exception's MRO.

The core's tree (``hivehub.core.errors``) plus the errors only the wire has::

    HiveError
    ├── InvalidInput                   422
    │   ├── PayloadTooLarge            413
    │   ├── CursorOutOfRange           400
    │   ├── DependencyNotFound         422
    │   ├── MalformedJSON              400  malformed_json
    │   ├── UnsupportedMediaType       415  unsupported_media_type
    │   ├── UnknownMessageType         422  unknown_message_type
    │   └── UnsupportedFrame           422  unsupported_frame (a binary WebSocket frame)
    ├── NotFound                       404
    │   ├── QuotaNotFound, BudgetNotFound  404  quota_not_found, budget_not_found
    │   └── UnknownNamespace           404  unknown_namespace (no such ``/ns/{name}/``)
    ├── Conflict                       409
    │   └── QuotaInUse                 409  quota_in_use
    ├── Unauthorized / Forbidden       401 / 403
    ├── RateLimited                    429
    ├── StoreUnavailable               503
    ├── NotLeader                      400  not_leader (replica to replica)
    ├── HistoryTruncated               -    history_truncated (/ws replay notice)
    ├── HubUnreachable                 -    hub_unreachable (raised by clients only)
    └── AgentError                     -    agent_error (raised by the agent SDK only)
        └── RegistrationError          -    registration_refused; ``code`` is the hub's
                                            refusal (invalid_input, unauthorized, ...) or
                                            agent_removed / agent_replaced (close 4001 / 4002)

The ``code`` strings are the contract: the hub answers with them, and the Python
client, the agent SDK and the cluster forwarder raise the same classes back
from them (:func:`rebuild`). Refusing a WebSocket closes with
``CLOSE_POLICY`` (1008) and a reason, ``"<code>: <message>"`` where a code applies
(a failed ``/agents/ws`` registration sends its error first, then closes with
``registration failed``); a bug (anything
not in the tree) answers 500 or closes with ``CLOSE_INTERNAL`` (1011).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from ..core import errors as E

# ----------------------------------------------------------------- close codes

#: normal closure (RFC 6455 7.4.1)
CLOSE_NORMAL = 1000
#: the hub is shutting down
CLOSE_GOING_AWAY = 1001
#: a refusal: bad or missing registration, a revoked token, a cursor beyond the head
CLOSE_POLICY = 1008
#: a frame over ``--max-frame``
CLOSE_TOO_BIG = 1009
#: an unexpected error in the hub (a bug): never with internals in the reason
CLOSE_INTERNAL = 1011
#: a /ws subscriber that fell behind its buffer; the reason names the ``since`` to resume from
CLOSE_SLOW = 1013
#: the agent was removed from the hub (do not reconnect with the same id)
CLOSE_AGENT_REMOVED = 4001
#: another connection registered with this agent id (do not reconnect)
CLOSE_AGENT_REPLACED = 4002
#: an agent that does not read what the hub sends it (its budget is full)
CLOSE_BACKED_UP = 4013


# ----------------------------------------------------------------- wire-only errors


class MalformedJSON(E.InvalidInput):
    code = "malformed_json"


class UnknownMessageType(E.InvalidInput):
    code = "unknown_message_type"


class UnsupportedMediaType(E.InvalidInput):
    code = "unsupported_media_type"


class UnsupportedFrame(E.InvalidInput):
    code = "unsupported_frame"


class UnknownNamespace(E.NotFound):
    """A request under ``/ns/{name}/`` for a namespace the hub does not serve
    (``hive serve --namespace``)."""

    code = "unknown_namespace"


class NotLeader(E.HiveError):
    """A follower forwarded a command to a replica that no longer leads."""

    code = "not_leader"


class HistoryTruncated(E.HiveError):
    """A /ws replay asked for events the log no longer retains (a notice; the
    replay goes on from the oldest retained event)."""

    code = "history_truncated"


class HubUnreachable(E.HiveError):
    """The hub could not be reached (refused, reset, DNS, or no answer in time)."""

    code = "hub_unreachable"
    status: int | None = None


class AgentError(E.HiveError):
    """Base of the agent SDK's own errors (``hivehub.agent`` re-exports it)."""

    code = "agent_error"


class RegistrationError(AgentError):
    """The hub refused an agent's registration for a reason a retry will not fix.

    ``code`` is the reason: the hub's error code (``invalid_input``,
    ``payload_too_large``, ``unauthorized``, ``forbidden``, ``agent_exists``), or
    ``agent_removed`` / ``agent_replaced`` for a connection closed with
    ``CLOSE_AGENT_REMOVED`` / ``CLOSE_AGENT_REPLACED`` (:data:`REFUSING_CLOSES`)."""

    code = "registration_refused"

    @classmethod
    def refused(cls, code: str, message: str, details: dict[str, Any] | None = None) -> RegistrationError:
        """The error for a refusal with the hub's ``code``, ``message`` and ``details``."""
        exc = cls(message)
        exc.code = code
        exc.details = dict(details or {})
        return exc

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


#: close codes after which reconnecting with the same agent id would be wrong:
#: close code -> (RegistrationError code, what happened)
REFUSING_CLOSES: dict[int, tuple[str, str]] = {
    CLOSE_AGENT_REMOVED: ("agent_removed", "the agent was removed from the hub"),
    CLOSE_AGENT_REPLACED: ("agent_replaced", "another connection registered with this agent id"),
}


# ----------------------------------------------------------------- the table


class Row(NamedTuple):
    status: int
    close: int


TABLE: dict[type[E.HiveError], Row] = {
    E.HiveError: Row(400, CLOSE_POLICY),
    E.InvalidInput: Row(422, CLOSE_POLICY),
    E.PayloadTooLarge: Row(413, CLOSE_POLICY),
    E.CursorOutOfRange: Row(400, CLOSE_POLICY),
    E.NotFound: Row(404, CLOSE_POLICY),
    E.DependencyNotFound: Row(422, CLOSE_POLICY),
    E.QuotaNotFound: Row(404, CLOSE_POLICY),
    E.BudgetNotFound: Row(404, CLOSE_POLICY),
    E.QuotaInUse: Row(409, CLOSE_POLICY),
    E.Conflict: Row(409, CLOSE_POLICY),
    E.Unauthorized: Row(401, CLOSE_POLICY),
    E.Forbidden: Row(403, CLOSE_POLICY),
    E.RateLimited: Row(429, CLOSE_POLICY),
    E.StoreUnavailable: Row(503, CLOSE_POLICY),
    MalformedJSON: Row(400, CLOSE_POLICY),
    UnsupportedMediaType: Row(415, CLOSE_POLICY),
}
#: what a bug answers: a generic 500 or close 1011, never internals
INTERNAL = Row(500, CLOSE_INTERNAL)

WIRE_ERRORS: tuple[type[E.HiveError], ...] = (
    MalformedJSON,
    UnknownMessageType,
    UnsupportedMediaType,
    UnsupportedFrame,
    UnknownNamespace,
    NotLeader,
    HistoryTruncated,
    HubUnreachable,
    AgentError,
    RegistrationError,
)
#: every stable code -> its class (the core's and the wire's)
ERRORS_BY_CODE: dict[str, type[E.HiveError]] = {
    **E.ERRORS_BY_CODE,
    **{cls.code: cls for cls in WIRE_ERRORS},
}
#: an unknown code falls back to the class the HTTP status stands for
CLASS_BY_STATUS: dict[int, type[E.HiveError]] = {
    401: E.Unauthorized,
    403: E.Forbidden,
    404: E.NotFound,
    409: E.Conflict,
    413: E.PayloadTooLarge,
    422: E.InvalidInput,
    429: E.RateLimited,
    503: E.StoreUnavailable,
}


def row_for(exc: E.HiveError) -> Row:
    """The table's row for ``exc``: its own class's, else the nearest ancestor's."""
    for cls in type(exc).__mro__:
        row = TABLE.get(cls)
        if row is not None:
            return row
    return TABLE[E.HiveError]


def status_for(exc: E.HiveError) -> int:
    return row_for(exc).status


def close_code_for(exc: E.HiveError) -> int:
    return row_for(exc).close


def translate(exc: BaseException) -> E.HiveError | None:
    """Map a foreign exception met while decoding to a HiveError; None when it is a bug.

    (Transport errors, such as aiohttp's body-size limit, are translated by the
    transport, ``hivehub/server/errors.py``.)"""
    if isinstance(exc, E.HiveError):
        return exc
    if isinstance(exc, msgspec.ValidationError):
        return E.InvalidInput(f"invalid request: {exc}")
    if isinstance(exc, msgspec.DecodeError):
        return MalformedJSON(f"malformed JSON: {exc}")
    if isinstance(exc, UnicodeDecodeError):
        # msgspec checks UTF-8 inside strings lazily and raises this, not DecodeError
        return MalformedJSON(f"malformed JSON: not valid UTF-8 ({exc.reason} at byte {exc.start})")
    if isinstance(exc, RecursionError):
        # msgspec gives up on JSON nested thousands deep before the depth check can run
        return E.PayloadTooLarge("JSON nested too deeply")
    return None


def internal_error() -> E.HiveError:
    """What a client is told about a bug: a generic ``internal_error``."""
    exc = E.HiveError("internal error")
    exc.code = "internal_error"
    return exc


def error_data(exc: E.HiveError) -> dict[str, Any]:
    """The ``{"code", "message", "details"}`` object of every error answer."""
    return {"code": exc.code, "message": exc.message, "details": exc.details}


def error_body(exc: E.HiveError) -> dict[str, Any]:
    """A REST error answer: ``{"error": {...}}``."""
    return {"error": error_data(exc)}


# ----------------------------------------------------------------- rebuilding


def error_class(code: str | None, status: int | None = None) -> type[E.HiveError]:
    """The class for an error ``code`` (then by HTTP ``status``), else ``HiveError``."""
    if code:
        cls = ERRORS_BY_CODE.get(code)
        if cls is not None:
            return cls
    if status is not None and status in CLASS_BY_STATUS:
        return CLASS_BY_STATUS[status]
    return E.HiveError


def parse_error(obj: Any) -> tuple[str, str, dict[str, Any]] | None:
    """``(code, message, details)`` from a REST error body ``{"error": {...}}`` or the
    ``data`` of a WebSocket ``error`` message; ``None`` when ``obj`` is neither."""
    err = obj.get("error", obj) if isinstance(obj, dict) else None
    if isinstance(err, dict) and isinstance(err.get("code"), str):
        details = err.get("details")
        return err["code"], str(err.get("message", "")), details if isinstance(details, dict) else {}
    return None


def rebuild(code: str | None, message: str, details: dict[str, Any] | None = None) -> E.HiveError:
    """The exception the hub meant: the class for ``code``, with the hub's exact
    code (even when the class is a fallback), message and details."""
    cls = error_class(code)
    exc = cls(message)
    exc.details = dict(details or {})
    exc.code = code or cls.code
    return exc
