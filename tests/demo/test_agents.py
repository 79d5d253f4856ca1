"""The demo agents and the workload generator."""

from __future__ import annotations

import random
from typing import Any

import msgspec

from hivehub.agent import Agent, Result
from hivehub.core.commands import TaskSpec
from hivehub.demo import (
    DEMO_HANDLERS,
    demo_agents,
    demo_workload,
    make_demo_task,
)

from .helpers import ctx_for


def test_demo_agents() -> None:
    agents = demo_agents("http://127.0.0.1:3999")
    assert [a.name for a in agents] == ["DataProcessor-1", "TextAnalyst-1", "Generalist-1"]
    assert [a.agent_id for a in agents] == ["demo-dataprocessor-1", "demo-textanalyst-1", "demo-generalist-1"]
    assert all(isinstance(a, Agent) and a.url == "ws://127.0.0.1:3999/agents/ws" for a in agents)
    dp, ta, gen = agents
    assert str(dp.type) == "specialist" and {c.name: c.proficiency for c in dp.capabilities} == {
        "data_processing": 0.9,
        "text_analysis": 0.4,
    }
    assert set(ta.handlers) == {"text_analysis"}
    assert gen.max_concurrent_tasks == 2 and set(gen.handlers) >= {"data_processing", "text_analysis", "math"}
    assert set(DEMO_HANDLERS) == {"data_processing", "text_analysis", "math", "numeric"}


async def test_demo_workload_submits_valid_task_specs() -> None:
    submitted: list[dict[str, Any]] = []

    async def submit(spec: dict[str, Any]) -> None:
        submitted.append(spec)

    assert await demo_workload(submit, seed=7, min_interval=0, max_interval=0, count=12) == 12
    assert len(submitted) == 12
    for spec in submitted:
        msgspec.convert(spec, TaskSpec)  # the hub accepts it
        assert spec["required_capabilities"][0]["name"] == spec["type"]
    assert {s["type"] for s in submitted} == {"data_processing", "text_analysis", "math"}


def test_every_demo_task_is_handled() -> None:
    rng = random.Random(3)
    for _ in range(30):
        spec = make_demo_task(rng)
        ctx, seen = ctx_for(spec["input"], type=spec["type"])
        out = DEMO_HANDLERS[spec["type"]](ctx)
        value = out.value if isinstance(out, Result) else out
        msgspec.json.encode(value)
        assert seen and seen[-1][0] == 1.0
