"""TaskContext, Result and TaskFailure on their own."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hivehub.agent import Result, TaskCancelled, TaskContext, TaskFailure

from .fakehub import make_task


def collecting() -> tuple[list[tuple[float, str | None, str]], Any]:
    seen: list[tuple[float, str | None, str]] = []

    def on_progress(ctx: TaskContext, fraction: float, step: str | None) -> None:
        seen.append((fraction, step, threading.current_thread().name))

    return seen, on_progress


def test_fields_come_from_the_task() -> None:
    ctx = TaskContext(make_task("t9", type="text_analysis", input={"text": "hi"}, attempt=3))
    assert (ctx.task_id, ctx.type, ctx.attempt, ctx.input) == ("t9", "text_analysis", 3, {"text": "hi"})
    assert ctx.description == "test task t9"
    assert ctx.timeout_seconds == 30.0
    assert TaskContext(make_task("t9"), 5).attempt == 5


async def test_progress_is_clamped_and_stops_after_cancel() -> None:
    seen, on_progress = collecting()
    ctx = TaskContext(make_task("t1"), on_progress=on_progress)
    await ctx.progress(-1)
    await ctx.progress(0.5, "half")
    await ctx.progress(3, "over")
    with pytest.raises(ValueError):
        await ctx.progress(float("nan"))
    assert [(f, s) for f, s, _ in seen] == [(0.0, None), (0.5, "half"), (1.0, "over")]
    assert ctx.last_progress == 1.0
    ctx.cancel("manual")
    await ctx.progress(0.7)
    assert len(seen) == 3


async def test_cancellation_flags() -> None:
    ctx = TaskContext(make_task("t1"))
    event = ctx.cancel_event
    assert not ctx.cancelled and not event.is_set()
    ctx.check_cancelled()  # no-op
    ctx.cancel("timeout")
    assert ctx.cancelled and event.is_set() and ctx.cancel_reason == "timeout"
    with pytest.raises(TaskCancelled, match="timeout"):
        ctx.check_cancelled()
    assert ctx.wait_cancelled_sync(0) is True
    # an event created after the cancellation is already set
    late = TaskContext(make_task("t2"))
    late.cancel()
    assert late.cancel_event.is_set()


async def test_progress_sync_from_a_thread_runs_on_the_loop() -> None:
    seen, on_progress = collecting()
    ctx = TaskContext(make_task("t1"), on_progress=on_progress)
    loop_thread = threading.current_thread().name
    await asyncio.get_running_loop().run_in_executor(None, ctx.progress_sync, 0.25, "from thread")
    for _ in range(100):  # call_soon_threadsafe: runs within a few loop iterations
        if seen:
            break
        await asyncio.sleep(0)
    assert seen == [(0.25, "from thread", loop_thread)]


async def test_wait_cancelled_sync_wakes_a_thread() -> None:
    ctx = TaskContext(make_task("t1"))
    fut = asyncio.get_running_loop().run_in_executor(None, ctx.wait_cancelled_sync, 5)
    ctx.cancel("stop")
    assert await asyncio.wait_for(fut, 5) is True


def test_progress_sync_without_a_loop_calls_back_directly() -> None:
    seen, on_progress = collecting()
    ctx = TaskContext(make_task("t1"), on_progress=on_progress)
    ctx.progress_sync(0.3)
    assert [f for f, _, _ in seen] == [0.3]


def test_result_and_failure() -> None:
    assert Result({"a": 1}).quality is None
    assert Result(1, quality=1).quality == 1.0
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError):
            Result(1, quality=bad)
    f = TaskFailure("CODE", "msg")
    assert (f.code, f.message, f.details, f.retryable) == ("CODE", "msg", {}, True)
    assert str(f) == "msg"
    assert TaskFailure("C", "m", {"x": 1}, retryable=False).details == {"x": 1}
