"""Prompt tokens when the model server's stream does not report them.

OpenAI and vLLM send a usage chunk at the end of a stream (``stream_options.include_usage``);
llama-cpp-python's server ignores that option, so its stream carries no prompt count.
:class:`PromptCounter` then counts the prompt with the server's own tokenizer:

1. ``POST {root}/extras/tokenize/count`` (llama-cpp-python), else ``POST {root}/tokenize``
   (llama.cpp's ``llama-server``), where ``root`` is the base URL without ``/v1``, on the
   prompt rendered the way chat templates of the ChatML family do (``<|im_start|>role\\n
   content<|im_end|>\\n`` per message, then ``<|im_start|>assistant\\n``). Measured on the
   bundled SmolLM2 with a system message: exactly the server's ``prompt_tokens`` (24 = 24).
2. A template may add text of its own: SmolLM2's adds a default system prompt when the
   request has none (+30 tokens: 7 counted from the text, 37 by the server). So the first
   time a request without a system message is counted for a model, one probe (a
   non-streamed, ``max_tokens=1`` call with a one-word user message) measures that
   difference once; it is added to every later count of such a request for that model.
3. No tokenizer endpoint: an estimate (4 characters a token, plus 4 a message).

The counter runs only after a stream has ended: llama-cpp-python's server serves one
request at a time and cuts a running stream short when another one arrives.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ESTIMATE",
    "SERVER",
    "TOKENIZER",
    "PromptCounter",
    "estimate_prompt_tokens",
    "render_chatml",
    "weakest_source",
]

#: the values of ``usage.prompt_tokens_source``
SERVER, TOKENIZER, ESTIMATE = "server", "tokenizer", "estimate"
_PROBE = [{"role": "user", "content": "Hi"}]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only the text ones are tokens we can count
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def render_chatml(messages: list[dict[str, Any]]) -> str:
    """The prompt as a ChatML chat template renders it, ready for the assistant's turn."""
    body = "".join(f"<|im_start|>{m['role']}\n{_text(m.get('content'))}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text(m.get("content"))) // 4 + 4 for m in messages)


class PromptCounter:
    """Counts prompts at one model server; remembers which endpoint works there.

    Args:
        root: the server's URL without the ``/v1`` suffix
        http: an ``httpx.AsyncClient`` (the one the ``openai`` client is built on)
        probe: ``probe(model, messages) -> prompt_tokens``, a non-streamed 1-token call
    """

    def __init__(self, root: str, http: Any, probe: Any) -> None:
        self.root = root.rstrip("/")
        self._http = http
        self._probe = probe
        #: "count" | "tokenize" | None (none found: estimate)
        self._endpoint: str | None = "?"
        #: tokens a template adds to a request without a system message, per model
        self._implicit: dict[str, int] = {}

    async def _count_text(self, model: str, text: str) -> int | None:
        for endpoint in ("count", "tokenize") if self._endpoint == "?" else (self._endpoint,):
            if endpoint is None:
                return None
            try:
                if endpoint == "count":
                    r = await self._http.post(
                        f"{self.root}/extras/tokenize/count", json={"input": text, "model": model}
                    )
                    n = r.json()["count"] if r.status_code == 200 else None
                else:
                    r = await self._http.post(f"{self.root}/tokenize", json={"content": text})
                    n = len(r.json()["tokens"]) if r.status_code == 200 else None
            except Exception:  # noqa: BLE001 - any failure means: this endpoint is not there
                n = None
            if isinstance(n, int) and n >= 0:
                self._endpoint = endpoint
                return n
        self._endpoint = None
        return None

    async def count(self, model: str, messages: list[dict[str, Any]]) -> tuple[int, str]:
        """``(prompt_tokens, source)``, source :data:`TOKENIZER` or :data:`ESTIMATE`."""
        n = await self._count_text(model, render_chatml(messages))
        if n is None:
            return estimate_prompt_tokens(messages), ESTIMATE
        if not any(m.get("role") == "system" for m in messages):
            if model not in self._implicit:
                self._implicit[model] = await self._implicit_tokens(model)
            n += self._implicit[model]
        return n, TOKENIZER

    async def _implicit_tokens(self, model: str) -> int:
        try:
            served = await self._probe(model, _PROBE)
            counted = await self._count_text(model, render_chatml(_PROBE))
        except Exception:  # noqa: BLE001 - no probe: count what the messages say
            return 0
        return max(0, served - counted) if isinstance(served, int) and counted is not None else 0


def weakest_source(a: str | None, b: str | None) -> str | None:
    """The source of a sum of two counts: the less certain one."""
    order = {SERVER: 0, TOKENIZER: 1, ESTIMATE: 2}
    if a is None or b is None:
        return a or b
    return a if order.get(a, 2) >= order.get(b, 2) else b
