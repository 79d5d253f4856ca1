"""The handler of the MCP tests' agent (``--handler tests.mcp.handlers:run``): a task
whose input has ``ask`` asks a person that question and returns the answer; any other
task is ``tests.e2e.handlers.gate`` (progress, then waits for its release file)."""

from __future__ import annotations

from typing import Any

from hivehub.agent import TaskContext
from tests.e2e.handlers import gate


async def run(ctx: TaskContext) -> Any:
    if isinstance(ctx.input, dict) and "ask" in ctx.input:
        answer = await ctx.ask(ctx.input["ask"], choices=ctx.input.get("choices"), timeout=60)
        return {"answer": answer}
    return await gate(ctx)
