"""The error mapping against a misbehaving (not mocked: real HTTP) Chat Completions server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from hivehub.agent.llm import (
    LLM_BAD_RESPONSE,
    LLM_UNAVAILABLE,
    RATE_LIMITED,
    LLMClient,
    LLMFailure,
    parse_request,
)

MODE = web.AppKey("mode", dict)


def _chunk(text: str) -> bytes:
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


async def _handle(request: web.Request) -> web.StreamResponse:
    mode = request.app[MODE]["mode"]
    if mode == "429":
        return web.json_response(
            {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "7"}
        )
    if mode == "500":
        return web.json_response({"error": {"message": "boom"}}, status=500)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_chunk("partial "))
    if mode == "garbage":
        await resp.write(b"data: {not json\n\n")
    # "cut": the stream ends without a finish_reason or [DONE]
    return resp


@pytest.fixture
async def bad_server() -> AsyncIterator[tuple[web.Application, str]]:
    app = web.Application()
    app[MODE] = {"mode": "429"}
    app.router.add_post("/v1/chat/completions", _handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield app, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("429", RATE_LIMITED),
        ("500", LLM_UNAVAILABLE),
        ("garbage", LLM_BAD_RESPONSE),
        ("cut", LLM_BAD_RESPONSE),
    ],
)
async def test_error_mapping(bad_server: tuple[web.Application, str], mode: str, code: str) -> None:
    app, url = bad_server
    app[MODE]["mode"] = mode
    client = LLMClient(url, model="m")
    seen: list[str] = []
    with pytest.raises(LLMFailure) as info:
        await client.chat(parse_request({"prompt": "hi"}), on_text=lambda d, u: seen.append(d))
    await client.close()
    assert info.value.code == code and info.value.retryable
    if mode == "429":
        assert info.value.retry_after == 7.0
    if mode in ("garbage", "cut"):
        assert seen == ["partial "]  # what was streamed before the break was reported
