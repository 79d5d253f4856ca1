"""``ctx.llm(...)`` and the ready-made handler of a no-code LLM agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import LLMClient, LLMResult
from .errors import INVALID_INPUT, LLMFailure
from .request import parse_request

if TYPE_CHECKING:
    from ..context import TaskContext

__all__ = ["add_usage", "call_llm", "llm_handler"]


def add_usage(total: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """Sum the usage of several calls of one attempt (the model: the latest)."""
    if total is None:
        return dict(usage)
    return {
        "model": usage["model"],
        "prompt_tokens": total["prompt_tokens"] + usage["prompt_tokens"],
        "completion_tokens": total["completion_tokens"] + usage["completion_tokens"],
    }


async def call_llm(
    ctx: TaskContext, client: LLMClient | None, data: Any, system: str | None = None
) -> LLMResult:
    """One streamed model call for ``ctx``: its text goes out as ``output_delta``
    progress, its usage is added to the attempt's, the task's budget applies."""
    if client is None:
        raise LLMFailure(
            INVALID_INPUT,
            "this agent has no model: give it AgentOptions(llm=LLMClient(...)) or --llm-base-url",
            retryable=False,
        )
    request = parse_request(data, system=system)
    before = ctx.usage
    budget_tokens = ctx.task.get("max_tokens")
    budget_cost = ctx.task.get("max_cost_usd")
    spent = before["completion_tokens"] if before else 0
    if budget_tokens is not None:
        budget_tokens = max(1, int(budget_tokens) - spent)

    def on_text(delta: str, usage: dict[str, Any]) -> None:
        ctx._output(delta, add_usage(before, usage))

    try:
        result = await client.chat(
            request, on_text=on_text, max_tokens=budget_tokens, max_cost_usd=budget_cost
        )
    except LLMFailure as f:
        if f.usage is not None:
            ctx.usage = add_usage(before, f.usage)
            f.usage = ctx.usage
        raise
    ctx.usage = add_usage(before, result.usage)
    ctx._output("", ctx.usage)
    return result


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
