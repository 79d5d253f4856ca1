"""Progress reports: ``progress`` throttled to one per ``progress_interval``, and streamed
model output as ``task_progress`` with ``output_delta`` and the attempt's cumulative
``usage``, at most one per 0.1 s per task (:class:`~hivehub.agent.llm.OutputCoalescer`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .context import TaskContext
from .execution import Execution
from .reports import OUTPUT_DELTA_MAX, Report

__all__ = ["OutputReports"]


class OutputReports:
    """Mixed into :class:`~hivehub.agent.base.BaseAgent` (which provides these attributes)."""

    _execs: dict[str, Execution]
    _loop: asyncio.AbstractEventLoop | None
    progress_interval: float

    #: BaseAgent's: queue one report to the hub
    _report: Callable[[str, dict[str, Any]], Report]

    def _on_output(self, ctx: TaskContext, delta: str, usage: dict[str, Any] | None) -> None:
        """Streamed text: coalesced to at most one report per 0.1 s (OutputCoalescer)."""
        e = self._execs.get(ctx.task_id)
        if e is None or e.ctx is not ctx or e.state != "running":
            return
        now = time.monotonic()
        if e.coalescer.add(delta, now):
            self._flush_output(e)
        elif e.output_timer is None and self._loop is not None:
            wait = e.coalescer.due_in(now)
            if wait is not None:
                e.output_timer = self._loop.call_later(wait, self._flush_output, e)

    def _flush_output(self, e: Execution) -> None:
        e.output_timer = None
        if self._execs.get(e.task_id) is not e:
            return
        delta = e.coalescer.take(time.monotonic())
        if not delta:
            return
        # the hub takes at most OUTPUT_DELTA_MAX characters per report
        for i in range(0, len(delta), OUTPUT_DELTA_MAX):
            data: dict[str, Any] = {
                "task_id": e.task_id,
                "attempt": e.attempt,
                "progress": e.ctx.last_progress,
                "current_step": e.ctx.last_step,
                "output_delta": delta[i : i + OUTPUT_DELTA_MAX],
            }
            if e.ctx._stream_usage is not None:
                data["usage"] = e.ctx._stream_usage  # cumulative for the attempt
            self._report("task_progress", data)

    def _on_progress(self, ctx: TaskContext, fraction: float, step: str | None) -> None:
        """Throttled: the first report goes out at once, later ones at most every
        ``progress_interval`` seconds (the newest value wins; none after the outcome)."""
        e = self._execs.get(ctx.task_id)
        if e is None or e.ctx is not ctx or e.state != "running":
            return
        wait = e.last_progress_at + self.progress_interval - time.monotonic()
        if wait <= 0:
            self._send_progress(e, fraction, step)
            return
        e.pending_progress = (fraction, step)
        if e.progress_timer is None and self._loop is not None:
            e.progress_timer = self._loop.call_later(wait, self._flush_progress, e)

    def _flush_progress(self, e: Execution) -> None:
        e.progress_timer = None
        pending, e.pending_progress = e.pending_progress, None
        if pending is not None and self._execs.get(e.task_id) is e and e.state == "running":
            self._send_progress(e, *pending)

    def _send_progress(self, e: Execution, fraction: float, step: str | None) -> None:
        e.last_progress_at = time.monotonic()
        self._report(
            "task_progress",
            {"task_id": e.task_id, "attempt": e.attempt, "progress": fraction, "current_step": step},
        )
