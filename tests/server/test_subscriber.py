"""hivehub.server.subscriber: one /ws subscriber's filters, its bounded queue and
the fast path straight to the transport."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hivehub.server.subscriber import WRITE_HIGH, Subscriber


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


async def test_with_compression_every_event_goes_through_the_sender() -> None:
    t = Transport()
    sub = Subscriber(web.WebSocketResponse(compress=True), 10, "127.0.0.1", t)
    assert sub.raw_ok is None
    assert not sub.push(1, b"one", b"frame-1") and list(sub.queue) == [(1, b"one")]
