"""Tokens and cost: the hub prices what agents report, and folds totals per agent,
model, task type and owner (``core/usage.py``)."""

from __future__ import annotations

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import SubmitTask, TaskSpec
from hivehub.core.errors import InvalidInput
from hivehub.core.hive import HiveConfig
from hivehub.core.model import ModelPrice, Task, TaskStatus, Usage, UsageReport, UsageTotals
from hivehub.core.usage import estimate_tokens, price_for, usage_of

from ._harness import Sim, of, one

PRICES = {
    "gpt-big": ModelPrice(input_per_million=10.0, output_per_million=30.0),
    "*": ModelPrice(input_per_million=1.0, output_per_million=2.0),
}
CONFIG = HiveConfig(heartbeat_timeout=10_000.0, prices=PRICES, performance_interval=0.0)


def report(model: str = "gpt-big", prompt: int = 1000, completion: int = 500) -> UsageReport:
    return UsageReport(model=model, prompt_tokens=prompt, completion_tokens=completion)


def test_cost_comes_from_the_price_table_and_the_star_entry() -> None:
    big = usage_of(report("gpt-big", 1000, 500), PRICES)
    assert big == Usage("gpt-big", 1000, 500, 1500, cost_usd=0.025)  # 0.01 + 0.015
    other = usage_of(report("llama", 1_000_000, 1_000_000), PRICES)
    assert other.cost_usd == 3.0
    assert price_for(PRICES, "llama") is PRICES["*"]


def test_an_unknown_model_has_no_cost_and_counts_as_unpriced() -> None:
    prices = {"gpt-big": PRICES["gpt-big"]}
    u = usage_of(report("mystery", 7, 3), prices)
    assert u.cost_usd is None and u.total_tokens == 10
    sim = Sim(HiveConfig(heartbeat_timeout=10_000.0, prices=prices))
    sim.register("a")
    sim.submit("t1")
    done = sim.complete("t1", t=1, usage=report("mystery", 7, 3))
    assert one(done, ev.TaskCompleted).usage == u
    assert sim.hive.usage_by_model["mystery"] == UsageTotals(
        requests=1, prompt_tokens=7, completion_tokens=3, total_tokens=10, cost_usd=0.0, unpriced_tokens=10
    )


def test_cost_is_rounded_to_a_nano_dollar() -> None:
    u = usage_of(report("x", 1, 1), {"*": ModelPrice(input_per_million=0.1234567891, output_per_million=0.0)})
    assert u.cost_usd == 1.23e-07  # 1.2345...e-07, to 1e-9


def test_totals_per_agent_model_type_and_owner() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.register("b")
    sim.do(SubmitTask(spec=TaskSpec(id="t1", type="summarize"), created_by="alice"), 0)
    sim.do(SubmitTask(spec=TaskSpec(id="t2", type="classify"), created_by="alice"), 0)
    sim.do(SubmitTask(spec=TaskSpec(id="t3", type="summarize")), 0)
    done = sim.complete("t1", t=1, usage=report("gpt-big", 1000, 500))
    sim.complete("t2", t=1, usage=report("llama", 100, 50))
    # the agent's performance report carries its usage so far
    perf = one(done, ev.AgentPerformanceUpdated)
    assert perf.metrics.usage is not None and perf.metrics.usage.total_tokens == 1500
    sim.tick(2)  # t3 goes to whichever agent is free
    sim.complete("t3", t=3, usage=report("gpt-big", 10, 10))
    h = sim.hive
    by_agent = {a.id: a.metrics.usage.total_tokens for a in h.agents.values()}
    assert sum(by_agent.values()) == 1500 + 150 + 20
    assert h.usage_by_model["gpt-big"].requests == 2
    assert h.usage_by_model["gpt-big"].total_tokens == 1520
    assert h.usage_by_model["llama"].cost_usd == pytest.approx(0.0002)
    assert h.usage_by_type["summarize"].total_tokens == 1520
    assert h.usage_by_type["classify"].total_tokens == 150
    assert h.usage_by_owner["alice"].total_tokens == 1650
    assert h.usage_by_owner["anonymous"].total_tokens == 20
    summary = h.usage_summary()
    assert summary["total"]["total_tokens"] == 1670
    assert summary["total"]["cost_usd"] == pytest.approx(0.025 + 0.0002 + 0.0004)
    assert set(summary["by_owner"]) == {"alice", "anonymous"}


def test_task_usage_sums_every_attempt_and_failures_carry_usage() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1", max_retries=2)
    failed = sim.fail("t1", t=1, usage=report("gpt-big", 100, 0))
    assert one(failed, ev.TaskFailed).usage == Usage("gpt-big", 100, 0, 100, 0.001)
    sim.tick(5)
    sim.complete("t1", t=6, usage=report("gpt-big", 200, 100))
    t = sim.task("t1")
    assert t.status == TaskStatus.COMPLETED
    assert t.usage == Usage("gpt-big", 300, 100, 400, cost_usd=0.006)
    assert sim.hive.usage_by_model["gpt-big"].requests == 2


def test_streamed_output_is_the_concatenation_of_the_deltas_of_the_current_attempt() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1", max_retries=1)
    sim.progress("t1", 0.1, t=1, output_delta="Hello, ")
    e = sim.progress("t1", 0.2, t=2, output_delta="world", usage=report("gpt-big", 10, 2))
    p = one(e, ev.TaskProgress)
    assert p.output_delta == "world" and p.usage is not None and p.usage.total_tokens == 12
    assert sim.task("t1").output == "Hello, world"
    # the attempt fails without a usage report: the latest progress usage is its usage
    failed = sim.fail("t1", t=3)
    assert one(failed, ev.TaskFailed).usage == p.usage
    sim.tick(10)
    assert sim.task("t1").status == TaskStatus.ASSIGNED
    assert sim.task("t1").output == ""  # a new attempt streams its own output
    sim.progress("t1", 0.5, t=11, output_delta="Bonjour")
    assert sim.task("t1").output == "Bonjour"


def test_output_past_the_cap_is_refused() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1")
    chunk = "x" * 65_536
    for i in range(16):
        sim.progress("t1", 0.5, t=1 + i, output_delta=chunk)
    assert len(sim.task("t1").output) == 1_048_576
    with pytest.raises(InvalidInput):
        sim.progress("t1", 0.6, t=20, output_delta="y")
    sim.progress("t1", 0.7, t=21)  # a report without output still passes


def test_a_cancel_carries_the_usage_reported_so_far() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1")
    sim.progress("t1", 0.3, t=1, output_delta="partial", usage=report("gpt-big", 50, 5))
    from hivehub.core.commands import CancelTask

    cancelled = sim.do(CancelTask(task_id="t1", cancelled_by="op"), 2)
    u = one(cancelled, ev.TaskCancelled).usage
    assert u is not None and u.total_tokens == 55
    assert sim.task("t1").usage == u
    assert sim.task("t1").output == "partial"  # kept: nothing produced is lost
    assert sim.agent("a").metrics.usage.total_tokens == 55


def test_a_rate_limited_failure_does_not_count_against_the_agent() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1", max_retries=0)
    out = sim.fail("t1", t=1, code="RATE_LIMITED", retry_after=2.0)
    f = one(out, ev.TaskFailed)
    assert f.failure_kind == "rate_limited" and f.retry_scheduled
    assert sim.agent("a").metrics.tasks_failed == 0
    assert of(out, ev.AgentPerformanceUpdated) == []


def _task(**kw: object) -> Task:
    sim = Sim()
    sim.submit("t", **kw)
    return sim.task("t")


def test_the_token_estimate_order() -> None:
    history = UsageTotals(requests=4, total_tokens=1000)
    assert estimate_tokens(_task(estimated_tokens=42, max_tokens=900), history, 500) == 42
    assert estimate_tokens(_task(max_tokens=900), history, 500) == 250
    assert estimate_tokens(_task(max_tokens=900), None, 500) == 900
    assert estimate_tokens(_task(), UsageTotals(), 500) == 500


def test_the_estimate_follows_the_history_of_the_type() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1", type="summarize")
    sim.complete("t1", t=1, usage=report("gpt-big", 300, 100))
    from hivehub.core.quotas import reservation

    sim.submit("t2", type="summarize", t=2)
    assert reservation(sim.hive, sim.task("t2"), None).tokens == 400


def test_prompt_tokens_source_is_carried_and_old_logs_still_decode() -> None:
    import msgspec

    counted = usage_of(UsageReport("m", 40, 2, prompt_tokens_source="tokenizer"), PRICES)
    assert counted.prompt_tokens_source == "tokenizer"
    # an event logged before the field existed decodes with the source unsaid
    old = msgspec.json.decode(
        b'{"model": "m", "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}', type=Usage
    )
    assert old.prompt_tokens_source is None
    # over attempts the sum is as certain as its least certain part
    from hivehub.core.usage import add_usage

    server = usage_of(UsageReport("m", 10, 1, prompt_tokens_source="server"), PRICES)
    assert add_usage(server, counted).prompt_tokens_source == "tokenizer"
    assert add_usage(old, server).prompt_tokens_source == "server"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"model": "m", "prompt_tokens_source": "guess"}', type=UsageReport)
