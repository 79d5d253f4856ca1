"""The bus contract, one suite over every bus: in memory, a real Redis and a
real NATS JetStream (127.0.0.1:6379 and :4222; scripts/services.sh starts them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from hivehub.bus import open_bus
from hivehub.bus.base import EventBus, ForeignEntry
from hivehub.store import StoredEvent

NETWORK = {
    "redis": "redis://127.0.0.1:6379/0",
    "nats": "nats://127.0.0.1:4222",
}


async def drop(kind: str, b: EventBus) -> None:
    """Remove what a test bus left on the server (its stream)."""
    if kind == "redis":
        await b.client.delete(b.stream)  # type: ignore[attr-defined]
    elif kind == "nats":
        from nats.js.errors import NotFoundError

        try:
            await b.js.delete_stream(b.stream)  # type: ignore[attr-defined]
        except NotFoundError:
            pass


@pytest.fixture
async def opened() -> AsyncIterator[list[tuple[str, EventBus]]]:
    """Buses a test opened (``make``); each closed and its stream dropped after."""
    made: list[tuple[str, EventBus]] = []
    yield made
    for kind, b in reversed(made):
        if kind != "memory":
            await drop(kind, b)
        await b.close()


async def make(opened: list[tuple[str, EventBus]], kind: str, cluster_id: str, query: str = "") -> EventBus:
    b = open_bus("memory" if kind == "memory" else NETWORK[kind] + query)
    b.bind(cluster_id)
    await b.open()
    opened.append((kind, b))
    return b


@pytest.fixture(params=["memory", "redis", "nats"])
async def bus(request, opened) -> EventBus:
    return await make(opened, request.param, uuid.uuid4().hex)


def ev(seq: int) -> StoredEvent:
    return StoredEvent(seq, "task_created", f'{{"sequence":{seq}}}'.encode())


async def take(it: AsyncIterator[StoredEvent], n: int) -> list[StoredEvent]:
    out = []
    async for e in it:
        out.append(e)
        if len(out) == n:
            break
    return out


async def test_subscriber_gets_everything_after_in_order(bus: EventBus) -> None:
    await bus.publish([ev(1), ev(2), ev(3)])
    got = await asyncio.wait_for(take(bus.subscribe(1), 2), 5)
    assert got == [ev(2), ev(3)]


async def test_resume_after_any_sequence_of_a_long_stream(bus: EventBus) -> None:
    # gaps in the event sequences (a lost publish) and many entries: "after N"
    # starts exactly past N, wherever N falls
    seqs = [s for s in range(1, 120) if s % 7]
    await bus.publish([ev(s) for s in seqs])
    for after in (0, 1, 6, 7, 64, 117):
        want = [ev(s) for s in seqs if s > after][:3]
        assert await asyncio.wait_for(take(bus.subscribe(after), len(want)), 5) == want, after


async def test_live_delivery_to_a_waiting_subscriber(bus: EventBus) -> None:
    it = bus.subscribe(0)
    task = asyncio.create_task(take(it, 3))
    await asyncio.sleep(0)  # let it start waiting
    await bus.publish([ev(1)])
    await bus.publish([ev(2), ev(3)])
    assert await asyncio.wait_for(task, 5) == [ev(1), ev(2), ev(3)]


async def test_a_subscriber_past_the_end_waits_for_new_events(bus: EventBus) -> None:
    await bus.publish([ev(1), ev(2)])
    task = asyncio.create_task(take(bus.subscribe(2), 1))
    await asyncio.sleep(0.05)
    assert not task.done()
    await bus.publish([ev(3)])
    assert await asyncio.wait_for(task, 5) == [ev(3)]


async def test_a_subscription_stops_when_cancelled_at_any_moment(bus: EventBus) -> None:
    # a follower being promoted cancels its bus task and waits for it (HubService.promote)
    await bus.publish([ev(s) for s in range(1, 40)])

    async def follow() -> None:
        async for _ in bus.subscribe(20):
            pass

    for delay in (0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.05):
        task = asyncio.create_task(follow())
        await asyncio.sleep(delay)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=1)
        assert done, f"still running 1 s after a cancel {delay}s in"


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_clusters_bound_by_default_use_separate_streams(kind: str, opened) -> None:
    a = await make(opened, kind, uuid.uuid4().hex)
    b = await make(opened, kind, uuid.uuid4().hex)
    assert a.stream != b.stream  # type: ignore[attr-defined]
    await a.publish([ev(1), ev(2)])
    await b.publish([ev(1)])
    assert await asyncio.wait_for(take(b.subscribe(0), 1), 5) == [ev(1)]
    late = asyncio.create_task(take(b.subscribe(1), 1))
    await a.publish([ev(3)])
    await asyncio.sleep(0.2)
    assert not late.done()  # A's event never reaches B
    late.cancel()


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_an_entry_of_another_cluster_is_refused(kind: str, opened) -> None:
    # two deployments configured with one stream name: B's subscriber refuses A's
    # entries instead of yielding them, and counts them
    name = f"shared{uuid.uuid4().hex[:8]}"
    query = f"/0?stream={name}" if kind == "redis" else f"?stream={name}"
    a = await make(opened, kind, "cluster-a", query)
    b = await make(opened, kind, "cluster-b", query)
    await b.publish([ev(1)])
    await a.publish([ev(2)])
    got: list[StoredEvent] = []
    with pytest.raises(ForeignEntry) as err:
        async for e in b.subscribe(0):
            got.append(e)
    assert got == [ev(1)]
    assert err.value.expected == "cluster-b" and err.value.found == "cluster-a"
    assert b.foreign_entries == 1


@pytest.mark.parametrize("kind", ["redis", "nats"])
async def test_a_network_bus_must_be_bound_before_it_opens(kind: str) -> None:
    b = open_bus(NETWORK[kind])
    with pytest.raises(ValueError, match="postgresql"):
        await b.open()
