"""The report outbox: every agent -> hub report kept, in order, until the hub
answers it (``ack``, or an ``error``), and the bound on a failure's ``error``.

Both transports send from the same :class:`Outbox`: the push agent over its
WebSocket (re-sending on each new connection), the pull agent as HTTP posts.
What an answer means (stale, transient, refused) is decided in
:meth:`hivehub.agent.base.BaseAgent._rejected`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import msgspec

from hivehub.core.commands import ERROR_CODE_MAX, ERROR_MESSAGE_MAX

__all__ = [
    "MAX_REPORT_RETRIES",
    "REPORT_KINDS",
    "TERMINAL_KINDS",
    "TRANSIENT_CODES",
    "Outbox",
    "Report",
    "bounded_error",
]

#: report kinds (agent -> hub messages that get an ack)
REPORT_KINDS = frozenset(
    {"task_started", "task_progress", "task_completed", "task_failed", "task_released", "input_request"}
)
TERMINAL_KINDS = frozenset({"task_completed", "task_failed", "task_released"})
#: hub error codes after which a report is sent again later (nothing was accepted)
TRANSIENT_CODES = frozenset({"store_unavailable", "rate_limited", "internal_error", "hive_error"})
MAX_REPORT_RETRIES = 8
#: characters of streamed output per progress report (the hub's ``OUTPUT_DELTA_MAX``)
OUTPUT_DELTA_MAX = 65_536


#: the SDK's bound on a failure's ``details`` (JSON bytes) and on each string in it
MAX_ERROR_DETAILS_BYTES = 16 * 1024
MAX_DETAIL_STRING = 4000


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"... [truncated: {len(text)} characters]"
    return text[: max(0, limit - len(marker))] + marker


def bounded_error(code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """A failure's ``error`` within the hub's documented limits (``ERROR_CODE_MAX`` and
    ``ERROR_MESSAGE_MAX`` characters) and the SDK's ``MAX_ERROR_DETAILS_BYTES``: long
    text is cut with a marker saying how long it was, never dropped."""
    code = _clip(str(code) or "AGENT_ERROR", ERROR_CODE_MAX)
    message = _clip(str(message), ERROR_MESSAGE_MAX)
    try:
        size = len(msgspec.json.encode(details))
    except (TypeError, msgspec.EncodeError):
        details, size = {"unserializable_details": True}, 0
    if size > MAX_ERROR_DETAILS_BYTES:
        details = {k: _clip(v, MAX_DETAIL_STRING) if isinstance(v, str) else v for k, v in details.items()}
        size = len(msgspec.json.encode(details))
        if size > MAX_ERROR_DETAILS_BYTES:
            details = {"truncated": True, "original_bytes": size}
    return {"code": code, "message": message, "details": details}


class Report:
    """One agent -> hub report waiting for its ack."""

    __slots__ = ("attempt", "conn", "data", "kind", "message_id", "not_before", "task_id", "tries")

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        self.kind = kind
        self.data = data
        self.task_id: str = data["task_id"]
        self.attempt: int = data["attempt"]
        self.message_id = uuid.uuid4().hex
        #: the connection generation it was last sent on (None: not sent on the current one)
        self.conn: int | None = None
        #: monotonic time before which it must not be (re)sent
        self.not_before = 0.0
        self.tries = 0

    def envelope(self) -> dict[str, Any]:
        return {"type": self.kind, "data": self.data, "message_id": self.message_id}

    def __repr__(self) -> str:
        return f"<Report {self.kind} {self.task_id}#{self.attempt} {self.message_id[:8]}>"


class Outbox:
    """Reports in the order they were made, kept until the hub answered them.

    Progress reports are coalesced: a new one replaces any unanswered older one of
    the same attempt, so a long disconnect does not pile them up.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[str, Report] = OrderedDict()
        self.changed = asyncio.Event()
        self.empty = asyncio.Event()
        self.empty.set()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Report]:
        """A snapshot, oldest first: safe to iterate while reports come and go."""
        return iter(list(self._items.values()))

    def add(self, kind: str, data: dict[str, Any]) -> Report:
        if kind == "task_progress":
            for r in list(self._items.values()):
                if r.kind == kind and r.task_id == data["task_id"] and r.attempt == data["attempt"]:
                    old = r.data.get("output_delta")
                    if old:
                        # streamed text is never dropped: merged into the new report only
                        # while the old one was not sent (else the hub may have it already)
                        new = data.get("output_delta") or ""
                        if r.conn is not None or len(old) + len(new) > OUTPUT_DELTA_MAX:
                            continue
                        data = {**data, "output_delta": old + new}
                    del self._items[r.message_id]
        r = Report(kind, data)
        self._items[r.message_id] = r
        self.empty.clear()
        self.changed.set()
        return r

    def get(self, message_id: str | None) -> Report | None:
        return self._items.get(message_id) if message_id else None

    def remove(self, message_id: str) -> Report | None:
        r = self._items.pop(message_id, None)
        if not self._items:
            self.empty.set()
        return r

    def drop_attempt(self, task_id: str, attempt: int) -> None:
        for r in list(self._items.values()):
            if r.task_id == task_id and r.attempt == attempt:
                self.remove(r.message_id)

    def held(self) -> dict[str, int]:
        """Attempts with an unanswered report: the hub must keep them for us."""
        return {r.task_id: r.attempt for r in self._items.values()}
