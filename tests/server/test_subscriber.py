"""hivehub.server.subscriber: one /ws subscriber's filters, its bounded queue and
the fast path straight to the transport."""

from __future__ import annotations

import zlib
from typing import Any

from aiohttp import web

from hivehub.protocol.frames import text_frame
from hivehub.server.subscriber import WRITE_HIGH, Subscriber
from hivehub.server.websocket import DEFLATE_MIN, SharedDeflate


class Transport:
    """An asyncio transport's write side, as the subscriber uses it."""

    def __init__(self, backed_up: int = 0) -> None:
        self.written: list[bytes] = []
        self.backed_up = backed_up
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backed_up

    def is_closing(self) -> bool:
        return self.closing


def subscriber(buffer: int = 10, budget: int = 1 << 20, transport: Any = None) -> Subscriber:
    sub = Subscriber(web.WebSocketResponse(compress=False), buffer, "127.0.0.1", transport, budget)
    sub.raw = sub.raw_ok  # as the sender does once nothing is queued any more
    return sub


async def test_filters_match_type_agent_and_task() -> None:
    sub = subscriber()
    assert sub.matches("task_created", frozenset(), frozenset())
    sub.types, sub.task_id = frozenset({"task_created"}), "t1"
    assert sub.matches("task_created", frozenset(), frozenset({"t1"}))
    assert not sub.matches("task_created", frozenset(), frozenset({"t2"}))
    assert not sub.matches("task_failed", frozenset(), frozenset({"t1"}))
    assert sub.filters() == {"types": ["task_created"], "agent_id": None, "task_id": "t1"}


async def test_a_subscriber_that_keeps_up_gets_the_shared_frame_written_directly() -> None:
    t = Transport()
    sub = subscriber(transport=t)
    assert sub.push(1, b"{...}", b"frame-1")
    assert t.written == [b"frame-1"] and sub.last_seq == 1 and not sub.queue
    assert sub.write_frames([b"a", b"b"]) == 2 and t.written[-1] == b"ab"


async def test_a_backed_up_socket_queues_in_order_for_the_sender() -> None:
    t = Transport(backed_up=WRITE_HIGH + 1)
    sub = subscriber(transport=t)
    assert not sub.push(1, b"one", b"frame-1")
    assert not sub.push(2, b"two", b"frame-2")
    assert list(sub.queue) == [(1, b"one"), (2, b"two")] and sub.wake.is_set() and not t.written
    assert sub.backlog() == 6 + WRITE_HIGH + 1


async def test_more_than_its_buffer_behind_it_is_cut_once() -> None:
    cuts: list[Subscriber] = []
    sub = subscriber(buffer=2)
    sub.on_cut = cuts.append
    for seq in (1, 2, 3):
        sub.enqueue(seq, b"x")
    assert cuts == [sub] and sub.closing and not sub.queue and sub.queued_bytes == 0
    sub.cut()
    assert not sub.push(4, b"x") and cuts == [sub]


async def test_over_a_quarter_of_its_budget_the_reader_waits_and_over_it_is_cut() -> None:
    sub = subscriber(budget=100)
    sub.enqueue(1, b"x" * 30)
    assert not sub.idle.is_set() and not sub.closing
    sub.enqueue(2, b"x" * 80)
    assert sub.closing and sub.idle.is_set()  # the waiting reader is released


def inflate(frame: bytes) -> bytes:
    """The payload of one compressed server frame, inflated by a fresh decompressor
    (as a peer that keeps no context would)."""
    assert frame[0] == 0xC1, f"not a final compressed text frame: {frame[0]:#x}"
    n, at = frame[1], 2
    if n == 126:
        n, at = int.from_bytes(frame[2:4], "big"), 4
    assert len(frame) == at + n
    return zlib.decompressobj(-15).decompress(frame[at:] + b"\x00\x00\xff\xff")


async def test_a_compressed_subscriber_is_served_ready_made_frames_like_a_plain_one() -> None:
    t = Transport()
    deflater = SharedDeflate()
    sub = Subscriber(web.WebSocketResponse(compress=15), 10, "127.0.0.1", t, 1 << 20, deflater)
    assert sub.raw_ok is t and sub.deflate_max > 1 << 20
    sub.raw = sub.raw_ok
    small, big = b'{"n": 1}', b'{"text": "%s"}' % (b"compressible " * 100)
    assert sub.frame(small) == text_frame(small)  # under DEFLATE_MIN: RSV1 clear
    assert len(small) < DEFLATE_MIN <= len(big)
    packed = sub.frame(big)
    assert inflate(packed) == big and len(packed) < len(big) // 4 and deflater.messages == 1
    assert sub.push(1, big, packed) and t.written == [packed]
    t.backed_up = WRITE_HIGH + 1  # backed up: the queue holds the frame itself, not the body
    assert not sub.push(2, big, packed) and list(sub.queue) == [(2, packed)]
    sub.queue_event(3, small, None)  # no frame handed in: built for it
    assert sub.queue[-1] == (3, text_frame(small)) and deflater.messages == 1


async def test_each_compressed_message_stands_alone() -> None:
    """No context takeover: a message inflates without the ones before it, and the
    same message compresses to the same bytes whatever came before."""
    deflater = SharedDeflate()
    body = b'{"text": "%s"}' % (b"the same words again " * 40)
    first = deflater.frame(body)
    deflater.frame(b'{"other": "%s"}' % (b"the same words again " * 40))
    again = deflater.frame(body)
    assert first == again and inflate(again) == body


async def test_a_small_server_window_gets_only_messages_that_fit_it_compressed() -> None:
    sub = Subscriber(
        web.WebSocketResponse(compress=10), 10, "127.0.0.1", Transport(), 1 << 20, SharedDeflate()
    )
    fits, longer = b"a" * 1024, b"a" * 1025
    assert sub.deflate_max == 1024
    assert inflate(sub.frame(fits)) == fits and sub.frame(longer) == text_frame(longer)


async def test_with_compression_and_no_shared_compressor_every_event_goes_through_the_sender() -> None:
    t = Transport()
    sub = Subscriber(web.WebSocketResponse(compress=True), 10, "127.0.0.1", t)
    assert sub.raw_ok is None
    assert not sub.push(1, b"one", b"frame-1") and list(sub.queue) == [(1, b"one")]
