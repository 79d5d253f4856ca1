"""The three demo agents of ``hive serve`` (and ``hive agent --demo``'s handlers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..agent.context import TaskContext
from ..agent.ws import Agent
from .numeric import math_task
from .records import data_processing
from .text import text_analysis

#: task type -> handler
DEMO_HANDLERS: dict[str, Callable[[TaskContext], Any]] = {
    "data_processing": data_processing,
    "text_analysis": text_analysis,
    "math": math_task,
    "numeric": math_task,
}


def register_demo_handlers(agent: Any, types: Iterable[str] | None = None) -> None:
    """Add the demo handlers (all, or those of ``types``) to an agent."""
    for t in types if types is not None else DEMO_HANDLERS:
        agent.add_handler(t, DEMO_HANDLERS[t])


def demo_agents(url: str = "ws://127.0.0.1:3001", *, token: str | None = None) -> list[Any]:
    """Three configured agents with the demo handlers (not started).

    Their ids are fixed (``demo-dataprocessor-1``, ...) so that after a hub restart they
    resume their own history instead of piling up as new agents."""

    data = Agent(
        "DataProcessor-1",
        {"data_processing": 0.9, "text_analysis": 0.4},
        url=url,
        type="specialist",
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
        metadata={"demo": True},
    )
    register_demo_handlers(text, ["text_analysis"])
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
