"""The composed ``Hive`` (``core/hive.py``): the log it writes replays to the same
hive, and two clocks (synchronous, literal clock). Agent and task decisions are
tested in ``test_agents.py``, ``test_tasks.py`` and ``test_tick.py``."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    AgentPatch,
    CancelTask,
    CompleteTask,
    Recover,
    ReleaseTask,
    RemoveAgent,
    RetryTask,
    SubmitTask,
    TaskSpec,
    UpdateAgent,
)
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import TaskStatus

from ._harness import Ids, Sim, at, caps, of, one, types


def busy_history(retain_finished: int = 10_000) -> Sim:
    """A history touching every kind of state change the core makes."""
    s = Sim(HiveConfig(heartbeat_timeout=15, retain_finished=retain_finished))
    s.register("a", {"x": 0.9, "y": 0.5}, t=0, max_tasks=2)
    s.register("b", {"x": 0.6}, t=0)
    s.submit("root", {"x": 0.5}, t=1, type="etl")
    s.submit("child", {"x": 0.5}, t=1, depends_on=["root"], priority="high")
    s.submit("grandchild", t=1, depends_on=["child"])
    s.submit("doomed", {"x": 0.5}, t=1, max_retries=0)
    s.submit("nobody", {"z": 0.1}, t=1)
    s.start("root", t=2)
    s.progress("root", 0.25, t=3)
    s.complete("root", t=4, result={"ok": True})
    s.fail("doomed", t=4, retryable=False)
    s.submit("late", t=5, depends_on=["doomed"])
    s.submit("flaky", {"x": 0.5}, t=5, max_retries=3, timeout_seconds=4)
    for agent_id in ("a", "b"):
        s.heartbeat(agent_id, t=6)
    holder = s.holder("flaky")
    f = one(s.fail("flaky", holder, t=6), ev.TaskFailed)
    assert f.next_retry_at is not None
    s.tick(f.next_retry_at)
    s.tick(20)  # flaky times out; the agents are heard at 6, still online
    s.do(CancelTask(task_id="nobody", cancelled_by="u"), 21)
    s.do(RetryTask(task_id="nobody"), 21)
    s.do(UpdateAgent(agent_id="b", patch=AgentPatch(capabilities=caps({"x": 0.6, "z": 0.5}))), 21)
    s.do(AgentDisconnected(agent_id="a"), 22)
    s.register("c", {"x": 0.99}, t=22, max_tasks=3)
    s.heartbeat("c", t=30)
    s.tick(40)  # a (disconnected) and b are silent: their tasks fail with AGENT_LOST
    s.heartbeat("c", t=44)
    s.tick(45)  # ... and are retried on c; flaky times out again
    s.heartbeat("c", t=49)
    s.tick(50)
    s.do(RemoveAgent(agent_id="b"), 50)
    assert s.agent("c").current_tasks == ["child", "flaky"]
    s.start("child", t=50)
    s.do(ReleaseTask(task_id="flaky", agent_id="c", attempt=s.task("flaky").attempt), 50)
    s.do(Recover(), 52)
    s.register("c", {"x": 0.99}, t=53, max_tasks=3, running={})
    lost = s.task("child").error
    assert lost is not None and lost.code == "AGENT_LOST"
    return s


def projection(hive: Hive) -> tuple[dict[str, Any], dict[str, Any]]:
    agents = {}
    for agent_id, a in hive.agents.items():
        d = msgspec.structs.asdict(a)
        del d["last_seen_at"]  # volatile, not logged
        agents[agent_id] = msgspec.to_builtins(d)
    tasks = {task_id: msgspec.to_builtins(t) for task_id, t in hive.tasks.items()}
    return agents, tasks


class TestLog:
    def test_history_exercises_the_interesting_events(self) -> None:
        s = busy_history()
        seen = set(types(s.log))
        assert {
            "agent_created",
            "agent_updated",
            "agent_status_changed",
            "agent_performance_updated",
            "agent_removed",
            "task_created",
            "task_assigned",
            "task_started",
            "task_progress",
            "task_completed",
            "task_failed",
            "task_cancelled",
            "task_retried",
            "task_released",
            "error_occurred",
        } <= seen
        assert s.task("late").status == TaskStatus.FAILED
        assert s.task("grandchild").status == TaskStatus.PENDING  # child never completed

    def test_sequence_numbers_are_gapless_from_one(self) -> None:
        s = busy_history()
        assert [e.sequence for e in s.log] == list(range(1, len(s.log) + 1))
        assert s.hive.sequence == len(s.log)
        assert len({e.message_id for e in s.log}) == len(s.log)

    def test_every_event_type_matches_its_data(self) -> None:
        for e in busy_history().log:
            assert e.type == type(e.data).TYPE
            assert e.timestamp == e.data.timestamp

    def test_events_carry_the_command_id_as_caused_by(self) -> None:
        s = Sim()
        s.register("a")
        events = s.do(SubmitTask(id="req-42", spec=TaskSpec(id="t1")), 1)
        assert types(events) == ["task_created", "task_assigned", "agent_status_changed"]
        assert {e.data.caused_by for e in events} == {"req-42"}

    def test_replay_of_the_stored_log_rebuilds_the_same_state(self) -> None:
        s = busy_history()
        replica = Hive(HiveConfig(heartbeat_timeout=15), new_id=Ids("r"), rng=random.Random(99))
        for body in s.wire:
            replica.apply(ev.decode_event(body))
        assert replica.sequence == s.hive.sequence
        assert projection(replica) == projection(s.hive)
        for t in (53, 86_400 + 53):
            assert replica.status(at(t)) == s.hive.status(at(t))

    def test_replay_of_the_emitted_event_objects_rebuilds_the_same_state(self) -> None:
        s = busy_history()
        original = projection(s.hive)
        replica = Hive(HiveConfig(heartbeat_timeout=15), new_id=Ids("r"), rng=random.Random(99))
        for e in s.log:
            replica.apply(e)
        assert projection(s.hive) == original, "replaying into another hive changed the original"
        assert projection(replica) == original
        assert replica.status(at(53)) == s.hive.status(at(53))

    def test_emitted_events_are_not_mutated_by_later_commands(self) -> None:
        s = busy_history()
        changed = [
            (e.sequence, e.type) for e, body in zip(s.log, s.wire, strict=True) if ev.encode_event(e) != body
        ]
        assert changed == [], f"events changed after they were returned: {changed}"

    def test_replayed_hive_continues_like_the_original(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.submit("t1", t=0)
        s.submit("t2", t=0)
        replica = Hive(new_id=Ids("r"), rng=random.Random(0))
        for body in s.wire:
            replica.apply(ev.decode_event(body))
        events = replica.handle(CompleteTask(task_id="t1", agent_id="a", attempt=1), at(1))
        assigned = one(events, ev.TaskAssigned)
        assert (assigned.task_id, assigned.agent_id) == ("t2", "a")
        assert events[0].sequence == s.hive.sequence + 1

    def test_apply_rejects_a_sequence_gap_or_duplicate(self) -> None:
        s = Sim()
        s.register("a")
        s.submit("t1")
        replica = Hive()
        with pytest.raises(ValueError):
            replica.apply(s.log[1])  # sequence 2 before 1
        replica.apply(s.log[0])
        with pytest.raises(ValueError):
            replica.apply(s.log[0])  # duplicate
        with pytest.raises(ValueError):
            replica.apply(msgspec.structs.replace(s.log[1], sequence=5))
        assert replica.sequence == 1

    def test_apply_does_not_emit_or_schedule(self) -> None:
        s = Sim()
        s.submit("t1")
        s.register("a")
        replica = Hive()
        replica.apply(ev.decode_event(s.wire[0]))  # task_created
        replica.apply(ev.decode_event(s.wire[1]))  # agent_created
        assert replica.tasks["t1"].status == TaskStatus.PENDING  # the assignment is its own event
        assert replica.sequence == 2


def test_released_for_shutdown_work_is_not_handed_straight_back() -> None:
    from hivehub.core.commands import AgentDisconnected, ReleaseTask

    from ._harness import Sim

    sim = Sim()
    sim.register("a", {"x": 0.9})
    sim.submit("t", {"x": 0.1}, t=1)
    assert sim.holder("t") == "a"
    sim.do(ReleaseTask(task_id="t", agent_id="a", reason="agent_shutdown", attempt=1), 2)
    assert sim.task("t").status == "pending" and sim.agent("a").draining
    sim.register("b", {"x": 0.5}, t=3)
    assert sim.holder("t") == "b"  # not back to the leaving agent
    sim.do(AgentDisconnected(agent_id="a"), 4)
    sim.register("a", {"x": 0.9}, t=5)  # it came back: eligible again
    assert not sim.agent("a").draining
    sim.submit("u", {"x": 0.1}, t=6)
    assert sim.holder("u") == "a"


def test_completion_performance_reports_are_throttled_per_agent_failures_are_not() -> None:
    from ._harness import Sim

    sim = Sim()
    sim.register("a", {"x": 0.9}, max_tasks=3)
    for i in range(3):
        sim.submit(f"t{i}", {"x": 0.1}, t=0)
    perf = [sim.complete(f"t{i}", t=0.1 * (i + 1)) for i in range(2)]
    assert len(of(perf[0], ev.AgentPerformanceUpdated)) == 1  # the first is reported
    assert of(perf[1], ev.AgentPerformanceUpdated) == []  # 0.1 s later: not again
    failed = sim.fail("t2", t=0.3, retryable=False)
    (p,) = of(failed, ev.AgentPerformanceUpdated)  # a failure always is, with the exact totals
    assert (p.metrics.tasks_completed, p.metrics.tasks_failed) == (2, 1)
    sim.submit("t3", {"x": 0.1}, t=2)
    (p,) = of(sim.complete("t3", t=2.5), ev.AgentPerformanceUpdated)  # a second later: reported
    assert p.metrics.tasks_completed == 3


# ---------------------------------------------------------------- clock steps


class TestWallClockSteps:
    """Durations and deadlines run on the monotonic reading; a step of the wall clock
    between commands (NTP, a VM resume, an operator) changes no decision."""

    @staticmethod
    def two_healthy_agents_and_a_running_task() -> Sim:
        s = Sim(HiveConfig(heartbeat_timeout=15, retry_base_seconds=10, retry_cap_seconds=10))
        s.wall_step = 0.0
        s.register("a", {"x": 0.9}, t=0)
        s.register("b", {"y": 0.9}, t=0)
        s.submit("t1", {"x": 0.5}, t=0, timeout_seconds=60)
        s.start("t1", t=0)
        return s

    @pytest.mark.parametrize("step", [120.0, -120.0])
    def test_no_agent_goes_offline_and_no_task_times_out(self, step: float) -> None:
        s = self.two_healthy_agents_and_a_running_task()
        out: list[ev.Event] = []
        for t in range(5, 60, 5):
            if t == 10:
                s.wall_step = step
            out += s.heartbeat("a", t) + s.heartbeat("b", t)
            out += s.tick(t + 0.5)
        assert of(out, ev.AgentStatusChanged) == [] and of(out, ev.TaskFailed) == []
        assert s.task("t1").status == TaskStatus.RUNNING and s.task("t1").attempt == 1
        # the displayed heartbeat time follows the wall clock
        assert s.agent("a").last_seen_at == at(55 + step)
        # the duration is measured on the monotonic clock: 58 s, whatever the wall says
        done = one(s.complete("t1", t=58), ev.TaskCompleted)
        assert done.execution_time_ms == 58_000.0 and done.timestamp == at(58 + step)

    @pytest.mark.parametrize("step", [120.0, -120.0])
    def test_silence_and_timeouts_fire_on_time_after_a_step(self, step: float) -> None:
        s = self.two_healthy_agents_and_a_running_task()
        s.wall_step = step
        s.heartbeat("a", 1)  # b is silent from 0, a from 1
        assert of(s.tick(14.9), ev.AgentStatusChanged) == []
        gone = of(s.tick(15), ev.AgentStatusChanged)
        assert [(c.agent_id, c.new_status, c.reason) for c in gone] == [("b", "offline", "heartbeat_timeout")]
        for t in range(5, 60, 5):
            s.heartbeat("a", t + 1)
        assert of(s.tick(59.9), ev.TaskFailed) == []
        (f,) = of(s.tick(60), ev.TaskFailed)
        assert f.error.code == "TASK_TIMEOUT" and f.execution_time_ms == 60_000.0
        assert f.error.details["execution_time_seconds"] == 60.0
        # the retry is due after its (jittered) delay on the monotonic clock, neither early nor late
        assert f.next_retry_at is not None
        due = 60 + (f.next_retry_at - f.timestamp).total_seconds()
        assert of(s.tick(due - 0.01), ev.TaskAssigned) == []
        (again,) = of(s.tick(due), ev.TaskAssigned)
        assert (again.task_id, again.attempt_number) == ("t1", 2)

    def test_retry_due_before_a_step_is_neither_early_nor_late(self) -> None:
        s = self.two_healthy_agents_and_a_running_task()
        f = one(s.fail("t1", t=1), ev.TaskFailed)
        assert f.next_retry_at is not None
        due = 1 + (f.next_retry_at - f.timestamp).total_seconds()
        s.wall_step = 120.0  # the wall clock now says the retry is long overdue
        s.heartbeat("a", 1)
        assert of(s.tick(due - 0.01), ev.TaskAssigned) == []
        s.wall_step = -120.0  # ... and now that it is two minutes away
        assert [a.task_id for a in of(s.tick(due), ev.TaskAssigned)] == ["t1"]

    def test_replay_of_a_stepped_log_rebuilds_the_same_state(self) -> None:
        s = self.two_healthy_agents_and_a_running_task()
        s.wall_step = 120.0
        s.heartbeat("a", 5)
        s.complete("t1", t=6)
        s.submit("t2", {"y": 0.5}, t=7)
        replica = Hive(s.hive.config, new_id=Ids("r"), rng=random.Random(0))
        for body in s.wire:
            replica.apply(ev.decode_event(body))
        assert projection(replica) == projection(s.hive)
