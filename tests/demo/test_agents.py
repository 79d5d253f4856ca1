"""The demo agents and the workload generator."""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import msgspec
import pytest
import sympy

from hivehub.agent import Agent, Result, TaskFailure
from hivehub.core.commands import TaskSpec
from hivehub.demo import DEMO_HANDLERS, demo_agents, demo_workload
from hivehub.demo.agents import TEXT_ANALYST_BUDGET
from hivehub.demo.workload import MIX, OPENING, factorize

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
    # it runs one task at a time and announces a prefetch of two to the hub
    assert dp.max_concurrent_tasks == 1 and dp.prefetch == 2 and dp.spec()["prefetch"] == 2
    assert set(ta.handlers) == {"text_analysis"} and ta.max_concurrent_tasks == 1
    assert ta.metadata["time_budget_seconds"] == TEXT_ANALYST_BUDGET
    assert gen.max_concurrent_tasks == 2 and set(gen.handlers) >= {"data_processing", "text_analysis", "math"}
    assert set(DEMO_HANDLERS) == {"data_processing", "text_analysis", "math", "numeric"}


async def test_demo_workload_submits_valid_task_specs() -> None:
    submitted: list[dict[str, Any]] = []

    async def submit(spec: dict[str, Any]) -> None:
        submitted.append(spec)

    n = await demo_workload(submit, seed=7, min_interval=0, max_interval=0, count=60, opening=False)
    assert n == len(submitted) == 60
    for spec in submitted:
        msgspec.convert(spec, TaskSpec)  # the hub accepts it
        assert spec["required_capabilities"][0]["name"] == spec["type"]
    assert {s["type"] for s in submitted} == {"data_processing", "text_analysis", "math"}


def _readable(description: str) -> bool:
    # a number in it, and it does not end on a dangling word ("Compute primes up to")
    return bool(re.search(r"\d", description)) and not re.search(r"\b(to|of|up|for)$", description)


def test_descriptions_read_well() -> None:
    rng = random.Random(5)
    descriptions = [maker(rng)["description"] for _, maker in MIX for _ in range(5)]
    descriptions += [maker(rng)["description"] for _, maker in OPENING]
    assert all(_readable(d) for d in descriptions), [d for d in descriptions if not _readable(d)]
    assert "Profile 120,000 sales orders" in descriptions
    assert any(re.fullmatch(r"Compute primes up to \d{3},\d{3}", d) for d in descriptions)
    assert any(re.fullmatch(r"Factorize \d numbers up to 10\^(12|24)", d) for d in descriptions)
    assert any(
        re.fullmatch(r"Analyze customer review #\d{4} \((positive|negative|mixed)\)", d) for d in descriptions
    )


def test_the_opening_minute() -> None:
    rng = random.Random(1)
    opening = [(at, maker(rng)) for at, maker in OPENING]
    for _, spec in opening:
        msgspec.convert(spec, TaskSpec)
    assert [s["description"] for _, s in opening[:3]] == ["Profile 120,000 sales orders"] * 3
    assert all(at == 0 for at, _ in opening[:3])
    reviews = [at for at, s in opening if s["description"].startswith("Analyze customer review #")]
    assert len([at for at in reviews if at < 45]) >= 22  # > 20 outcomes for TextAnalyst-1 to learn
    assert min(reviews) > 2.5  # none waiting when Generalist-1 joins (server/demo.py)
    kinds = {s["description"] for _, s in opening}
    assert "Analyze support chat archive (20,000 messages)" in kinds
    assert "Factorize 2 numbers up to 10^50" in kinds
    assert any(d.startswith("Profile ") and " sensor readings from " in d for d in kinds)
    assert opening[-1][0] < 60


def test_the_hard_factorization_is_a_product_of_two_large_primes() -> None:
    spec = factorize(random.Random(0), hard=True)
    n = spec["input"]["numbers"][0]
    assert len(str(n)) == 50
    for p in (1000000000000000000000007, 70000000000000000000000109):
        assert sympy.isprime(p) and n % p == 0


def _scaled_down(spec: dict[str, Any]) -> dict[str, Any]:
    """The same task on a small input, so every kind runs quickly here (the full
    sizes run in tests/demo/test_demo_run.py)."""
    spec = copy.deepcopy(spec)
    inp = spec["input"]
    if "dataset" in inp:
        inp["dataset"]["rows"] = min(inp["dataset"]["rows"], 500)
    if "corpus" in inp:
        inp["corpus"]["count"] = min(inp["corpus"]["count"], 20)
    if inp.get("operation") == "primes_up_to":
        inp["n"] = min(inp["n"], 20_000)
    if inp.get("operation") == "factorize" and "time_budget_seconds" in inp:
        inp["time_budget_seconds"] = 0.2
    return spec


@pytest.mark.parametrize("index", range(len(MIX)))
def test_every_kind_of_demo_task_is_handled(index: int) -> None:
    rng = random.Random(index)
    spec = _scaled_down(MIX[index][1](rng))
    ctx, seen = ctx_for(spec["input"], type=spec["type"])
    try:
        out = DEMO_HANDLERS[spec["type"]](ctx)
    except TaskFailure as f:  # the kinds that are meant to fail
        assert f.code in ("DATA_QUALITY", "FACTORIZATION_BUDGET_EXCEEDED"), f
        assert f.retryable is False
        return
    value = out.value if isinstance(out, Result) else out
    msgspec.json.encode(value)
    assert seen and seen[-1][0] == 1.0
