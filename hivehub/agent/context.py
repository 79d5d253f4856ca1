"""What a task handler sees: :class:`TaskContext`, plus the values and exceptions
a handler uses to say how the task ended (:class:`Result`, :class:`TaskFailure`,
:class:`TaskCancelled`)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["InputTimedOut", "Result", "TaskCancelled", "TaskContext", "TaskFailure"]

_NO_DEFAULT: Any = object()

#: ``on_progress(ctx, fraction, step)``; always called on the event loop thread
ProgressCallback = Callable[["TaskContext", float, "str | None"], None]
#: ``on_output(ctx, delta, usage)``: streamed model text and the attempt's usage so far
OutputCallback = Callable[["TaskContext", str, "dict[str, Any] | None"], None]


class Result:
    """A handler's return value with a self-assessed quality (0..1).

    ``return Result({"rows": 10}, quality=0.9)`` reports ``result={"rows": 10}``
    and ``quality=0.9``; returning a bare value reports no quality.
    """

    __slots__ = ("quality", "value")

    def __init__(self, value: Any, quality: float | None = None) -> None:
        if quality is not None:
            quality = float(quality)
            if not 0.0 <= quality <= 1.0 or math.isnan(quality):
                raise ValueError(f"quality must be within 0..1, got {quality!r}")
        self.value = value
        self.quality = quality

    def __repr__(self) -> str:
        return f"Result({self.value!r}, quality={self.quality!r})"


class TaskFailure(Exception):  # noqa: N818 - part of the public API, named after the report
    """Raise from a handler for a controlled failure (reported as ``task_failed``).

    ``retryable=False`` tells the hub that trying again (on any agent) is pointless,
    e.g. for invalid input.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"TaskFailure({self.code!r}, {self.message!r}, retryable={self.retryable})"


class InputTimedOut(TaskFailure):
    """:meth:`TaskContext.ask` got no answer in time and has no ``default``
    (uncaught, the attempt fails with ``INPUT_TIMEOUT``, not retryable)."""

    def __init__(self, question: str, timeout: float) -> None:
        super().__init__(
            "INPUT_TIMEOUT",
            f"no answer within {timeout:g}s to: {question[:200]}",
            {"timeout_seconds": timeout},
            retryable=False,
        )


class TaskCancelled(Exception):  # noqa: N818 - mirrors asyncio.CancelledError
    """Raised by :meth:`TaskContext.check_cancelled` once the task was cancelled.

    A handler may let it propagate: the agent then reports nothing for the attempt
    (the hub already knows it was cancelled, or the agent released it).
    """


class TaskContext:
    """One attempt of one task, as handed to a handler.

    Attributes:
        task: the task as the hub sent it (a dict shaped like ``hivehub.core.model.Task``)
        task_id, type, attempt, input, description, priority, timeout_seconds: shortcuts into it
        cancel_event: an :class:`asyncio.Event` set when the task is cancelled (use it from
            ``async`` handlers; from a thread use :attr:`cancelled` / :meth:`wait_cancelled_sync`)
        log: a logger adapter that prefixes records with the task id
    """

    def __init__(
        self,
        task: dict[str, Any],
        attempt: int | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        agent: Any = None,
        on_output: OutputCallback | None = None,
    ) -> None:
        self.task: dict[str, Any] = task
        self.task_id: str = str(task.get("id", ""))
        self.type: str = str(task.get("type", ""))
        self.attempt: int = int(attempt if attempt is not None else task.get("attempt") or 1)
        self.input: Any = task.get("input")
        self.description: str = str(task.get("description") or "")
        self.priority: int | None = task.get("priority")
        self.timeout_seconds: float | None = task.get("timeout_seconds")
        #: the agent running the task (``None`` when the context was built by hand)
        self.agent = agent
        self.cancel_reason: str | None = None
        self.last_progress: float = 0.0
        self.last_step: str | None = None
        self._on_progress = on_progress
        self._on_output = on_output
        #: the attempt's model usage so far ``{model, prompt_tokens, completion_tokens}``
        #: (summed over its ``llm`` calls); reported with the outcome
        self.usage: dict[str, Any] | None = None
        #: the text streamed so far (what the ``output_delta`` reports carry)
        self.output = ""
        self._stream_usage: dict[str, Any] | None = None
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        self._cancel_event: asyncio.Event | None = None
        self._cancelled = threading.Event()
        self._finished = False
        self.log = logging.LoggerAdapter(
            logging.getLogger("hivehub.agent.task"), {"task_id": self.task_id, "attempt": self.attempt}
        )

    # ------------------------------------------------------------ cancellation

    @property
    def cancelled(self) -> bool:
        """True once the hub cancelled the task or the agent is releasing it (thread-safe)."""
        return self._cancelled.is_set()

    @property
    def cancel_event(self) -> asyncio.Event:
        """Set when the task is cancelled. Only for use on the event loop thread."""
        if self._cancel_event is None:
            self._cancel_event = asyncio.Event()
            if self._cancelled.is_set():
                self._cancel_event.set()
        return self._cancel_event

    def check_cancelled(self) -> None:
        """Raise :class:`TaskCancelled` if the task was cancelled (safe from any thread)."""
        if self._cancelled.is_set():
            raise TaskCancelled(self.cancel_reason or "cancelled")

    def wait_cancelled_sync(self, timeout: float | None = None) -> bool:
        """Block the calling thread until cancelled or ``timeout``; True when cancelled.

        Meant for plain (threaded) handlers that wait on something external.
        """
        return self._cancelled.wait(timeout)

    def cancel(self, reason: str = "cancelled") -> None:
        """Mark the context cancelled. The agent calls this; call it on the loop thread."""
        if self._cancelled.is_set():
            return
        self.cancel_reason = reason
        self._cancelled.set()
        if self._cancel_event is not None:
            self._cancel_event.set()

    # ------------------------------------------------------------ progress

    async def progress(self, fraction: float, step: str | None = None) -> None:
        """Report progress (``fraction`` is clamped to 0..1). Ignored once cancelled or finished."""
        self._progress(fraction, step)

    def progress_sync(self, fraction: float, step: str | None = None) -> None:
        """Thread-safe :meth:`progress` for plain ``def`` handlers running in a worker thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._progress(fraction, step)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._progress(fraction, step)
        else:
            loop.call_soon_threadsafe(self._progress, fraction, step)

    def _progress(self, fraction: float, step: str | None) -> None:
        if self._finished or self._cancelled.is_set():
            return
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            raise ValueError(f"progress must be a number, got {fraction!r}") from None
        if math.isnan(f):
            raise ValueError("progress must not be NaN")
        f = min(1.0, max(0.0, f))
        self.last_progress = f
        self.last_step = step
        if self._on_progress is not None:
            self._on_progress(self, f, step)

    # ------------------------------------------------------------ model calls

    async def llm(self, prompt: str | None = None, **request: Any) -> Any:
        """Stream one model call with the agent's :class:`~hivehub.agent.llm.LLMClient`
        (``AgentOptions.llm``): ``await ctx.llm(prompt="...", system=..., max_tokens=...)``
        or ``ctx.llm(messages=[...])``. Returns an ``LLMResult`` (``text``, ``usage``,
        ``finish_reason``, ``data``); raises ``LLMFailure`` (a :class:`TaskFailure`)."""
        if prompt is not None:
            request["prompt"] = prompt
        client = request.pop("client", None) or getattr(self.agent, "llm", None)
        if client is None:
            raise TaskFailure(
                "INVALID_INPUT",
                "this agent has no model: give it AgentOptions(llm=LLMClient(...)) or --llm-base-url",
                retryable=False,
            )
        return await client.run(self, request)

    async def ask(
        self,
        question: str,
        choices: list[str] | None = None,
        timeout: float = 3600.0,
        default: Any = _NO_DEFAULT,
    ) -> Any:
        """Ask a person and wait for the answer: the task is ``input_required`` until
        ``POST /api/tasks/{id}/input`` answers (one of ``choices`` when given).

        Returns the answer, or ``default`` when none came within ``timeout`` seconds.
        Raises :class:`InputTimedOut` on a timeout without ``default``, and
        :class:`TaskCancelled` when the task is cancelled meanwhile."""
        if not question:
            raise ValueError("question must not be empty")
        if not timeout > 0:
            raise ValueError("timeout must be > 0")
        ask = getattr(self.agent, "_ask", None)
        if ask is None:
            raise RuntimeError("ctx.ask needs a running agent")
        answer, timed_out, _by = await ask(self, question, list(choices) if choices else None, float(timeout))
        if timed_out:
            if default is _NO_DEFAULT:
                raise InputTimedOut(question, timeout)
            return default
        return answer

    def stream_output(self, delta: str) -> None:
        """Stream text the task produced (a model's tokens, a remote agent's chunks): it
        reaches the hub as ``task_progress.output_delta``, coalesced to at most about ten
        reports a second, and ``GET /api/tasks/{id}`` shows the output so far. ``ctx.llm``
        does this itself. Call it on the agent's event loop (not from a worker thread).
        Ignored once cancelled or finished."""
        if not isinstance(delta, str):
            raise TypeError(f"output must be text, got {type(delta).__name__}")
        if delta:
            self._output(delta, None)

    def _output(self, delta: str, usage: dict[str, Any] | None) -> None:
        if self._finished or self._cancelled.is_set():
            return
        self.output += delta
        if usage is not None:
            self._stream_usage = usage
        if self._on_output is not None:
            self._on_output(self, delta, usage)

    def __repr__(self) -> str:
        return f"<TaskContext task={self.task_id} type={self.type} attempt={self.attempt}>"
