"""The execution of one attempt: run its handler (``async def`` on the loop, plain
``def`` in a thread) and turn what it returned or raised into the report that
ends the attempt. No transport and no bookkeeping: :class:`~hivehub.agent.base.BaseAgent`
queues the executions, holds the slots and sends the outcome.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .context import Result, TaskCancelled, TaskContext, TaskFailure
from .llm.coalesce import OutputCoalescer
from .reports import bounded_error

__all__ = ["Execution", "Handler", "Outcome", "failure", "outcome_of", "run_handler"]

log = logging.getLogger("hivehub.agent")

Handler = Callable[[TaskContext], Any | Awaitable[Any]]
#: how an attempt ended: the report that says so (kind, data without task_id and
#: attempt), or None: report nothing (it was cancelled or released meanwhile)
Outcome = tuple[str, dict[str, Any]] | None


class Execution:
    """One attempt held by the agent, from its assignment to its outcome."""

    __slots__ = (
        "aio",
        "attempt",
        "ctx",
        "coalescer",
        "last_progress_at",
        "output_timer",
        "pending_progress",
        "progress_timer",
        "state",
        "task",
        "task_id",
    )

    def __init__(self, task: dict[str, Any], attempt: int, ctx: TaskContext) -> None:
        self.task = task
        self.task_id: str = task["id"]
        self.attempt = attempt
        self.ctx = ctx
        #: queued (waiting for a slot) | running | held (not started because stopping) | done
        self.state = "queued"
        self.aio: asyncio.Task[None] | None = None
        self.last_progress_at = -1e18
        self.pending_progress: tuple[float, str | None] | None = None
        self.progress_timer: asyncio.TimerHandle | None = None
        #: streamed model output waiting for its report (``output_delta``)
        self.coalescer = OutputCoalescer()
        self.output_timer: asyncio.TimerHandle | None = None


def is_async_callable(fn: Any) -> bool:
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def traceback_tail(exc: BaseException, lines: int = 20) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def failure(code: str, message: str, details: dict[str, Any], retryable: bool) -> tuple[str, dict[str, Any]]:
    """A ``task_failed`` outcome. Bounded before sending: the hub refuses a code or
    message over its limits, and a frame over its frame limit closes the connection
    (the report would be re-sent after every reconnect, forever, while the task
    stays running)."""
    return "task_failed", {"error": bounded_error(code, message, details), "retryable": bool(retryable)}


async def run_handler(
    fn: Handler,
    ctx: TaskContext,
    run_sync: Callable[[Handler, TaskContext], Awaitable[Any]],
    result_limit: int | None,
    agent_name: str,
) -> Outcome:
    """Run ``fn(ctx)`` to its outcome; a plain ``def`` goes through ``run_sync``
    (the agent's thread pool). Raises only ``asyncio.CancelledError``."""
    try:
        if is_async_callable(fn):
            value = await fn(ctx)
        else:
            value = await run_sync(fn, ctx)
            if inspect.isawaitable(value):
                value = await value
    except TaskCancelled as exc:
        if ctx.cancelled:
            return None
        return failure("CANCELLED", str(exc) or "the handler cancelled the task", {}, True)
    except TaskFailure as f:
        kind, data = failure(f.code, f.message, f.details, f.retryable)
        retry_after = getattr(f, "retry_after", None)
        if retry_after is not None:
            data["retry_after"] = retry_after
        return kind, data
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if ctx.cancelled:
            return None
        log.warning("%s: handler for %s#%d raised %r", agent_name, ctx.task_id, ctx.attempt, exc)
        return failure(
            "HANDLER_ERROR",
            str(exc) or type(exc).__name__,
            {
                "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "traceback": traceback_tail(exc),
            },
            True,
        )
    if ctx.cancelled:
        return None
    return outcome_of(value, result_limit)


def outcome_of(value: Any, result_limit: int | None) -> tuple[str, dict[str, Any]]:
    """What a handler returned -> ``task_completed`` (with ``quality`` for a
    :class:`Result`), or ``task_failed`` when it cannot be sent: not JSON, or over
    ``result_limit`` bytes of JSON."""
    quality = None
    if isinstance(value, Result):
        quality = value.quality
        value = value.value
    try:
        result = msgspec.to_builtins(value)
        size = len(msgspec.json.encode(result))
    except (TypeError, msgspec.EncodeError) as exc:
        return failure(
            "INVALID_RESULT",
            f"the handler returned a value that is not JSON-serializable: {exc}",
            {"result_type": f"{type(value).__module__}.{type(value).__qualname__}"},
            False,
        )
    if result_limit is not None and size > result_limit:
        # The hub would refuse the frame (a WebSocket closes on an oversized frame, and
        # re-sending it after the reconnect would fail the same way, forever).
        return failure(
            "RESULT_TOO_LARGE",
            f"the result is {size} bytes of JSON; the limit is {result_limit}",
            {"size": size, "limit": result_limit},
            False,
        )
    data: dict[str, Any] = {"result": result}
    if quality is not None:
        data["quality"] = quality
    return "task_completed", data
