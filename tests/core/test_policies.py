"""Pure policies: agent scoring, retry backoff, queue ordering."""

from __future__ import annotations

import random

import pytest

from hivehub.core.model import (
    PRIORITY_NAMES,
    Agent,
    AgentMetrics,
    AgentType,
    Task,
    TaskStatus,
    priority_value,
)
from hivehub.core.policies import ScoreWeights, exponential_backoff, queue_key, score_agent

from ._harness import T0, caps, reqs


def agent(
    capabilities: dict[str, float] | None = None,
    *,
    ok: int = 0,
    failed: int = 0,
    load: int = 0,
    max_tasks: int = 1,
    agent_id: str = "a",
) -> Agent:
    return Agent(
        id=agent_id,
        name=agent_id,
        type=AgentType.WORKER,
        capabilities=caps(capabilities),
        status="active" if load else "idle",  # type: ignore[arg-type]
        max_concurrent_tasks=max_tasks,
        created_at=T0,
        last_seen_at=T0,
        metrics=AgentMetrics(tasks_completed=ok, tasks_failed=failed),
        current_tasks=[f"held-{i}" for i in range(load)],
    )


def task(requires: dict[str, float] | None = None, *, failed_agents: list[str] | None = None) -> Task:
    return Task(
        id="t",
        description="",
        type="general",
        priority=2,
        status=TaskStatus.PENDING,
        required_capabilities=reqs(requires),
        input=None,
        timeout_seconds=60,
        max_retries=3,
        created_at=T0,
        updated_at=T0,
        failed_agents=failed_agents or [],
    )


W = ScoreWeights()


class TestScoreAgent:
    def test_default_weights(self) -> None:
        assert (W.proficiency, W.reliability, W.availability, W.failed_before_penalty) == (0.5, 0.3, 0.2, 0.5)

    def test_new_idle_agent(self) -> None:
        score, breakdown = score_agent(agent({"x": 0.8}), task({"x": 0.5}), W)
        assert breakdown == {"proficiency": 0.8, "reliability": 0.5, "availability": 1.0}
        assert score == pytest.approx(0.5 * 0.8 + 0.3 * 0.5 + 0.2 * 1.0)

    def test_no_requirements_means_full_proficiency(self) -> None:
        score, breakdown = score_agent(agent({"x": 0.1}), task(), W)
        assert breakdown["proficiency"] == 1.0
        assert score == pytest.approx(0.5 + 0.15 + 0.2)

    def test_proficiency_is_the_mean_over_required_capabilities(self) -> None:
        _, breakdown = score_agent(agent({"x": 1.0, "y": 0.5, "z": 0.0}), task({"x": 0.1, "y": 0.1}), W)
        assert breakdown["proficiency"] == 0.75

    def test_missing_capability_counts_as_zero(self) -> None:
        _, breakdown = score_agent(agent({"x": 1.0}), task({"x": 0.1, "y": 0.1}), W)
        assert breakdown["proficiency"] == 0.5

    @pytest.mark.parametrize(
        ("ok", "failed", "expected"),
        [(0, 0, 0.5), (1, 0, 2 / 3), (0, 1, 1 / 3), (8, 0, 0.9), (3, 1, 4 / 6)],
    )
    def test_reliability_is_laplace_smoothed(self, ok: int, failed: int, expected: float) -> None:
        _, breakdown = score_agent(agent(ok=ok, failed=failed), task(), W)
        assert breakdown["reliability"] == pytest.approx(expected, abs=1e-4)

    @pytest.mark.parametrize(
        ("load", "max_tasks", "expected"), [(0, 4, 1.0), (1, 4, 0.75), (3, 4, 0.25), (1, 2, 0.5)]
    )
    def test_availability_is_free_share_of_slots(self, load: int, max_tasks: int, expected: float) -> None:
        _, breakdown = score_agent(agent(load=load, max_tasks=max_tasks), task(), W)
        assert breakdown["availability"] == expected

    def test_agent_that_failed_this_task_is_penalised(self) -> None:
        fresh, _ = score_agent(agent({"x": 0.8}), task({"x": 0.5}), W)
        again, breakdown = score_agent(agent({"x": 0.8}), task({"x": 0.5}, failed_agents=["a"]), W)
        assert again == pytest.approx(fresh * 0.5)
        assert breakdown["failed_before_penalty"] == 0.5
        other, b2 = score_agent(agent({"x": 0.8}, agent_id="b"), task({"x": 0.5}, failed_agents=["a"]), W)
        assert other == pytest.approx(fresh) and "failed_before_penalty" not in b2

    def test_custom_weights(self) -> None:
        w = ScoreWeights(proficiency=1.0, reliability=0.0, availability=0.0, failed_before_penalty=0.1)
        score, _ = score_agent(agent({"x": 0.6}, load=1, max_tasks=2), task({"x": 0.5}), w)
        assert score == pytest.approx(0.6)
        score, _ = score_agent(agent({"x": 0.6}), task({"x": 0.5}, failed_agents=["a"]), w)
        assert score == pytest.approx(0.06)

    def test_higher_proficiency_scores_higher_all_else_equal(self) -> None:
        lo, _ = score_agent(agent({"x": 0.6}), task({"x": 0.5}), W)
        hi, _ = score_agent(agent({"x": 0.9}), task({"x": 0.5}), W)
        assert hi > lo


class TestBackoff:
    @pytest.mark.parametrize(
        ("base", "cap", "n", "d"),
        [
            (1, 60, 1, 1),
            (1, 60, 2, 2),
            (1, 60, 3, 4),
            (1, 60, 6, 32),
            (1, 60, 7, 60),
            (1, 60, 30, 60),
            (0.5, 10, 4, 4),
        ],
    )
    def test_equal_jitter_within_half_and_full_capped_delay(
        self, base: float, cap: float, n: int, d: float
    ) -> None:
        delay = exponential_backoff(base, cap, random.Random(0))
        samples = [delay(n) for _ in range(500)]
        assert all(d / 2 <= x <= d for x in samples), (min(samples), max(samples))
        # jitter really spreads retries over the upper half
        assert min(samples) < d / 2 + d * 0.05
        assert max(samples) > d - d * 0.05

    def test_attempt_zero_is_treated_as_the_first(self) -> None:
        delay = exponential_backoff(2, 60, random.Random(0))
        assert all(1 <= delay(0) <= 2 for _ in range(100))

    def test_same_seed_same_delays(self) -> None:
        a = exponential_backoff(1, 60, random.Random(7))
        b = exponential_backoff(1, 60, random.Random(7))
        assert [a(n) for n in range(1, 10)] == [b(n) for n in range(1, 10)]


class TestQueueKey:
    def test_higher_priority_first(self) -> None:
        assert queue_key(1000.0, 4, 60) < queue_key(1000.0, 3, 60) < queue_key(1000.0, 1, 60)

    def test_earlier_first_within_a_priority(self) -> None:
        assert queue_key(1000.0, 2, 60) < queue_key(1000.5, 2, 60)

    def test_one_priority_level_per_aging_period(self) -> None:
        assert queue_key(1000.0, 1, 60) == queue_key(1060.0, 2, 60)
        assert queue_key(1000.0, 1, 60) < queue_key(1180.1, 4, 60)  # old low beats newer critical
        assert queue_key(1000.0, 1, 60) > queue_key(1179.9, 4, 60)

    def test_key_does_not_depend_on_now(self) -> None:
        # the order is fixed at enqueue time, so one heap serves forever
        assert queue_key(5.0, 3, 10) == 5.0 - 30


class TestPriorityNames:
    def test_names(self) -> None:
        assert PRIORITY_NAMES == {"low": 1, "medium": 2, "high": 3, "critical": 4}

    @pytest.mark.parametrize(
        ("given", "value"), [("low", 1), ("medium", 2), ("high", 3), ("critical", 4), (3, 3)]
    )
    def test_priority_value(self, given: int | str, value: int) -> None:
        assert priority_value(given) == value
