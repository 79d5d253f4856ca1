"""Task handlers for the A2A server tests, run by real ``hive agent`` processes
(``--handler tests.a2a.server_handlers:NAME``). The test and the handler meet through
files named in the task input, never through sleeps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hivehub.agent import TaskContext


async def _stream(ctx: TaskContext, text: str) -> None:
    # streamed output (what ctx.llm does with a model's tokens); the SDK turns it into
    # task_progress reports with output_delta, coalesced per 0.1 s
    ctx.stream_output(text)
    await asyncio.sleep(0)


async def chunks(ctx: TaskContext) -> Any:
    """Streams ``input.before`` chunks, writes ``input.started``, waits for the file
    ``input.release``, then streams ``input.after`` chunks and returns their count."""
    before, after = int(ctx.input.get("before", 3)), int(ctx.input.get("after", 3))
    for i in range(before):
        await _stream(ctx, f"b{i} ")
        await ctx.progress((i + 1) / (before + after + 1), f"chunk b{i}")
    Path(ctx.input["started"]).write_text("started")
    release = Path(ctx.input["release"])
    while not release.exists():
        if ctx.cancelled:
            raise asyncio.CancelledError
        await asyncio.sleep(0.02)
    for i in range(after):
        await _stream(ctx, f"a{i} ")
    return {"chunks": before + after, "prompt": ctx.input.get("prompt")}


async def ask(ctx: TaskContext) -> Any:
    """Asks a person which colour, then returns the answer."""
    colour = await ctx.ask("Which colour?", choices=["red", "blue"], timeout=60)
    return {"colour": colour}
