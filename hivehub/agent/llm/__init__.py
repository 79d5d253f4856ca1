"""The LLM agent kit: stream any OpenAI-compatible Chat Completions endpoint from a handler.

::

    from hivehub.agent import Agent
    from hivehub.agent.llm import LLMClient, llm_handler

    llm = LLMClient("http://127.0.0.1:8080/v1", model="smollm2")
    agent = Agent("Writer-1", {"summarize": 0.8}, url="ws://127.0.0.1:3001", llm=llm)
    agent.add_handler("summarize", llm_handler(system="Summarize the text in one sentence."))

    @agent.handler("custom")
    async def custom(ctx):
        r = await ctx.llm(prompt="Name a colour.", max_tokens=8)
        return {"colour": r.text}

The text streams to the hub as ``task_progress.output_delta`` (at most one report per
0.1 s), the server's token counts go out as ``usage``, a task's ``max_tokens`` /
``max_cost_usd`` stop the stream with ``BUDGET_EXCEEDED`` (a cost stop needs
``LLMClient(price=LLMPrice(...))``), and cancelling the task closes the HTTP stream.
Needs the ``llm`` extra (``openai``), imported on first use.
"""

from .client import LLMClient, LLMPrice, LLMResult
from .coalesce import OutputCoalescer
from .errors import (
    BUDGET_EXCEEDED,
    INVALID_INPUT,
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    RATE_LIMITED,
    LLMFailure,
)
from .handler import call_llm, llm_handler
from .request import ChatRequest, parse_request

__all__ = [
    "BUDGET_EXCEEDED",
    "INVALID_INPUT",
    "LLM_BAD_RESPONSE",
    "LLM_UNAVAILABLE",
    "RATE_LIMITED",
    "ChatRequest",
    "LLMClient",
    "LLMFailure",
    "LLMPrice",
    "LLMResult",
    "OutputCoalescer",
    "call_llm",
    "llm_handler",
    "parse_request",
]
