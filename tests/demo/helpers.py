"""A task context for calling a demo handler directly, recording its progress."""

from __future__ import annotations

from typing import Any

from hivehub.agent import TaskContext
from tests.agent.fakehub import make_task


def ctx_for(input: Any, type: str = "data_processing") -> tuple[TaskContext, list[tuple[float, str | None]]]:
    seen: list[tuple[float, str | None]] = []
    ctx = TaskContext(
        make_task("t1", type=type, input=input), on_progress=lambda c, f, s: seen.append((f, s))
    )
    return ctx, seen
