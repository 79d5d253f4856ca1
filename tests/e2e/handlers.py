"""Task handlers for end-to-end tests, loaded by real ``hive agent`` processes
(``--handler tests.e2e.handlers:NAME``). Synchronisation with the test goes through
files named in the task input, never through fixed sleeps."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from hivehub.agent import Result, TaskContext, TaskFailure


async def echo(ctx: TaskContext) -> Any:
    await ctx.progress(0.5, "halfway")
    return {"echo": ctx.input, "agent": os.environ.get("HIVE_TEST_AGENT", "?"), "attempt": ctx.attempt}


async def quality(ctx: TaskContext) -> Any:
    return Result({"ok": True}, quality=float(ctx.input.get("quality", 1.0)))


async def flaky(ctx: TaskContext) -> Any:
    """Fails (retryable) on agents started with HIVE_TEST_FAIL=1, succeeds elsewhere."""
    if os.environ.get("HIVE_TEST_FAIL") == "1":
        raise TaskFailure("FLAKY", "this agent always fails", {"agent": os.environ.get("HIVE_TEST_AGENT")})
    return {"ok": True, "agent": os.environ.get("HIVE_TEST_AGENT")}


async def fatal(ctx: TaskContext) -> Any:
    raise TaskFailure("BAD_INPUT", "input cannot be processed", {"input": ctx.input}, retryable=False)


async def gate(ctx: TaskContext) -> Any:
    """Reports progress, then waits until the file ``input.release`` exists (or cancellation)."""
    release = Path(ctx.input["release"])
    started = ctx.input.get("started")
    if started:
        Path(started).write_text(os.environ.get("HIVE_TEST_AGENT", "?"))
    marker = ctx.input.get("cancelled_marker")
    try:
        await ctx.progress(0.25, "waiting for release")
        while not release.exists():
            if ctx.cancelled:
                raise asyncio.CancelledError
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        # the SDK cancels an async handler's asyncio task when the hub says stop
        if marker:
            Path(marker).write_text("cancelled")
        raise
    await ctx.progress(0.75, "released")
    return {"released": True, "agent": os.environ.get("HIVE_TEST_AGENT")}


async def huge_error(ctx: TaskContext) -> Any:
    """Raises an exception whose message is 2 MB (over the hub's frame limit)."""
    raise RuntimeError("E" * (2 * 1024 * 1024))


async def counted(ctx: TaskContext) -> Any:
    """Records every run as a file ``<input.runs>/<task id>.<agent>.<n>`` (so a test
    counts how often each task ran, and where), then waits until ``input.release``
    exists, if given."""
    runs = Path(ctx.input["runs"])
    agent = os.environ.get("HIVE_TEST_AGENT", "?")
    n = 0
    while True:  # a fresh name per run
        try:
            (runs / f"{ctx.task_id}.{agent}.{n}").open("x").close()
            break
        except FileExistsError:
            n += 1
    release = ctx.input.get("release")
    while release and not Path(release).exists():
        await asyncio.sleep(0.02)
    return {"agent": agent}
