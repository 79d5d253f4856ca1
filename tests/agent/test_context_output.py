"""``ctx.stream_output(text)``: a handler's own streamed text, handed to the transport
(which coalesces it into ``task_progress.output_delta``) and kept in ``ctx.output``."""

from __future__ import annotations

from typing import Any

import pytest

from hivehub.agent import TaskContext

from .fakehub import make_task


async def test_output_reaches_the_transport_and_adds_up() -> None:
    seen: list[tuple[str, Any]] = []
    ctx = TaskContext(make_task("t1"), on_output=lambda c, delta, usage: seen.append((delta, usage)))
    ctx.stream_output("Once ")
    ctx.stream_output("")
    ctx.stream_output("upon a time")
    assert seen == [("Once ", None), ("upon a time", None)]
    assert ctx.output == "Once upon a time"  # the text so far


async def test_output_is_text_only_and_ignored_once_cancelled() -> None:
    seen: list[str] = []
    ctx = TaskContext(make_task("t1"), on_output=lambda c, delta, usage: seen.append(delta))
    with pytest.raises(TypeError):
        ctx.stream_output(b"bytes")  # type: ignore[arg-type]
    ctx.cancel("operator")
    ctx.stream_output("late")
    assert seen == []
