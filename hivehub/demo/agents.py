"""The three demo agents of ``hive serve`` (and ``hive agent --demo``'s handlers).

They differ the way real workers do, and the workload (``workload.py``) shows it:

* **DataProcessor-1** (specialist, data 0.9, text 0.4) *prefetches*: it accepts up
  to three tasks but profiles one at a time, as a Celery worker with a prefetch
  multiplier does. Work waits on it while other agents may be idle, and the hub's
  coordinator moves that waiting work (``coordination_event``, ``task_assigned``
  with ``assignment_reason: "rebalanced"``).
* **TextAnalyst-1** (specialist, text 0.9, one slot) serves short, interactive
  requests and gives each text at most :data:`TEXT_ANALYST_BUDGET` seconds: a long
  transcript fails there with the retryable ``TIME_BUDGET_EXCEEDED`` and the hub
  retries it on another agent, which finishes it.
* **Generalist-1** (worker, 0.6 at everything, two slots) is the only one that does
  ``math``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..agent.context import TaskContext
from ..agent.ws import Agent
from .numeric import math_task
from .records import data_processing
from .text import text_analysis, text_analysis_within

#: task type -> handler
DEMO_HANDLERS: dict[str, Callable[[TaskContext], Any]] = {
    "data_processing": data_processing,
    "text_analysis": text_analysis,
    "math": math_task,
    "numeric": math_task,
}

#: seconds TextAnalyst-1 gives one text
TEXT_ANALYST_BUDGET = 1.5


class PrefetchingAgent(Agent):
    """An agent that accepts up to ``max_concurrent_tasks`` assignments (announced to
    the hub) but runs only ``run_at_once`` of them at a time; the others wait on it,
    assigned but not started, until a slot frees or the hub moves them elsewhere."""

    def __init__(self, *args: Any, run_at_once: int = 1, **kwargs: Any) -> None:
        if run_at_once < 1:
            raise ValueError("run_at_once must be >= 1")
        self.run_at_once = run_at_once
        super().__init__(*args, **kwargs)

    def _reset_runtime(self) -> None:
        super()._reset_runtime()
        # the SDK's execution slots (one per announced task) narrowed to run_at_once
        self._slots = asyncio.Semaphore(min(self.run_at_once, self.max_concurrent_tasks))


def register_demo_handlers(agent: Any, types: Iterable[str] | None = None) -> None:
    """Add the demo handlers (all, or those of ``types``) to an agent."""
    for t in types if types is not None else DEMO_HANDLERS:
        agent.add_handler(t, DEMO_HANDLERS[t])


def demo_agents(url: str = "ws://127.0.0.1:3001", *, token: str | None = None) -> list[Any]:
    """Three configured agents with the demo handlers (not started): DataProcessor-1,
    TextAnalyst-1, Generalist-1.

    Their ids are fixed (``demo-dataprocessor-1``, ...) so that after a hub restart they
    resume their own history instead of piling up as new agents."""

    data = PrefetchingAgent(
        "DataProcessor-1",
        {"data_processing": 0.9, "text_analysis": 0.4},
        url=url,
        type="specialist",
        max_concurrent_tasks=3,
        run_at_once=1,
        agent_id="demo-dataprocessor-1",
        token=token,
        metadata={"demo": True, "prefetch": 3},
    )
    register_demo_handlers(data, ["data_processing", "text_analysis"])
    text = Agent(
        "TextAnalyst-1",
        {"text_analysis": 0.9},
        url=url,
        type="specialist",
        agent_id="demo-textanalyst-1",
        token=token,
        metadata={"demo": True, "time_budget_seconds": TEXT_ANALYST_BUDGET},
    )
    text.add_handler("text_analysis", text_analysis_within(TEXT_ANALYST_BUDGET))
    general = Agent(
        "Generalist-1",
        {"data_processing": 0.6, "text_analysis": 0.6, "math": 0.6, "numeric": 0.6},
        url=url,
        type="worker",
        max_concurrent_tasks=2,
        agent_id="demo-generalist-1",
        token=token,
        metadata={"demo": True},
    )
    register_demo_handlers(general)
    return [data, text, general]
