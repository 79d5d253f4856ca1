"""The learning formula and learning cycles, with literal times."""

from __future__ import annotations

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import CompleteLearning, ResetLearning
from hivehub.core.errors import AgentNotFound, InvalidInput, InvalidTransition
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.learning import LearningConfig, outcome_score, updated_proficiency

from ._harness import Sim, of, one


def test_formula_moves_toward_observed_at_learning_rate() -> None:
    assert updated_proficiency(0.8, 0.1, [1.0, 1.0]) == pytest.approx(0.82)
    assert updated_proficiency(0.8, 0.5, [0.0]) == pytest.approx(0.4)
    assert updated_proficiency(0.5, 1.0, [0.7, 0.9]) == pytest.approx(0.8)


@pytest.mark.parametrize("old", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("rate", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("scores", [[0.0], [1.0], [0.0, 1.0, 0.5]])
def test_formula_is_bounded(old: float, rate: float, scores: list[float]) -> None:
    assert 0.0 <= updated_proficiency(old, rate, scores) <= 1.0


def test_formula_is_monotone_in_outcomes() -> None:
    worse = updated_proficiency(0.6, 0.3, [1.0, 0.0, 0.0])
    better = updated_proficiency(0.6, 0.3, [1.0, 1.0, 0.0])
    assert better > worse


def test_outcome_scores() -> None:
    assert outcome_score(False, 0.9) == 0.0
    assert outcome_score(True, None) == 1.0
    assert outcome_score(True, 0.7) == 0.7


def _run(sim: Sim, agent: str, n: int, *, fail: bool, t0: float, quality: float | None = None) -> float:
    t = t0
    for i in range(n):
        tid = f"{agent}-{t0}-{i}"
        sim.submit(tid, {"dp": 0.1}, t=t, max_retries=0)
        assert sim.task(tid).assigned_agent_id == agent
        sim.start(tid, t=t + 0.5)
        if fail:
            sim.fail(tid, t=t + 1, retryable=False)
        else:
            sim.complete(tid, t=t + 1, quality=quality)
        t += 2
        if sim.hive.cycles:
            (cid,) = list(sim.hive.cycles)
            sim.do(CompleteLearning(cycle_id=cid), t)
    return t


def test_cycle_after_n_outcomes_lowers_a_failing_agents_proficiency() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=3)))
    sim.register("a", {"dp": 0.8})
    t = 1.0
    for i in range(3):
        sim.submit(f"t{i}", {"dp": 0.5}, t=t, max_retries=0)
        sim.start(f"t{i}", t=t + 0.5)
        out = sim.fail(f"t{i}", t=t + 1, retryable=False)
        t += 2
    started = one(out, ev.LearningCycleStarted)
    assert started.agent_id == "a"
    assert started.target_capability == "dp"
    assert started.learning_type == "capability_improvement"
    assert started.estimated_duration_minutes == 0.0  # no earlier cycle to estimate from
    assert [s.new_status for s in of(out, ev.AgentStatusChanged)][-1] == "learning"
    assert sim.agent("a").status == "learning"

    done = sim.do(CompleteLearning(cycle_id=started.cycle_id), t + 0.25)
    c = one(done, ev.LearningCycleCompleted)
    imp = c.improvements["dp_proficiency"]
    assert imp.old_value == 0.8
    assert imp.new_value == pytest.approx(0.8 + 0.1 * (0.0 - 0.8))
    assert imp.improvement == pytest.approx(imp.new_value - imp.old_value)
    assert c.duration_ms == pytest.approx((t + 0.25 - (t - 2 + 1)) * 1000)
    assert sim.agent("a").capability("dp").proficiency == pytest.approx(0.72)
    assert sim.agent("a").status == "idle"
    perf = of(done, ev.AgentPerformanceUpdated)[-1]
    assert perf.metrics.capability_improvements == 0  # a loss is not an improvement


def test_successes_with_quality_raise_proficiency_and_count_improvements() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=2)))
    sim.register("a", {"dp": 0.5})
    _run(sim, "a", 2, fail=False, t0=1, quality=0.9)
    assert sim.agent("a").capability("dp").proficiency == pytest.approx(0.5 + 0.1 * (0.9 - 0.5))
    assert sim.agent("a").metrics.capability_improvements == 1
    perf = of(sim.log, ev.AgentPerformanceUpdated)[-1]
    assert perf.metrics.capability_improvements == 1


def test_failing_agent_loses_work_to_a_better_one_and_drops_below_threshold() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=2)))
    sim.register("bad", {"dp": 0.95})
    t = _run(sim, "bad", 12, fail=True, t0=1)
    assert sim.agent("bad").capability("dp").proficiency < 0.7
    sim.register("good", {"dp": 0.75}, t=t)
    sim.submit("x", {"dp": 0.7}, t=t + 1)
    assert sim.task("x").assigned_agent_id == "good"
    # replay gives the same learned proficiency
    from hivehub.core.hive import Hive

    h2 = Hive()
    for raw in sim.wire:
        h2.apply(ev.decode_event(raw))
    assert h2.agents["bad"].capability("dp").proficiency == sim.agent("bad").capability("dp").proficiency


def test_interval_trigger_with_few_outcomes() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=100, interval_seconds=60)))
    sim.register("a", {"dp": 0.5})
    sim.submit("t", {"dp": 0.1}, t=1)
    sim.start("t", t=2)
    assert not of(sim.complete("t", t=3), ev.LearningCycleStarted)
    sim.heartbeat("a", 30)
    assert not of(sim.tick(30), ev.LearningCycleStarted)
    sim.heartbeat("a", 61)
    assert of(sim.tick(61), ev.LearningCycleStarted)


def test_completing_an_unknown_cycle_is_rejected() -> None:
    sim = Sim()
    with pytest.raises(InvalidTransition):
        sim.do(CompleteLearning(cycle_id="nope"), 1)


def test_learning_agent_gets_no_new_work_until_the_cycle_ends() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=1)))
    sim.register("a", {"dp": 0.5})
    sim.submit("t1", {"dp": 0.1}, t=1)
    sim.start("t1", t=2)
    out = sim.complete("t1", t=3)
    cid = one(out, ev.LearningCycleStarted).cycle_id
    sim.submit("t2", {"dp": 0.1}, t=4)
    assert sim.task("t2").status == "pending"
    out = sim.do(CompleteLearning(cycle_id=cid), 5)
    assert sim.task("t2").assigned_agent_id == "a"


# ---------------------------------------------------------------- declared vs learned


def _learned(sim: Sim, agent: str = "a", *, quality: float = 1.0) -> float:
    """Let ``agent`` (declared dp 0.9) learn upward; returns the learned value."""
    _run(sim, agent, 2, fail=False, t0=1, quality=quality)
    learned = sim.agent(agent).capability("dp").proficiency
    assert learned == pytest.approx(0.9 + 0.1 * (quality - 0.9))
    return learned


def _replayed(sim: Sim) -> Hive:
    h2 = Hive(sim.hive.config)
    for raw in sim.wire:
        h2.apply(ev.decode_event(raw))
    return h2


def test_registering_again_with_the_same_prior_keeps_the_learned_value() -> None:
    # every reconnect and hub restart re-sends the numbers the agent was started with
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=2)))
    sim.register("a", {"dp": 0.9})
    learned = _learned(sim)
    out = sim.register("a", {"dp": 0.9}, t=100)
    assert not of(out, ev.AgentUpdated)
    cap = sim.agent("a").capability("dp")
    assert cap.proficiency == learned
    assert cap.declared_proficiency == 0.9
    # a change elsewhere in the spec is an agent_updated that still keeps it
    out = sim.register("a", {"dp": 0.9}, t=101, max_tasks=3)
    upd = one(out, ev.AgentUpdated)
    assert upd.capabilities is not None
    assert (upd.capabilities[0].proficiency, upd.capabilities[0].declared_proficiency) == (learned, 0.9)
    assert sim.agent("a").capability("dp").proficiency == learned
    assert _replayed(sim).agents["a"].capabilities == sim.agent("a").capabilities


def test_a_changed_prior_replaces_the_learned_value() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=2)))
    sim.register("a", {"dp": 0.9, "ta": 0.5})
    learned = _learned(sim)
    out = sim.register("a", {"dp": 0.6, "ta": 0.5}, t=100)
    upd = one(out, ev.AgentUpdated)
    assert upd.capabilities is not None
    got = {c.name: (c.proficiency, c.declared_proficiency) for c in upd.capabilities}
    assert got == {"dp": (0.6, 0.6), "ta": (0.5, 0.5)}
    assert learned != 0.6
    assert sim.agent("a").capability("dp").proficiency == 0.6
    assert _replayed(sim).agents["a"].capabilities == sim.agent("a").capabilities


def test_operator_reset_goes_back_to_the_prior_and_is_logged() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=2)))
    sim.register("a", {"dp": 0.9})
    learned = _learned(sim)
    # one more outcome waits for a cycle; the reset discards it with the learned value
    _run(sim, "a", 1, fail=True, t0=20)
    assert not sim.hive.cycles
    assert list(sim.hive.outcomes["a"]["dp"]) == [0.0]
    out = sim.do(ResetLearning(id="op-1", agent_id="a", requested_by="operator"), 50)
    reset = one(out, ev.AgentLearningReset)
    assert reset.caused_by == "op-1"
    assert reset.requested_by == "operator"
    assert reset.capabilities["dp"].old_value == learned
    assert reset.capabilities["dp"].new_value == 0.9
    assert sim.agent("a").capability("dp").proficiency == 0.9
    assert "a" not in sim.hive.outcomes
    h2 = _replayed(sim)
    assert h2.agents["a"].capabilities == sim.agent("a").capabilities
    assert h2.outcomes == sim.hive.outcomes


def test_reset_of_unknown_agent_or_capability_is_refused_before_anything_changes() -> None:
    sim = Sim()
    sim.register("a", {"dp": 0.9})
    with pytest.raises(AgentNotFound):
        sim.do(ResetLearning(agent_id="nope"), 1)
    with pytest.raises(InvalidInput):
        sim.do(ResetLearning(agent_id="a", capabilities=["dp", "cooking"]), 1)
    assert not of(sim.log, ev.AgentLearningReset)


def test_reset_during_a_cycle_leaves_the_reset_value_alone() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=1)))
    sim.register("a", {"dp": 0.5})
    sim.submit("t1", {"dp": 0.1}, t=1)
    sim.start("t1", t=2)
    cid = one(sim.complete("t1", t=3, quality=1.0), ev.LearningCycleStarted).cycle_id
    sim.do(ResetLearning(agent_id="a"), 4)
    done = one(sim.do(CompleteLearning(cycle_id=cid), 5), ev.LearningCycleCompleted)
    assert done.improvements == {}
    assert sim.agent("a").capability("dp").proficiency == 0.5


# ---------------------------------------------------------------- bounded outcome windows


def _complete_many(sim: Sim, n: int) -> None:
    for i in range(n):
        sim.submit(f"t{i}", {"dp": 0.1}, t=i)
        sim.complete(f"t{i}", t=i + 0.5)


def test_with_learning_off_no_outcome_is_kept() -> None:
    sim = Sim(HiveConfig(learning=LearningConfig(enabled=False)))
    sim.register("a", {"dp": 0.5})
    _complete_many(sim, 300)
    assert sim.agent("a").metrics.tasks_completed == 300
    assert sim.hive.outcomes == {}


def test_outcomes_waiting_for_a_cycle_keep_only_the_newest_window() -> None:
    # a cycle starts and is never completed: the agent stays learning, its running
    # tasks still finish, and their outcomes wait for a next cycle
    sim = Sim(HiveConfig(learning=LearningConfig(min_outcomes=1, max_window=10)))
    sim.register("a", {"dp": 0.5}, max_tasks=200)
    for i in range(200):
        sim.submit(f"t{i}", {"dp": 0.1}, t=1)
    assert of(sim.complete("t0", t=2), ev.LearningCycleStarted)
    for i in range(1, 200):
        sim.complete(f"t{i}", t=3, quality=i / 200)
    assert sim.agent("a").status == "learning"
    kept = sim.hive.outcomes["a"]["dp"]
    assert list(kept) == [i / 200 for i in range(190, 200)]
    assert list(_replayed(sim).outcomes["a"]["dp"]) == list(kept)
