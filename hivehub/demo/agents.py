"""The three demo agents of ``hive serve`` (and ``hive agent --demo``'s handlers).

They differ the way real workers do, and the workload (``workload.py``) shows it:

* **DataProcessor-1** (specialist, data 0.9, text 0.4) profiles one data set at a
  time (one slot) and *prefetches* up to two more (``prefetch=2``; the hub sizes
  the depth from its measured task time, so for these multi-second tasks it is
  given one ahead). Work waits on it while other agents may be idle, and the hub
  recalls that waiting work for them (``task_recalled``, then ``task_released``
  with ``reason: "recalled"`` and a ``task_assigned`` to the idle agent).
* **TextAnalyst-1** (specialist, text 0.9, one slot) serves short, interactive
  requests and gives each text at most :data:`TEXT_ANALYST_BUDGET` seconds: a long
  transcript fails there with the retryable ``TIME_BUDGET_EXCEEDED`` and the hub
  retries it on another agent, which finishes it.
* **Generalist-1** (worker, 0.6 at everything, two slots, no prefetch) is the only
  one that does ``math``.
"""

from __future__ import annotations

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


def register_demo_handlers(agent: Any, types: Iterable[str] | None = None) -> None:
    """Add the demo handlers (all, or those of ``types``) to an agent."""
    for t in types if types is not None else DEMO_HANDLERS:
        agent.add_handler(t, DEMO_HANDLERS[t])


def demo_agents(url: str = "ws://127.0.0.1:3001", *, token: str | None = None) -> list[Any]:
    """Three configured agents with the demo handlers (not started): DataProcessor-1,
    TextAnalyst-1, Generalist-1.

    Their ids are fixed (``demo-dataprocessor-1``, ...) so that after a hub restart they
    resume their own history instead of piling up as new agents."""

    data = Agent(
        "DataProcessor-1",
        {"data_processing": 0.9, "text_analysis": 0.4},
        url=url,
        type="specialist",
        max_concurrent_tasks=1,
        prefetch=2,
        agent_id="demo-dataprocessor-1",
        token=token,
        metadata={"demo": True},
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
        # no queue of its own: it takes work only into its two slots, so it is the
        # agent left idle while work waits on DataProcessor-1 (and the recall serves)
        prefetch=0,
        agent_id="demo-generalist-1",
        token=token,
        metadata={"demo": True},
    )
    register_demo_handlers(general)
    return [data, text, general]
