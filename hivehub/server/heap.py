"""Give freed heap memory back to the operating system, every few seconds.

Why: the per-client byte budget (``--client-buffer``) bounds what the hub holds for
any one client, but a handful of clients that do not read can each hold their full
budget at the same moment (the soak measured 20 to 52 MiB of heap in use, swinging
as hostile clients fill their budgets and are cut off). glibc keeps the freed pages
in its arenas, so the process's resident size follows the highest such moment seen
so far and creeps up as rarer coincidences happen, although the memory in use stays
bounded. ``malloc_trim(0)`` hands free pages back (measured: 0.2 to 9 ms per call
during the soak, every 10 s), so RSS follows what is in use.

Only glibc has ``malloc_trim``; elsewhere (musl, macOS) :func:`trim` does nothing
and reports so. The call runs on the event loop on purpose: it holds the malloc
locks while it walks the arenas, so from a thread it would stall the loop's own
allocations anyway.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger("hivehub.heap")


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_TRIM = _load_trim()
#: trims done by :func:`trim_every` in this process (a test reads it)
runs = 0


def available() -> bool:
    """True where the C library can trim (glibc)."""
    return _TRIM is not None


def trim() -> bool:
    """Release free heap pages to the OS. Returns True if any memory was released."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))


async def trim_every(interval: float) -> None:
    """Trim every ``interval`` seconds until cancelled (nothing to do without glibc)."""
    if _TRIM is None or interval <= 0:
        return
    global runs
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        t0 = loop.time()
        trim()
        runs += 1
        took = loop.time() - t0
        if took > 0.05:
            log.info("malloc_trim took %.0f ms", took * 1000)
