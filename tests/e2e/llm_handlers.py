"""Handlers of the LLM end-to-end tests, loaded by real ``hive agent --llm-base-url``
processes (``--handler TYPE=tests.e2e.llm_handlers:NAME``)."""

from __future__ import annotations

from typing import Any

from hivehub.agent import TaskContext


async def ask_then_write(ctx: TaskContext) -> Any:
    """Ask a person for the topic mid-task, then have the model write about it."""
    topic = await ctx.ask("Which topic?", choices=["bees", "cats"], timeout=60)
    r = await ctx.llm(prompt=f"Write one sentence about {topic}.", max_tokens=12, temperature=0)
    return {"topic": topic, "text": r.text}
