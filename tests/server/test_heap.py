"""hivehub.server.heap: freed heap pages go back to the OS."""

from __future__ import annotations

import asyncio
import gc

import pytest

from hivehub.server import heap


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not heap.available(), reason="malloc_trim is glibc's; this C library has none")
def test_trim_returns_freed_heap_pages_that_malloc_keeps() -> None:
    # 64 MiB in 16 KiB blocks (below glibc's mmap threshold, so they come from the
    # arena), every 64th kept alive: freeing the rest leaves holes malloc does not
    # give back by itself, because the live blocks pin the top of the heap.
    blocks = [bytearray(16384) for _ in range(4096)]
    keep = blocks[::64]
    del blocks
    gc.collect()
    before = _rss()
    released = heap.trim()
    after = _rss()
    assert released
    assert before - after > 32 * 2**20, (before, after)
    assert len(keep) == 64


@pytest.mark.asyncio
async def test_trim_every_does_nothing_when_switched_off() -> None:
    # interval 0 is the off switch: it returns at once instead of looping
    await heap.trim_every(0)


@pytest.mark.skipif(not heap.available(), reason="malloc_trim is glibc's; this C library has none")
async def test_the_hub_trims_its_heap_on_the_configured_interval(hub_factory) -> None:
    hub = await hub_factory(db="memory", heap_trim_interval=0.05)
    before = heap.runs
    for _ in range(100):  # at most 5 s
        if heap.runs >= before + 3:
            break
        await asyncio.sleep(0.05)
    assert heap.runs >= before + 3
    assert (await hub.get("/health")).status == 200


async def test_no_trimming_when_the_interval_is_zero(hub_factory) -> None:
    await hub_factory(db="memory", heap_trim_interval=0)
    before = heap.runs
    await asyncio.sleep(0.3)
    assert heap.runs == before
