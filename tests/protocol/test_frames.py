"""Envelopes and ready-made frames."""

from __future__ import annotations

import msgspec
import pytest

from hivehub.core.errors import InvalidInput, TaskNotFound
from hivehub.protocol.errors import CLOSE_SLOW, MalformedJSON
from hivehub.protocol.frames import (
    close_frame,
    error_message,
    frame_header,
    message,
    parse_envelope,
    text_frame,
)


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (0, b"\x81\x00"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (65536, b"\x81\x7f" + (65536).to_bytes(8, "big")),
    ],
)
def test_text_frame_lengths(n: int, header: bytes) -> None:
    assert text_frame(b"x" * n) == header + b"x" * n


def test_continuation_and_close_frames() -> None:
    assert frame_header(False, 0x0, 3) == b"\x00\x03"
    f = close_frame(CLOSE_SLOW, b"slow consumer: resume with since=7")
    assert f[0] == 0x88 and f[1] == len(f) - 2 and int.from_bytes(f[2:4], "big") == 1013
    assert len(close_frame(1008, b"r" * 500)) == 2 + 125  # a control frame's payload limit


def test_envelope_field_order_and_error_shape() -> None:
    m = msgspec.json.decode(message("pong", {}, "m1"))
    assert list(m) == ["type", "data", "timestamp", "message_id"]
    e = msgspec.json.decode(error_message(TaskNotFound("no task t", task_id="t"), "m2"))
    assert e["type"] == "error" and e["message_id"] == "m2"
    assert e["data"] == {"code": "task_not_found", "message": "no task t", "details": {"task_id": "t"}}


def test_parse_envelope() -> None:
    assert parse_envelope(b'{"type": "ping"}') == ("ping", {}, None)
    assert parse_envelope('{"type": "x", "data": null, "message_id": "7"}') == ("x", {}, "7")
    with pytest.raises(MalformedJSON):
        parse_envelope(b"{")
    with pytest.raises(InvalidInput):
        parse_envelope(b'{"data": {}}')
    with pytest.raises(InvalidInput) as info:
        parse_envelope(b'{"type": "x", "message_id": 5}')
    assert info.value.details == {"message_id": 5}  # echoed as sent
    with pytest.raises(InvalidInput):
        parse_envelope(b'{"type": "x", "data": []}')
