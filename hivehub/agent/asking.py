"""``ctx.ask``: the ``input_request`` report and the wait for the hub's ``input`` answer.

Push agents get the answer as an ``input`` frame (:meth:`InputRequests._on_input`);
the pull agent overrides :meth:`InputRequests._wait_answer` to poll ``GET /api/tasks/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from .context import TaskCancelled, TaskContext
from .reports import Report

__all__ = ["Answer", "InputRequests"]

#: how long past its timeout a question waits for the hub's timed-out answer
#: (a lost connection must not hang the handler forever)
ANSWER_GRACE = 30.0

#: (answer, timed_out, answered_by)
Answer = tuple[str | None, bool, str | None]


class InputRequests:
    """Mixed into :class:`~hivehub.agent.base.BaseAgent`."""

    _loop: asyncio.AbstractEventLoop | None

    #: BaseAgent's: queue one report to the hub
    _report: Callable[[str, dict[str, Any]], Report]

    _answers: dict[tuple[str, str], asyncio.Future[Answer]]

    def _pending_answers(self) -> dict[tuple[str, str], asyncio.Future[Answer]]:
        if not hasattr(self, "_answers"):
            self._answers = {}
        return self._answers

    async def _ask(
        self, ctx: TaskContext, question: str, choices: list[str] | None, timeout: float
    ) -> Answer:
        request_id = uuid.uuid4().hex
        assert self._loop is not None
        fut: asyncio.Future[Answer] = self._loop.create_future()
        key = (ctx.task_id, request_id)
        self._pending_answers()[key] = fut
        self._report(
            "input_request",
            {
                "task_id": ctx.task_id,
                "attempt": ctx.attempt,
                "request_id": request_id,
                "question": question,
                "choices": choices,
                "timeout_seconds": timeout,
            },
        )
        cancelled = asyncio.ensure_future(ctx.cancel_event.wait())
        try:
            waiter = asyncio.ensure_future(self._wait_answer(ctx, request_id, fut))
            done, _ = await asyncio.wait(
                {waiter, cancelled}, timeout=timeout + ANSWER_GRACE, return_when=asyncio.FIRST_COMPLETED
            )
            if cancelled in done:
                waiter.cancel()
                raise TaskCancelled(ctx.cancel_reason or "cancelled")
            if waiter not in done:
                waiter.cancel()
                return None, True, None
            return waiter.result()
        finally:
            cancelled.cancel()
            self._pending_answers().pop(key, None)
            with contextlib.suppress(Exception):
                await asyncio.sleep(0)

    async def _wait_answer(self, ctx: TaskContext, request_id: str, fut: asyncio.Future[Answer]) -> Answer:
        """Push: the ``input`` frame resolves ``fut``."""
        return await fut

    def _on_input(
        self, task_id: str, request_id: str, answer: str | None, timed_out: bool, answered_by: str | None
    ) -> None:
        fut = self._pending_answers().get((task_id, request_id))
        if fut is not None and not fut.done():
            fut.set_result((answer, timed_out, answered_by))
