"""A no-code LLM agent (``llm_handler``) against the fake hub and the real model server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hivehub.agent.llm import LLMClient, llm_handler

from .conftest import make_agent
from .fakehub import FakeWsHub, make_task


@pytest.fixture
async def llm(llm_server: str) -> AsyncIterator[LLMClient]:
    client = LLMClient(llm_server, model="smollm2")
    yield client
    await client.close()


async def test_streamed_output_and_usage_reach_the_hub(hub: FakeWsHub, running: Any, llm: LLMClient) -> None:
    agent = make_agent(hub, capabilities={"summarize": 0.8}, llm=llm)
    agent.add_handler("summarize", llm_handler(system="Answer briefly."))
    await running(agent)
    await hub.assign(
        make_task("t1", type="summarize", input={"prompt": "Tell me about bees.", "max_tokens": 60})
    )
    done = await hub.wait("task_completed", task_id="t1", timeout=60)
    progress = hub.find("task_progress", task_id="t1")
    deltas = "".join(p["data"].get("output_delta") or "" for p in progress)
    assert deltas == done["data"]["result"]["text"] != ""
    usage = done["data"]["usage"]
    assert usage["model"] == "smollm2" and usage["completion_tokens"] >= 1
    # the last progress had every completion token; the prompt is counted after the
    # stream (llama-cpp-python reports none), so only the outcome carries it
    last = progress[-1]["data"]["usage"]
    assert (last["model"], last["completion_tokens"]) == (usage["model"], usage["completion_tokens"])
    assert usage["prompt_tokens"] > 0 and usage["prompt_tokens_source"] == "tokenizer"
    # coalesced: far fewer reports than tokens
    assert len(progress) < usage["completion_tokens"] or usage["completion_tokens"] <= 2


async def test_malformed_messages_fail_without_retry(hub: FakeWsHub, running: Any, llm: LLMClient) -> None:
    agent = make_agent(hub, capabilities={"summarize": 0.8}, llm=llm)
    agent.add_handler("summarize", llm_handler())
    await running(agent)
    await hub.assign(make_task("t2", type="summarize", input={"messages": [{"role": "bot"}]}))
    failed = await hub.wait("task_failed", task_id="t2", timeout=10)
    assert failed["data"]["error"]["code"] == "INVALID_INPUT" and failed["data"]["retryable"] is False


async def test_ask_round_trip_and_timeout_default(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)

    @agent.handler("data_processing")
    async def asks(ctx: Any) -> dict[str, Any]:
        yes = await ctx.ask("Proceed?", choices=["yes", "no"], timeout=30)
        later = await ctx.ask("Anything else?", timeout=5, default="nothing")
        return {"first": yes, "second": later}

    await running(agent)
    await hub.assign(make_task("t3"))
    req = await hub.wait("input_request", task_id="t3")
    assert req["data"]["question"] == "Proceed?" and req["data"]["choices"] == ["yes", "no"]
    assert req["data"]["timeout_seconds"] == 30
    base = {"task_id": "t3", "attempt": 1, "answered_by": "alice"}
    await hub.send(
        "input", {**base, "request_id": req["data"]["request_id"], "answer": "yes", "timed_out": False}
    )
    req2 = await hub.wait("input_request", task_id="t3", question="Anything else?")
    await hub.send(
        "input", {**base, "request_id": req2["data"]["request_id"], "answer": None, "timed_out": True}
    )
    done = await hub.wait("task_completed", task_id="t3")
    assert done["data"]["result"] == {"first": "yes", "second": "nothing"}


async def test_ask_timeout_without_default_fails(hub: FakeWsHub, running: Any) -> None:
    agent = make_agent(hub)

    @agent.handler("data_processing")
    async def asks(ctx: Any) -> str:
        return str(await ctx.ask("Proceed?", timeout=5))

    await running(agent)
    await hub.assign(make_task("t4"))
    req = await hub.wait("input_request", task_id="t4")
    data = {"task_id": "t4", "attempt": 1, "request_id": req["data"]["request_id"], "timed_out": True}
    await hub.send("input", {**data, "answer": None, "answered_by": "timeout"})
    failed = await hub.wait("task_failed", task_id="t4")
    assert failed["data"]["error"]["code"] == "INPUT_TIMEOUT" and failed["data"]["retryable"] is False


async def test_demo_summarizer_and_classifier(hub: FakeWsHub, running: Any, llm_server: str) -> None:
    from hivehub.demo.llm import classify, summarize

    llm = LLMClient(llm_server, model="smollm2", max_concurrent=1)
    agent = make_agent(hub, capabilities={"summarize": 0.7, "classify": 0.7}, llm=llm, max_concurrent_tasks=2)
    agent.add_handler("summarize", summarize)
    agent.add_handler("classify", classify)
    await running(agent)
    text = "The new library is fast, friendly and well documented. Everyone loves it."
    await hub.assign(make_task("s1", type="summarize", input={"text": text}))
    await hub.assign(
        make_task("c1", type="classify", input={"text": text, "labels": ["positive", "negative"]})
    )
    s = await hub.wait("task_completed", task_id="s1", timeout=60)
    c = await hub.wait("task_completed", task_id="c1", timeout=60)
    assert s["data"]["result"]["summary"]
    assert c["data"]["result"]["label"] in ("positive", "negative")
    assert c["data"]["usage"]["completion_tokens"] >= 1
    await llm.close()


async def test_hub_cancel_closes_the_model_stream(hub: FakeWsHub, running: Any, llm: LLMClient) -> None:
    agent = make_agent(hub, capabilities={"summarize": 0.8}, llm=llm)
    agent.add_handler("summarize", llm_handler())
    await running(agent)
    task = make_task("t5", type="summarize", input={"prompt": "Write a very long story.", "max_tokens": 400})
    await hub.assign(task)
    await hub.wait("task_progress", task_id="t5", timeout=30)
    await hub.cancel("t5")
    await hub.wait_until(lambda: "t5" not in agent.running_tasks, timeout=1.0)
    n = len(hub.find("task_progress", task_id="t5"))
    await asyncio.sleep(0.5)  # nothing more comes: the stream is closed
    assert len(hub.find("task_progress", task_id="t5")) == n
    assert not hub.find("task_completed", task_id="t5") and not hub.find("task_failed", task_id="t5")
