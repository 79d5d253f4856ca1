"""hivehub.agent.execution: a handler's run -> the report that says how it ended."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from hivehub.agent.context import Result, TaskCancelled, TaskContext, TaskFailure
from hivehub.agent.execution import Execution, failure, is_async_callable, outcome_of, run_handler
from hivehub.core.commands import ERROR_MESSAGE_MAX


async def _run_sync(fn: Any, ctx: TaskContext) -> Any:
    return fn(ctx)


async def _run(fn: Any, ctx: TaskContext | None = None, limit: int | None = None) -> Any:
    return await run_handler(fn, ctx or TaskContext({"id": "t1"}, 1), _run_sync, limit, "a1")


def test_a_new_execution_is_queued_for_its_attempt() -> None:
    ctx = TaskContext({"id": "t1"}, 2)
    e = Execution({"id": "t1", "type": "x"}, 2, ctx)
    assert (e.task_id, e.attempt, e.state, e.aio) == ("t1", 2, "queued", None)


def test_async_callables_are_recognised_through_partials() -> None:
    async def coro(ctx: Any, x: int) -> None: ...

    def plain(ctx: Any) -> None: ...

    class Callable:
        async def __call__(self, ctx: Any) -> None: ...

    assert is_async_callable(functools.partial(coro, x=1))
    assert is_async_callable(Callable())
    assert not is_async_callable(plain)


def test_a_returned_value_completes_with_its_quality() -> None:
    assert outcome_of({"rows": 1}, None) == ("task_completed", {"result": {"rows": 1}})
    assert outcome_of(Result([1], quality=0.5), None) == ("task_completed", {"result": [1], "quality": 0.5})


def test_a_result_that_cannot_be_sent_fails_for_good() -> None:
    kind, data = outcome_of(object(), None)
    assert kind == "task_failed" and data["error"]["code"] == "INVALID_RESULT" and data["retryable"] is False
    kind, data = outcome_of("x" * 100, 50)
    assert data["error"]["code"] == "RESULT_TOO_LARGE"
    assert data["error"]["details"] == {"size": 102, "limit": 50}


def test_a_failure_is_bounded_to_the_hubs_limits() -> None:
    kind, data = failure("E", "m" * (ERROR_MESSAGE_MAX + 10), {}, retryable=0)  # type: ignore[arg-type]
    assert kind == "task_failed" and data["retryable"] is False
    assert len(data["error"]["message"]) == ERROR_MESSAGE_MAX and "truncated" in data["error"]["message"]


async def test_handlers_async_and_plain_run_to_their_outcome() -> None:
    async def ok(ctx: TaskContext) -> int:
        return 1

    assert await _run(ok) == ("task_completed", {"result": 1})
    assert await _run(lambda ctx: 2) == ("task_completed", {"result": 2})


async def test_raising_maps_to_failures() -> None:
    def controlled(ctx: TaskContext) -> None:
        raise TaskFailure("BAD_INPUT", "no", {"field": "x"}, retryable=False)

    def crash(ctx: TaskContext) -> None:
        raise ValueError("boom")

    kind, data = await _run(controlled)
    assert data["error"] == {"code": "BAD_INPUT", "message": "no", "details": {"field": "x"}}
    assert data["retryable"] is False
    kind, data = await _run(crash)
    assert data["error"]["code"] == "HANDLER_ERROR" and data["error"]["message"] == "boom"
    assert data["error"]["details"]["exception"] == "builtins.ValueError"
    assert "ValueError: boom" in data["error"]["details"]["traceback"] and data["retryable"] is True


async def test_a_cancelled_task_reports_nothing() -> None:
    ctx = TaskContext({"id": "t1"}, 1)

    def stop(c: TaskContext) -> None:
        c.cancel()
        c.check_cancelled()

    assert await _run(stop, ctx) is None

    # a handler that cancels itself without the hub having cancelled it: a retryable failure
    def self_cancel(c: TaskContext) -> None:
        raise TaskCancelled("gave up")

    kind, data = await _run(self_cancel)
    assert data["error"]["code"] == "CANCELLED" and data["error"]["message"] == "gave up"


async def test_only_asyncio_cancellation_propagates() -> None:
    async def forever(ctx: TaskContext) -> None:
        await asyncio.Event().wait()

    t = asyncio.ensure_future(_run(forever))
    await asyncio.sleep(0)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    assert t.cancelled()
