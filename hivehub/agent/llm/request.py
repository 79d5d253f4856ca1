"""A task's input -> a chat request, validated (malformed -> ``INVALID_INPUT``, not retryable).

Accepted: ``{"messages": [{"role": ..., "content": ...}, ...]}`` or
``{"prompt": "...", "system": "..."}``, plus optional ``model``, ``max_tokens``,
``temperature`` and ``response_format`` (``{"type": "json_object", "schema": {...}}``
or ``{"type": "json_schema", "json_schema": {...}}``; llama.cpp takes the first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .errors import INVALID_INPUT, LLMFailure

__all__ = ["ChatRequest", "parse_request"]

ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@dataclass
class ChatRequest:
    messages: list[dict[str, Any]]
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    response_format: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_json(self) -> bool:
        return self.response_format is not None and self.response_format.get("type") != "text"


def _bad(message: str) -> LLMFailure:
    return LLMFailure(INVALID_INPUT, message, retryable=False)


def parse_request(data: Any, *, system: str | None = None) -> ChatRequest:
    """Validate ``data`` (a task input or ``ctx.llm`` keywords); ``system`` is the
    handler's default system prompt (the input's own ``system`` wins)."""
    if isinstance(data, str):
        data = {"prompt": data}
    if not isinstance(data, dict):
        raise _bad(f"the input must be an object with 'messages' or 'prompt', got {type(data).__name__}")
    messages: list[dict[str, Any]]
    if data.get("messages") is not None:
        raw = data["messages"]
        if not isinstance(raw, list) or not raw:
            raise _bad("'messages' must be a non-empty list")
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict):
                raise _bad(f"messages[{i}] must be an object")
            if m.get("role") not in ROLES:
                raise _bad(f"messages[{i}].role must be one of {sorted(ROLES)}, got {m.get('role')!r}")
            content = m.get("content")
            if not isinstance(content, str) and not (isinstance(content, list) and content):
                raise _bad(f"messages[{i}].content must be a string (or a list of parts)")
            messages.append(dict(m))
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
    elif data.get("prompt") is not None:
        prompt = data["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise _bad("'prompt' must be a non-empty string")
        sys_prompt = data.get("system", system)
        if sys_prompt is not None and not isinstance(sys_prompt, str):
            raise _bad("'system' must be a string")
        messages = ([{"role": "system", "content": sys_prompt}] if sys_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
    else:
        raise _bad("the input needs 'messages' (a list) or 'prompt' (a string)")
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise _bad("'model' must be a non-empty string")
    max_tokens = data.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 10**8
    ):
        raise _bad("'max_tokens' must be an integer within 1..100000000")
    temperature = data.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float):
            raise _bad("'temperature' must be a number")
        temperature = float(temperature)
        if math.isnan(temperature) or not 0.0 <= temperature <= 2.0:
            raise _bad("'temperature' must be within 0..2")
    fmt = data.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str)):
        raise _bad("'response_format' must be an object with a 'type'")
    return ChatRequest(messages, model, max_tokens, temperature, fmt)
