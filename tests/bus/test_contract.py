"""The bus contract on the in-memory bus and on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from hivehub.bus import open_bus
from hivehub.bus.base import EventBus
from hivehub.store import StoredEvent


@pytest.fixture(params=["memory", "redis"])
async def bus(request) -> AsyncIterator[EventBus]:
    b = open_bus(
        "memory" if request.param == "memory" else f"redis://127.0.0.1:6379/0?stream=test:{uuid.uuid4().hex}"
    )
    await b.open()
    try:
        yield b
    finally:
        if request.param == "redis":
            await b.client.delete(b.stream)  # type: ignore[attr-defined]
        await b.close()


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


async def test_live_delivery_to_a_waiting_subscriber(bus: EventBus) -> None:
    it = bus.subscribe(0)
    task = asyncio.create_task(take(it, 3))
    await asyncio.sleep(0)  # let it start waiting
    await bus.publish([ev(1)])
    await bus.publish([ev(2), ev(3)])
    assert await asyncio.wait_for(task, 5) == [ev(1), ev(2), ev(3)]
