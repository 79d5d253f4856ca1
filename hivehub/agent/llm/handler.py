"""``ctx.llm(...)`` and the ready-made handler of a no-code LLM agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import LLMClient, add_usage, call_llm

if TYPE_CHECKING:
    from ..context import TaskContext

__all__ = ["add_usage", "call_llm", "llm_handler"]


def llm_handler(
    client: LLMClient | None = None,
    *,
    system: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> Any:
    """A handler that sends the task's input to the model and returns
    ``{"text", "model", "finish_reason"}`` (plus ``"data"`` for a JSON response_format).

    ``client`` defaults to the agent's (``AgentOptions.llm``); the other arguments are
    defaults a task's input overrides."""

    async def handle(ctx: TaskContext) -> dict[str, Any]:
        data = ctx.input
        if isinstance(data, str):
            data = {"prompt": data}
        if isinstance(data, dict):
            defaults = {"model": model, "max_tokens": max_tokens, "temperature": temperature}
            data = {**{k: v for k, v in defaults.items() if v is not None}, **data}
        result = await call_llm(ctx, client or getattr(ctx.agent, "llm", None), data, system)
        out: dict[str, Any] = {
            "text": result.text,
            "model": result.usage["model"],
            "finish_reason": result.finish_reason,
        }
        if result.data is not None:
            out["data"] = result.data
        return out

    return handle
