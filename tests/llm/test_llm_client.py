"""The LLM client against the real llama.cpp server on the bundled SmolLM2 model."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from hivehub.agent.llm import (
    BUDGET_EXCEEDED,
    INVALID_INPUT,
    LLM_UNAVAILABLE,
    LLMClient,
    LLMFailure,
    parse_request,
)
from hivehub.agent.llm.tokens import PromptCounter


async def test_streamed_deltas_concatenate_to_the_text(llm_server: str) -> None:
    client = LLMClient(llm_server, model="smollm2")
    parts: list[str] = []
    r = await client.chat(
        parse_request({"prompt": "Say hello in five words.", "max_tokens": 24, "temperature": 0}),
        on_text=lambda d, u: parts.append(d),
    )
    await client.close()
    assert r.text and "".join(parts) == r.text
    assert r.finish_reason in ("stop", "length")
    assert r.usage["completion_tokens"] == len(parts) >= 1


def _served_prompt_tokens(base: str, messages: list[dict[str, str]]) -> int:
    """The same messages to the model server, not streamed: its own prompt count."""
    body = {"model": "smollm2", "messages": messages, "max_tokens": 1, "temperature": 0}
    req = urllib.request.Request(
        f"{base}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return int(json.loads(r.read())["usage"]["prompt_tokens"])


@pytest.mark.parametrize("system", [None, "Answer in one short sentence."])
async def test_prompt_tokens_are_counted_with_the_servers_tokenizer(
    llm_server: str, system: str | None
) -> None:
    """llama-cpp-python's stream reports no prompt tokens: the client counts them with
    the server's tokenizer after the stream, equal to what the server itself counts
    (without a system message the template adds SmolLM2's default one: measured once)."""
    client = LLMClient(llm_server, model="smollm2")
    data = {"prompt": "Name three colours of the rainbow.", "max_tokens": 8, "temperature": 0}
    r = await client.chat(parse_request({**data, "system": system} if system else data))
    await client.close()
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": data["prompt"]}
    ]
    assert r.usage["prompt_tokens_source"] == "tokenizer"
    assert r.usage["prompt_tokens"] == _served_prompt_tokens(llm_server, messages)


async def test_without_a_tokenizer_endpoint_the_prompt_is_estimated(llm_server: str) -> None:
    counter = PromptCounter("http://127.0.0.1:9", None, None)  # nothing answers there
    n, source = await counter.count("smollm2", [{"role": "user", "content": "x" * 40}])
    assert (n, source) == (14, "estimate")


async def test_max_tokens_budget_stops_with_budget_exceeded(llm_server: str) -> None:
    client = LLMClient(llm_server, model="smollm2")
    with pytest.raises(LLMFailure) as info:
        await client.chat(
            parse_request(
                {
                    "prompt": "Write a long story about a dragon and a knight.",
                    "max_tokens": 200,
                    "temperature": 0,
                }
            ),
            max_tokens=5,
        )
    await client.close()
    assert info.value.code == BUDGET_EXCEEDED and info.value.retryable is False
    assert info.value.usage is not None and info.value.usage["completion_tokens"] == 5
    # the model stopped at the cap (finish_reason "length"): the prompt was counted after it
    assert info.value.usage["prompt_tokens_source"] == "tokenizer" and info.value.usage["prompt_tokens"] > 0


async def test_json_schema_output(llm_server: str) -> None:
    client = LLMClient(llm_server, model="smollm2")
    schema = {"type": "object", "properties": {"colour": {"type": "string"}}, "required": ["colour"]}
    r = await client.chat(
        parse_request(
            {
                "prompt": "Give a JSON object with the key colour.",
                "max_tokens": 40,
                "response_format": {"type": "json_object", "schema": schema},
            }
        )
    )
    await client.close()
    assert isinstance(r.data, dict) and isinstance(r.data["colour"], str)


async def test_cancel_closes_the_stream_within_a_second(llm_server: str) -> None:
    client = LLMClient(llm_server, model="smollm2")
    state = {"cancelled_at": None, "after": 0, "chunks": 0}
    first = asyncio.Event()

    def on_text(d: str, u: object) -> None:
        state["chunks"] += 1  # type: ignore[operator]
        if state["cancelled_at"] is not None:
            state["after"] += 1  # type: ignore[operator]
        first.set()

    call = asyncio.create_task(
        client.chat(
            parse_request({"prompt": "Write a long story about a dragon.", "max_tokens": 400}),
            on_text=on_text,
        )
    )
    await asyncio.wait_for(first.wait(), 30)
    state["cancelled_at"] = time.monotonic()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    closed_in = time.monotonic() - state["cancelled_at"]  # type: ignore[operator]
    await asyncio.sleep(0.5)  # chunks the server still sends cannot reach us: the stream is closed
    await client.close()
    assert closed_in < 1.0
    assert state["after"] == 0


async def test_server_down_is_llm_unavailable() -> None:
    client = LLMClient("http://127.0.0.1:9/v1", model="smollm2", connect_timeout=1)
    with pytest.raises(LLMFailure) as info:
        await client.chat(parse_request({"prompt": "hi"}))
    await client.close()
    assert info.value.code == LLM_UNAVAILABLE and info.value.retryable


@pytest.mark.parametrize(
    "bad",
    [
        {"messages": []},
        {"messages": [{"role": "x", "content": "a"}]},
        {"prompt": ""},
        {},
        [1],
        {"prompt": "a", "max_tokens": -1},
    ],
)
def test_malformed_input_is_invalid_input(bad: object) -> None:
    with pytest.raises(LLMFailure) as info:
        parse_request(bad)
    assert info.value.code == INVALID_INPUT and info.value.retryable is False
