"""hivehub.server.heap: freed heap pages go back to the OS."""

from __future__ import annotations

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
