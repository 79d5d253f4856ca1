"""Prefetch (``core/prefetch.py``): assigned ahead of a free slot, sized from the
measured task time, recalled for an idle agent; every case ends with the live
hive equal to a replay of its log in every field."""

from __future__ import annotations

import random

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    AgentSpec,
    CancelTask,
    RegisterAgent,
    ReleaseTask,
)
from hivehub.core.hive import Hive
from hivehub.core.model import PREFETCH_WINDOW_MS, TaskStatus

from ._harness import NO_HEARTBEAT_EXPIRY, Ids, Sim, of
from ._state import differences, full_state

TS = TaskStatus


def register(s: Sim, agent_id: str, *, prefetch: int, slots: int = 1, t: float = 0) -> list[ev.Event]:
    spec = AgentSpec(name=agent_id, id=agent_id, max_concurrent_tasks=slots, prefetch=prefetch)
    return s.do(RegisterAgent(spec=spec), t)


def assert_replay_equal(s: Sim) -> None:
    replay = Hive(s.hive.config, new_id=Ids("other"), rng=random.Random(1))
    for e in s.log:
        replay.apply(e)
    live, folded = full_state(s.hive), full_state(replay)
    assert live == folded, "\n".join(differences(live, folded))


def held(s: Sim, agent_id: str) -> list[str]:
    return list(s.agent(agent_id).current_tasks)


def test_depth_is_one_until_a_completion_then_sized_from_the_task_time() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=3)
    for i in range(6):
        s.submit(f"t{i}", t=1)
    # one slot and, with no measured task time yet, one task ahead
    assert held(s, "a") == ["t0", "t1"]
    assigned = of(s.log, ev.TaskAssigned)
    assert [d.prefetched for d in assigned] == [False, True]
    s.start("t0", t=2)
    s.complete("t0", t=2.001)  # 1 ms: the full depth of 3 is used
    assert s.agent("a").prefetch_depth == 3
    assert held(s, "a") == ["t1", "t2", "t3", "t4"]
    assert [d.prefetched for d in of(s.log, ev.TaskAssigned)][2:] == [True, True, True]
    assert_replay_equal(s)


def test_slow_tasks_get_one_ahead_and_an_agent_without_prefetch_none() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "slow", prefetch=4)
    register(s, "old", prefetch=0)
    for i in range(8):
        s.submit(f"t{i}", t=1)
    assert len(held(s, "old")) == 1
    first = held(s, "slow")[0]
    s.start(first, t=2)
    s.complete(first, t=2 + 4 * PREFETCH_WINDOW_MS / 1000)  # far slower than the window
    assert s.agent("slow").prefetch_depth == 1 and len(held(s, "slow")) == 2
    assert s.agent("old").prefetch_depth == 0 and len(held(s, "old")) == 1
    assert_replay_equal(s)


def test_a_free_slot_wins_over_a_place_in_a_prefetch_queue() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=3)
    s.submit("t0", t=1)
    register(s, "b", prefetch=3, t=2)
    s.submit("t1", t=3)
    assert held(s, "a") == ["t0"] and held(s, "b") == ["t1"]
    assert_replay_equal(s)


def test_prefetched_work_is_recalled_for_an_idle_agent_and_runs_there() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=3)
    for i in range(3):
        s.submit(f"t{i}", t=1)
    s.start("t0", t=2)
    s.complete("t0", t=2.001)
    assert held(s, "a") == ["t1", "t2"]
    s.start("t1", t=3)
    # b joins with a free slot and nothing queued: a's newest unstarted task is recalled
    events = register(s, "b", prefetch=3, t=4)
    (r,) = of(events, ev.TaskRecalled)
    assert (r.task_id, r.agent_id, r.for_agent_id, r.attempt_number) == ("t2", "a", "b", 1)
    assert s.task("t2").status == TS.ASSIGNED and s.hive._recalls == {"t2": (1, "b")}
    # asked once: later commands do not recall it again
    assert not of(s.heartbeat("b", 5), ev.TaskRecalled)
    assert not of(s.tick(6), ev.TaskRecalled)
    # a hands it back (it had not started): it goes to b, a new attempt
    events = s.do(ReleaseTask(task_id="t2", agent_id="a", attempt=1, reason="recalled"), 7)
    (moved,) = of(events, ev.TaskAssigned)
    assert (moved.task_id, moved.agent_id, moved.attempt_number, moved.prefetched) == ("t2", "b", 2, False)
    assert s.hive._recalls == {}
    assert held(s, "a") == ["t1"] and held(s, "b") == ["t2"]
    assert_replay_equal(s)


def test_a_recall_crossed_by_the_start_is_dropped_and_the_task_stays() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=3)
    s.submit("t0", t=1)
    s.submit("t1", t=1)
    register(s, "b", prefetch=3, t=2)
    assert of(s.log, ev.TaskRecalled)[-1].task_id == "t1"
    # a finished t0 and started t1 before the recall reached it
    s.start("t0", t=3)
    s.complete("t0", t=3.001)
    s.start("t1", t=3.002)
    assert s.hive._recalls == {} and s.task("t1").status == TS.RUNNING
    assert held(s, "a") == ["t1"] and held(s, "b") == []
    assert_replay_equal(s)


def test_a_cancelled_prefetched_task_frees_its_place() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=1)
    for i in range(3):
        s.submit(f"t{i}", t=1)
    assert held(s, "a") == ["t0", "t1"]
    events = s.do(CancelTask(task_id="t1", reason="not needed"), 2)
    (c,) = of(events, ev.TaskCancelled)
    assert c.agent_id == "a" and c.previous_status == "assigned"
    # its place in the queue goes to the next ready task
    assert held(s, "a") == ["t0", "t2"] and s.task("t1").status == TS.CANCELLED
    assert_replay_equal(s)


def test_an_offline_holder_forgets_its_recalls_and_is_asked_again_when_back() -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    register(s, "a", prefetch=3)
    s.submit("t0", t=1)
    s.submit("t1", t=1)
    register(s, "b", prefetch=3, t=2)
    assert s.hive._recalls == {"t1": (1, "b")}
    s.do(AgentDisconnected(agent_id="a"), 3)
    assert s.hive._recalls == {}
    events = register(s, "a", prefetch=3, t=4)  # back within the heartbeat timeout
    assert [(r.task_id, r.for_agent_id) for r in of(events, ev.TaskRecalled)] == [("t1", "b")]
    assert_replay_equal(s)
