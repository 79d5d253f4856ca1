"""Streamed text -> progress reports: at most one report per ``interval`` per task.

Pure (the caller passes the time): the agent asks :meth:`OutputCoalescer.add` whether a
report is due, schedules a flush at :meth:`due_in` otherwise, and calls :meth:`take`
once more before the attempt's outcome, so the reported deltas concatenate to the text.

The first text waits ``interval`` too (the clock starts when it arrives): a report
carrying only the stream's first token would cost the hub a commit and a /ws frame
for one token (measured on the LLM bench row: one report in seven per 32-token task).
"""

from __future__ import annotations

__all__ = ["OutputCoalescer"]


class OutputCoalescer:
    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._pending: list[str] = []
        self._last_flush = -1e18
        #: every character taken so far (what the reports carried)
        self.taken = 0

    @property
    def pending(self) -> str:
        return "".join(self._pending)

    def add(self, text: str, now: float) -> bool:
        """Buffer ``text``; True when a report is due now (call :meth:`take`)."""
        if text:
            if self._last_flush < -1e17:  # the first text: its report is due an interval later
                self._last_flush = now
            self._pending.append(text)
        return bool(self._pending) and now - self._last_flush >= self.interval

    def due_in(self, now: float) -> float | None:
        """Seconds until the buffered text is due (None: nothing buffered)."""
        if not self._pending:
            return None
        return max(0.0, self._last_flush + self.interval - now)

    def take(self, now: float) -> str:
        """The buffered text (may be empty); the next report is due ``interval`` after ``now``."""
        text = "".join(self._pending)
        self._pending.clear()
        if text:
            self._last_flush = now
            self.taken += len(text)
        return text
