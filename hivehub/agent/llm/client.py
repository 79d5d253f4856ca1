"""An async, streaming client of any OpenAI-compatible Chat Completions endpoint
(OpenAI, vLLM, llama.cpp, Ollama, a LiteLLM proxy) over the official ``openai`` package.

Foreign errors are translated here, at the boundary, into :class:`LLMFailure` with the
stable codes of :mod:`.errors`. Retries are the hub's business: the client makes one try.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import (
    BUDGET_EXCEEDED,
    INVALID_INPUT,
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    RATE_LIMITED,
    LLMFailure,
)
from .request import ChatRequest, parse_request
from .tokens import ESTIMATE, SERVER, PromptCounter, estimate_prompt_tokens, weakest_source

if TYPE_CHECKING:
    from ..context import TaskContext

__all__ = ["LLMClient", "LLMPrice", "LLMResult", "TextCallback"]

#: ``on_text(delta, usage_so_far)``: called for every streamed piece of text
TextCallback = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class LLMPrice:
    """USD per million tokens; the SDK needs one only to stop at a task's ``max_cost_usd``
    (the hub prices usage itself, from its own table)."""

    input_per_million: float
    output_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


@dataclass
class LLMResult:
    text: str
    #: ``{model, prompt_tokens, completion_tokens}`` as the server reported them
    usage: dict[str, Any]
    finish_reason: str | None
    #: the parsed JSON for a ``response_format`` request
    data: Any = None


def _openai() -> Any:
    try:
        import openai
    except ImportError:  # pragma: no cover - the extra is installed by make test
        raise ImportError(
            "LLM agents need the 'llm' extra: pip install -e '.[llm]' (or: bash scripts/llm-deps.sh)"
        ) from None
    return openai


def _httpx() -> Any:
    """The HTTP library this ``openai`` release is built on (``httpx``, or its ``httpx2`` fork)."""
    try:
        import httpx2

        return httpx2
    except ImportError:
        import httpx

        return httpx


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("retry-after") if headers is not None else None
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return min(3600.0, max(0.001, value)) if value is not None else None


class LLMClient:
    """``LLMClient(base_url, api_key, model)``; :meth:`chat` streams one completion.

    Args:
        base_url: the endpoint, e.g. ``http://127.0.0.1:8080/v1``
        api_key: the key (a local server ignores it)
        model: the default model (a request's ``model`` wins)
        timeout: seconds for the whole call; connect_timeout: for connecting;
            read_timeout: between two chunks
        price: see :class:`LLMPrice` (needed to stop at ``max_cost_usd``)
        max_concurrent: calls in flight at once through this client (None: no limit);
            llama-cpp-python's server serves one stream at a time and cuts a concurrent
            one short (seen as ``LLM_BAD_RESPONSE``), so give it 1 there
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        *,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        price: LLMPrice | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        openai = _openai()
        httpx = _httpx()

        self.base_url = base_url
        self.model = model
        self.price = price
        self._gate = asyncio.Semaphore(max_concurrent) if max_concurrent else None
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            max_retries=0,
            timeout=httpx.Timeout(timeout, connect=connect_timeout, read=read_timeout),
        )
        self._http: Any = None
        self._counter: PromptCounter | None = None

    async def close(self) -> None:
        await self._client.close()
        if self._http is not None:
            await self._http.aclose()

    def _prompt_counter(self) -> PromptCounter:
        if self._counter is None:
            httpx = _httpx()
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
            root = self.base_url.rstrip("/")
            root = root[: -len("/v1")] if root.endswith("/v1") else root
            self._counter = PromptCounter(root, self._http, self._probe)
        return self._counter

    async def _probe(self, model: str, messages: list[dict[str, Any]]) -> int | None:
        """A non-streamed 1-token call: the server's own prompt count of ``messages``."""
        r = await self._client.chat.completions.create(
            model=model, messages=messages, max_tokens=1, stream=False
        )
        return int(r.usage.prompt_tokens) if r.usage is not None else None

    async def run(self, ctx: TaskContext, data: Any, system: str | None = None) -> LLMResult:
        """``ctx.llm``: one streamed call for the task of ``ctx`` (:func:`call_llm`)."""
        return await call_llm(ctx, self, data, system)

    async def chat(
        self,
        request: ChatRequest,
        *,
        on_text: TextCallback | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
    ) -> LLMResult:
        """Stream one completion. ``max_tokens`` / ``max_cost_usd`` are the task's budget:
        reaching them raises ``BUDGET_EXCEEDED`` (not retryable) with the usage so far.
        Cancelling the calling task closes the HTTP stream at once.

        Raises:
            LLMFailure: ``LLM_UNAVAILABLE``, ``LLM_BAD_RESPONSE``, ``RATE_LIMITED``,
                ``BUDGET_EXCEEDED``, ``INVALID_INPUT``.
        """
        if self._gate is None:
            return await self._chat(request, on_text, max_tokens, max_cost_usd)
        async with self._gate:
            return await self._chat(request, on_text, max_tokens, max_cost_usd)

    async def _chat(
        self,
        request: ChatRequest,
        on_text: TextCallback | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
    ) -> LLMResult:
        """:meth:`chat` inside the concurrency gate."""
        openai = _openai()
        httpx = _httpx()

        model = request.model or self.model
        if not model:
            raise LLMFailure(
                INVALID_INPUT, "no model: give one in the input or to the client", retryable=False
            )
        prompt_chars = sum(
            len(m["content"]) if isinstance(m["content"], str) else 0 for m in request.messages
        )
        # the budget also caps what the model is asked for: a cost budget in completion tokens
        cap = max_tokens
        if max_cost_usd is not None and self.price is not None and self.price.output_per_million > 0:
            est_prompt = self.price.cost(prompt_chars // 4, 0)
            by_cost = int((max_cost_usd - est_prompt) * 1e6 / self.price.output_per_million)
            cap = max(1, by_cost) if cap is None else max(1, min(cap, by_cost))
        limit = request.max_tokens if cap is None else min(cap, request.max_tokens or cap)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if limit is not None:
            kwargs["max_tokens"] = limit
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        parts: list[str] = []
        counted = 0
        server_usage: dict[str, Any] | None = None
        finish: str | None = None

        def usage_now(final: bool = False) -> dict[str, Any]:
            """The usage so far; ``final``: the attempt ends here without a count of the
            prompt from the server, so the prompt is estimated (no more requests now)."""
            if server_usage is not None:
                return dict(server_usage)
            u: dict[str, Any] = {"model": model, "prompt_tokens": 0, "completion_tokens": counted}
            if final:
                u["prompt_tokens"] = estimate_prompt_tokens(request.messages)
                u["prompt_tokens_source"] = ESTIMATE
            return u

        started = False

        def fail(code: str, message: str, retryable: bool = True, **kw: Any) -> LLMFailure:
            # a call the server refused spent no prompt; one that streamed did
            usage = usage_now(final=started)
            return LLMFailure(code, message, {"model": model}, retryable, usage=usage, **kw)

        try:
            stream = await self._client.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:
            raise fail(
                RATE_LIMITED,
                f"the model server is rate limiting: {exc.message}",
                retry_after=_retry_after(exc.response.headers),
            ) from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise fail(
                    LLM_UNAVAILABLE, f"the model server answered {exc.status_code}: {exc.message}"
                ) from exc
            raise fail(
                INVALID_INPUT,
                f"the model server refused the request ({exc.status_code}): {exc.message}",
                retryable=False,
            ) from exc
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            raise fail(LLM_UNAVAILABLE, f"cannot reach the model server at {self.base_url}: {exc}") from exc
        except openai.OpenAIError as exc:
            raise fail(LLM_BAD_RESPONSE, f"the model server's answer is not understood: {exc}") from exc
        started = True
        try:
            async for chunk in stream:
                if getattr(chunk, "usage", None) is not None:
                    u = chunk.usage
                    server_usage = {
                        "model": chunk.model or model,
                        "prompt_tokens": int(u.prompt_tokens or 0),
                        "completion_tokens": int(u.completion_tokens or 0),
                    }
                    if u.prompt_tokens:
                        server_usage["prompt_tokens_source"] = SERVER
                for choice in chunk.choices or ():
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        parts.append(text)
                        counted += 1
                        if max_tokens is not None and counted > max_tokens:
                            raise fail(
                                BUDGET_EXCEEDED,
                                f"the output passed the task's max_tokens ({max_tokens})",
                                retryable=False,
                            )
                        if on_text is not None:
                            on_text(text, usage_now())
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if max_cost_usd is not None and self.price is not None:
                    u2 = usage_now()
                    spent = self.price.cost(u2["prompt_tokens"] or prompt_chars // 4, u2["completion_tokens"])
                    if spent > max_cost_usd:
                        raise fail(
                            BUDGET_EXCEEDED,
                            f"the call passed the task's max_cost_usd ({max_cost_usd})",
                            retryable=False,
                        )
        except LLMFailure:
            raise
        except openai.APIError as exc:
            raise fail(LLM_BAD_RESPONSE, f"the model stream broke: {exc}") from exc
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            raise fail(
                LLM_BAD_RESPONSE, f"the model stream broke off or is garbage: {exc or type(exc).__name__}"
            ) from exc
        finally:
            # closes the HTTP response now, also when the task is cancelled mid-stream
            await stream.close()
        if finish is None:
            raise fail(LLM_BAD_RESPONSE, "the model stream ended without a finish_reason (cut mid-way)")
        usage = usage_now()
        if not usage.get("prompt_tokens_source"):
            # after the stream, never during it (llama-cpp-python cuts a stream short
            # when another request arrives)
            n, source = await self._prompt_counter().count(model, request.messages)
            usage.update(prompt_tokens=n, prompt_tokens_source=source)
            server_usage = usage
        text = "".join(parts)
        if finish == "length" and cap is not None and limit == cap and (request.max_tokens or cap + 1) > cap:
            raise fail(
                BUDGET_EXCEEDED, f"the output reached the task's budget ({cap} tokens)", retryable=False
            )
        data = None
        if request.wants_json:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise fail(LLM_BAD_RESPONSE, f"the model's output is not the JSON asked for: {exc}") from exc
        return LLMResult(text, usage, finish, data)


def add_usage(total: dict[str, Any] | None, usage: dict[str, Any]) -> dict[str, Any]:
    """Sum the usage of several calls of one attempt (the model: the latest)."""
    if total is None:
        return dict(usage)
    out = {
        "model": usage["model"],
        "prompt_tokens": total["prompt_tokens"] + usage["prompt_tokens"],
        "completion_tokens": total["completion_tokens"] + usage["completion_tokens"],
    }
    source = weakest_source(total.get("prompt_tokens_source"), usage.get("prompt_tokens_source"))
    if source is not None:
        out["prompt_tokens_source"] = source
    return out


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
