"""Message envelopes and ready-made WebSocket frames.

Every WebSocket message, both ways and on both sockets, is one JSON object
``{"type", "data", "timestamp", "message_id"}``; an event is the stored
envelope itself (``hivehub.core.events.encode_event``), encoded once and sent
as the same bytes to every subscriber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core.errors import HiveError, InvalidInput
from .errors import MalformedJSON, error_data

_enc = msgspec.json.Encoder()


def message(typ: str, data: Any, message_id: str | None = None) -> bytes:
    """One envelope (a reply, an assignment, an error), stamped now."""
    return _enc.encode({"type": typ, "data": data, "timestamp": datetime.now(UTC), "message_id": message_id})


def error_message(exc: HiveError, message_id: str | None = None) -> bytes:
    """The ``error`` envelope for ``exc`` (``data`` as in a REST error body)."""
    return message("error", error_data(exc), message_id)


def parse_envelope(text: str | bytes) -> tuple[str, dict[str, Any], str | None]:
    """A WebSocket text frame -> (type, data, message_id), for /ws and /agents/ws alike.

    Raises MalformedJSON or InvalidInput; once the message_id is known it is set
    on the error (``exc.details["message_id"]``) so the error reply can echo it."""
    return envelope_of(decode_frame(text))


def decode_frame(text: str | bytes) -> Any:
    """A text frame's JSON (MalformedJSON when it is not JSON)."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from None


def batch_of(obj: Any, limit: int) -> list[Any]:
    """An agent's batch frame (a JSON array of envelopes, ``docs/agent-protocol.md``
    3.1) -> its elements, each checked later on its own by :func:`envelope_of`;
    InvalidInput for an empty batch or one over ``limit`` elements (none is run)."""
    if not obj or len(obj) > limit:
        raise InvalidInput(
            f"a batch frame holds 1 to {limit} messages, not {len(obj)}", limit=limit, size=len(obj)
        )
    return list(obj)


def envelope_of(obj: Any) -> tuple[str, dict[str, Any], str | None]:
    """A decoded message -> (type, data, message_id); InvalidInput as ``parse_envelope``."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise InvalidInput('a message is a JSON object with a string "type"')
    mid = obj.get("message_id")
    if mid is not None and not isinstance(mid, str):
        # refused, and echoed as the JSON value it was sent as, so the sender can still match the reply
        raise InvalidInput("message_id must be a string", message_id=mid)
    data = obj.get("data")
    if data is None:  # absent or null: no arguments (0, "", [] or false are mistakes)
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput('"data" must be an object', message_id=mid)
    return obj["type"], data, mid


def frame_header(fin: bool, opcode: int, n: int) -> bytes:
    """The header of an unmasked server frame (RFC 6455 5.2) with an ``n``-byte payload."""
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big")
    return bytes((b0, 127)) + n.to_bytes(8, "big")


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame, built once per event."""
    return frame_header(True, 0x1, len(payload)) + payload


def close_frame(code: int, reason: bytes) -> bytes:
    """A close frame (RFC 6455 5.5.1); the reason is cut to fit a control frame."""
    payload = code.to_bytes(2, "big") + reason[:123]
    return bytes((0x88, len(payload))) + payload
