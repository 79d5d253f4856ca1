"""Rebalancing decisions of the coordinator, with literal times."""

from __future__ import annotations

import pytest

from hivehub.core import events as ev
from hivehub.core.coordination import CoordinationConfig, Move, efficiency_improvement
from hivehub.core.hive import HiveConfig
from hivehub.core.learning import LearningConfig

from ._harness import Sim, of, one

CFG = HiveConfig(
    coordination=CoordinationConfig(interval_seconds=5, min_unstarted_seconds=2, margin=0.2),
    learning=LearningConfig(enabled=False),
    heartbeat_timeout=1000,
)


def _history(sim: Sim, agent: str, ms: float, t: float) -> float:
    """Give ``agent`` one completed task of type work taking ``ms``."""
    tid = f"h-{agent}-{t}"
    sim.submit(tid, {"dp": 0.1}, t=t, type="work")
    assert sim.holder(tid) == agent
    sim.start(tid, t=t)
    sim.complete(tid, t=t + ms / 1000)
    return t + ms / 1000 + 1


def test_unstarted_work_moves_from_a_slow_agent_to_an_idle_one() -> None:
    sim = Sim(CFG)
    sim.register("slow", {"dp": 0.9}, max_tasks=3)
    t = _history(sim, "slow", 4000, 1)
    for i in range(3):
        sim.submit(f"w{i}", {"dp": 0.5}, t=t, type="work")
    assert all(sim.holder(f"w{i}") == "slow" for i in range(3))
    sim.start("w0", t=t)  # it runs one; w1, w2 wait unstarted
    sim.register("fast", {"dp": 0.6}, t=t + 0.5, max_tasks=2)
    out = sim.tick(t + 3)  # waited 3 s > min_unstarted 2 s, trigger: agent_joined
    coord = one(out, ev.CoordinationEvent)
    assert coord.event_type == "SwarmOptimization"
    assert coord.module == "coordinator"
    d = coord.details
    assert d["optimization_type"] == "load_balancing"
    assert d["tasks_moved"] == 2
    assert d["agents_rebalanced"] == 2
    # before: max(waited 3000, mean 4000 * running 1 ... ) + 4000; after: fast has no history -> hive mean 4000
    assert d["predicted_completion_before_ms"] > d["predicted_completion_after_ms"]
    assert d["efficiency_improvement"] == pytest.approx(
        round(
            (d["predicted_completion_before_ms"] - d["predicted_completion_after_ms"])
            / d["predicted_completion_before_ms"],
            4,
        )
    )
    moved = of(out, ev.TaskAssigned)
    assert {m.task_id for m in moved} == {"w1", "w2"}
    assert all(
        m.assignment_reason == "rebalanced" and m.previous_agent_id == "slow" and m.agent_id == "fast"
        for m in moved
    )
    assert all(m.attempt_number == 2 for m in moved)
    assert sim.agent("slow").current_tasks == ["w0"]
    assert sorted(sim.agent("fast").current_tasks) == ["w1", "w2"]
    msg = one(out, ev.InterModuleMessage)
    assert (msg.from_module, msg.to_module, msg.message_type) == (
        "coordinator",
        "task_management",
        "RebalanceRequest",
    )
    # the old holder's late report of the moved attempt is stale
    from hivehub.core.errors import NotTaskHolder

    with pytest.raises(NotTaskHolder):
        sim.start("w1", "slow", t=t + 4, attempt=1)


def test_no_move_before_min_unstarted_or_without_gain() -> None:
    sim = Sim(CFG)
    sim.register("b", {"dp": 0.5})
    t = _history(sim, "b", 8000, 1)  # b is much slower than a
    sim.register("a", {"dp": 1.0}, t=t, max_tasks=2)
    t = _history(sim, "a", 1000, t)
    sim.tick(t)  # the join trigger is spent with nothing to move
    sim.submit("w0", {"dp": 0.5}, t=t, type="work")
    sim.submit("w1", {"dp": 0.5}, t=t, type="work")
    assert sim.holder("w1") == "a"  # a outscores b
    sim.start("w0", t=t)
    assert not of(sim.tick(t + 1), ev.CoordinationEvent)  # waited 1 s < min_unstarted 2 s
    # waited 5.5 s: a is predicted max(5500, 1000) + 1000 = 6500 ms, b 8000 ms: stays
    assert not of(sim.tick(t + 5.5), ev.CoordinationEvent)
    assert sim.holder("w1") == "a"
    # later a is evidently stuck: max(12000, 1000) + 1000 > 8000 / 0.8 -> moves to b
    out = sim.tick(t + 12)
    assert one(out, ev.CoordinationEvent).details["trigger"] == "periodic"
    assert sim.holder("w1") == "b"


def test_no_move_to_an_agent_lacking_the_capability() -> None:
    sim = Sim(CFG)
    sim.register("a", {"dp": 0.9}, max_tasks=2)
    sim.submit("w0", {"dp": 0.5}, t=1)
    sim.submit("w1", {"dp": 0.5}, t=1)
    sim.start("w0", t=1)
    sim.register("b", {"other": 0.9}, t=1)
    assert not of(sim.tick(10), ev.CoordinationEvent)
    assert sim.holder("w1") == "a"


def test_efficiency_improvement_is_computed_from_predictions() -> None:
    moves = [Move("t1", "a", "b", 4000, 1000), Move("t2", "a", "c", 6000, 3000)]
    assert efficiency_improvement(moves) == pytest.approx((10000 - 4000) / 10000)
    assert efficiency_improvement([]) == 0.0
