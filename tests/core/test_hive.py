"""Lifecycle of agents and tasks through ``Hive.handle`` (synchronous, literal clock)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    AgentPatch,
    AgentSpec,
    CancelTask,
    CompleteTask,
    EvictAgent,
    FailTask,
    Recover,
    RegisterAgent,
    ReleaseTask,
    RemoveAgent,
    ReportProgress,
    RetryTask,
    StartTask,
    SubmitTask,
    TaskSpec,
    UpdateAgent,
)
from hivehub.core.errors import (
    AgentNotFound,
    AttemptRequired,
    Conflict,
    DependencyNotFound,
    HiveError,
    InvalidInput,
    InvalidTransition,
    NotTaskHolder,
    TaskExists,
    TaskNotFound,
)
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import AgentMetrics, AgentStatus, AgentType, Capability, TaskError, TaskStatus

from ._harness import T0, Ids, Sim, at, caps, held_caps, of, one, reqs, types

NO_HEARTBEAT_EXPIRY = HiveConfig(heartbeat_timeout=10_000.0)


def snapshot(hive: Hive) -> bytes:
    """Everything projected, encoded (to prove a rejected command changed nothing)."""
    return msgspec.json.encode(
        {
            "agents": hive.agents,
            "tasks": hive.tasks,
            "sequence": hive.sequence,
            "status": hive.status(T0)["metrics"],
        }
    )


# ---------------------------------------------------------------- agents


class TestRegistration:
    def test_agent_created_carries_the_agent(self) -> None:
        s = Sim()
        spec = AgentSpec(
            name="DataProcessor-1",
            type=AgentType.SPECIALIST,
            capabilities=caps({"data_processing": 0.85}),
            max_concurrent_tasks=3,
            id="agent-1",
            metadata={"zone": "eu"},
        )
        events = s.do(RegisterAgent(id="req-1", spec=spec), 5)
        assert types(events) == ["agent_created"]
        e = events[0]
        assert e.timestamp == at(5) and e.data.timestamp == at(5)
        assert e.data.caused_by == "req-1"
        a = one(events, ev.AgentCreated).agent
        assert a.id == "agent-1"
        assert a.name == "DataProcessor-1"
        assert a.type == "specialist"
        assert [(c.name, c.proficiency, c.learning_rate) for c in a.capabilities] == [
            ("data_processing", 0.85, 0.1)
        ]
        assert a.status == AgentStatus.IDLE
        assert a.max_concurrent_tasks == 3
        assert a.created_at == at(5)
        assert a.last_seen_at == at(5)
        assert a.metrics == AgentMetrics()
        assert a.current_tasks == []
        assert a.metadata == {"zone": "eu"}
        assert s.agent("agent-1").status == AgentStatus.IDLE

    def test_agent_without_id_gets_one_from_the_id_factory(self) -> None:
        hive = Hive(new_id=Ids("x"), rng=random.Random(0))
        events = hive.handle(RegisterAgent(spec=AgentSpec(name="anon")), T0)
        agent_id = one(events, ev.AgentCreated).agent.id
        assert agent_id == "x-1"
        assert list(hive.agents) == ["x-1"]
        # message ids: a per-hive prefix drawn from the injected rng, and the sequence
        assert events[0].message_id.endswith("-1")
        again = Hive(new_id=Ids("x"), rng=random.Random(0)).handle(RegisterAgent(spec=AgentSpec(name="anon")), T0)
        assert again[0].message_id == events[0].message_id  # deterministic given the rng
        other = Hive(new_id=Ids("x"), rng=random.Random(1)).handle(RegisterAgent(spec=AgentSpec(name="anon")), T0)
        assert other[0].message_id != events[0].message_id

    def test_re_register_of_an_online_agent_with_the_same_spec_emits_nothing(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.5})
        assert s.register("a", {"x": 0.5}, t=3) == []
        assert s.agent("a").last_seen_at == at(3)

    def test_re_register_with_a_new_spec_emits_agent_updated(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.5})
        events = s.register("a", {"x": 0.9, "y": 0.2}, t=1, max_tasks=4, name="renamed")
        u = one(events, ev.AgentUpdated)
        assert u.agent_id == "a" and u.name == "renamed" and u.max_concurrent_tasks == 4
        assert u.capabilities == held_caps({"x": 0.9, "y": 0.2})
        a = s.agent("a")
        assert (a.name, a.max_concurrent_tasks, a.capabilities) == ("renamed", 4, held_caps({"x": 0.9, "y": 0.2}))

    def test_re_register_after_offline_is_a_reconnect(self) -> None:
        s = Sim()
        s.register("a")
        s.do(AgentDisconnected(agent_id="a"), 1)
        assert s.agent("a").status == AgentStatus.OFFLINE
        events = s.register("a", t=2)
        assert types(events) == ["agent_status_changed"]
        c = one(events, ev.AgentStatusChanged)
        assert (c.agent_id, c.old_status, c.new_status, c.reason) == ("a", "offline", "idle", "reconnected")
        assert s.agent("a").status == AgentStatus.IDLE

    def test_reconnect_of_an_agent_holding_tasks_goes_active(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, running={"t1": 1})
        c = one(events, ev.AgentStatusChanged)
        assert (c.old_status, c.new_status, c.reason) == ("offline", "active", "reconnected")
        assert of(events, ev.TaskFailed) == []
        assert s.task("t1").status == TaskStatus.RUNNING
        assert s.agent("a").current_tasks == ["t1"]

    def test_register_with_empty_running_fails_the_lost_running_task_with_retry(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("run")
        s.submit("held")
        s.start("run", t=1)
        assert s.task("held").status == TaskStatus.ASSIGNED
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, max_tasks=2, running={})
        f = one(events, ev.TaskFailed)
        assert f.task_id == "run" and f.agent_id == "a" and f.attempt_number == 1
        assert f.error.code == "AGENT_LOST"
        assert f.retry_scheduled is True and f.next_retry_at is not None and f.next_retry_at > at(3)
        assert f.failure_kind == "agent_lost"
        assert s.task("run").status == TaskStatus.PENDING
        assert s.task("run").assigned_agent_id is None
        # an assigned (not yet started) task is not "lost": the agent may not have received it yet
        assert s.task("held").status == TaskStatus.ASSIGNED
        assert s.agent("a").current_tasks == ["held"]

    def test_evicted_agent_goes_offline_and_its_tasks_are_requeued_at_once(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("run")
        s.submit("held")
        s.start("run", t=1)
        events = s.do(EvictAgent(agent_id="a"), 2)
        c = one(events, ev.AgentStatusChanged)
        assert (c.new_status, c.reason) == ("offline", "token_revoked")
        failed = of(events, ev.TaskFailed)
        assert sorted(f.task_id for f in failed) == ["held", "run"]
        assert all(f.failure_kind == "agent_lost" and f.retry_scheduled and f.agent_id == "a" for f in failed)
        assert s.agent("a").current_tasks == []
        assert s.task("run").status == TaskStatus.PENDING and s.task("held").status == TaskStatus.PENDING
        # a late report of the evicted attempt is refused
        with pytest.raises(NotTaskHolder):
            s.do(CompleteTask(task_id="run", agent_id="a", attempt=1, result=1), 3)
        with pytest.raises(AgentNotFound):
            s.do(EvictAgent(agent_id="nobody"), 3)

    def test_reconnect_that_lost_its_only_task_goes_straight_to_idle(self) -> None:
        # idle/active follows load once per command (see Hive._settle_agents): a reconnect
        # whose only task was lost must not flap offline -> active -> idle
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, running={})
        changes = [(c.old_status, c.new_status, c.reason) for c in of(events, ev.AgentStatusChanged)]
        assert changes == [("offline", "idle", "reconnected")]
        assert s.agent("a").status == AgentStatus.IDLE

    def test_register_with_running_of_an_old_attempt_fails_the_current_one(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        events = s.register("a", t=2, running={"t1": 7})
        assert one(events, ev.TaskFailed).error.code == "AGENT_LOST"

    def test_register_without_running_keeps_tasks(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3)
        assert of(events, ev.TaskFailed) == []
        assert s.task("t1").status == TaskStatus.RUNNING


class TestUpdateAgent:
    def test_patch_changes_capabilities_and_makes_a_pending_task_assignable(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.2})
        s.submit("t1", {"x": 0.5})
        assert s.task("t1").status == TaskStatus.PENDING
        events = s.do(UpdateAgent(agent_id="a", patch=AgentPatch(capabilities=caps({"x": 0.6}))), 1)
        assert types(events)[:2] == ["agent_updated", "task_assigned"]
        assert one(events, ev.TaskAssigned).agent_id == "a"

    def test_more_slots_take_waiting_tasks(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        for i in range(3):
            s.submit(f"t{i}")
        events = s.do(UpdateAgent(agent_id="a", patch=AgentPatch(max_concurrent_tasks=3)), 1)
        assert [x.task_id for x in of(events, ev.TaskAssigned)] == ["t1", "t2"]
        assert s.agent("a").current_tasks == ["t0", "t1", "t2"]

    def test_empty_patch_is_invalid_input(self) -> None:
        s = Sim()
        s.register("a")
        before = snapshot(s.hive)
        with pytest.raises(InvalidInput):
            s.do(UpdateAgent(agent_id="a", patch=AgentPatch()), 1)
        assert snapshot(s.hive) == before

    def test_unknown_agent(self) -> None:
        s = Sim()
        with pytest.raises(AgentNotFound):
            s.do(UpdateAgent(agent_id="ghost", patch=AgentPatch(name="n")), 1)

    def test_duplicate_capability_names_are_invalid_input_on_register_and_patch(self) -> None:
        s = Sim()
        twice = [Capability(name="x", proficiency=0.2), Capability(name="x", proficiency=0.9)]
        with pytest.raises(InvalidInput) as exc:
            s.do(RegisterAgent(spec=AgentSpec(name="a", id="a", capabilities=twice)), 0)
        assert exc.value.code == "invalid_input" and exc.value.details == {"capability": "x"}
        assert s.hive.agents == {}
        s.register("a", {"x": 0.5})
        before = snapshot(s.hive)
        with pytest.raises(InvalidInput):
            s.do(UpdateAgent(agent_id="a", patch=AgentPatch(capabilities=twice)), 1)
        assert snapshot(s.hive) == before


# ---------------------------------------------------------------- submit


class TestSubmit:
    def test_task_created_fields(self) -> None:
        s = Sim()
        spec = TaskSpec(
            id="t1",
            description="Process customer data",
            type="data_processing",
            priority=3,
            required_capabilities=reqs({"data_processing": 0.7}),
            input={"rows": 10},
            timeout_seconds=42.0,
            max_retries=5,
            metadata={"k": "v"},
        )
        events = s.do(SubmitTask(id="req-9", spec=spec, created_by="user-1"), 7)
        c = one(events, ev.TaskCreated)
        assert c.caused_by == "req-9"
        t = c.task
        assert t.id == "t1" and t.description == "Process customer data" and t.type == "data_processing"
        assert t.priority == 3 and t.status == TaskStatus.PENDING
        assert t.required_capabilities == reqs({"data_processing": 0.7})
        assert t.input == {"rows": 10}
        assert t.timeout_seconds == 42.0 and t.max_retries == 5
        assert t.created_at == at(7) and t.updated_at == at(7)
        assert t.created_by == "user-1" and t.metadata == {"k": "v"}
        assert t.attempt == 0 and t.assigned_agent_id is None

    def test_task_without_id_gets_one_from_the_id_factory(self) -> None:
        s = Sim()
        events = s.do(SubmitTask(spec=TaskSpec()), 0)
        assert one(events, ev.TaskCreated).task.id == "id-1"

    def test_matching_agents_counts_online_agents_meeting_every_requirement(self) -> None:
        s = Sim()
        s.register("ok", {"x": 0.8, "y": 0.5}, max_tasks=5)
        s.register("exact", {"x": 0.7, "y": 0.1}, max_tasks=5)
        s.register("weak", {"x": 0.69, "y": 0.9})
        s.register("missing_y", {"x": 0.9})
        s.register("offline", {"x": 0.9, "y": 0.9})
        s.do(AgentDisconnected(agent_id="offline"), 0)
        events = s.submit("t1", {"x": 0.7, "y": 0.1})
        assert one(events, ev.TaskCreated).matching_agents == 2
        # nobody can serve it
        assert one(s.submit("t2", {"z": 0.1}), ev.TaskCreated).matching_agents == 0
        # no requirement: every online agent matches
        assert one(s.submit("t3"), ev.TaskCreated).matching_agents == 4

    def test_matching_agents_ignores_busy_slots(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.9})
        s.submit("t1", {"x": 0.5})
        assert s.task("t1").assigned_agent_id == "a"
        assert one(s.submit("t2", {"x": 0.5}), ev.TaskCreated).matching_agents == 1

    @pytest.mark.parametrize(
        ("given", "stored"),
        [("low", 1), ("medium", 2), ("high", 3), ("critical", 4), (1, 1), (4, 4)],
    )
    def test_priority_names_map_to_numbers(self, given: Any, stored: int) -> None:
        s = Sim()
        events = s.do(SubmitTask(spec=TaskSpec(id="t", priority=given)), 0)
        assert one(events, ev.TaskCreated).task.priority == stored
        assert s.task("t").priority == stored

    def test_priority_name_is_accepted_by_the_request_schema(self) -> None:
        spec = msgspec.json.decode(b'{"priority": "critical"}', type=TaskSpec)
        s = Sim()
        s.do(SubmitTask(spec=msgspec.structs.replace(spec, id="t")), 0)
        assert s.task("t").priority == 4
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(b'{"priority": "urgent"}', type=TaskSpec)
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(b'{"priority": 5}', type=TaskSpec)

    def test_duplicate_task_id_is_rejected_without_events(self) -> None:
        s = Sim()
        s.submit("t1")
        before = snapshot(s.hive)
        with pytest.raises(TaskExists) as exc:
            s.submit("t1", t=1)
        # its own code (a conflict, 409), not a transition error
        assert exc.value.code == "task_exists" and isinstance(exc.value, Conflict)
        assert not isinstance(exc.value, InvalidTransition)
        assert exc.value.details == {"task_id": "t1"}
        assert snapshot(s.hive) == before

    def test_unknown_dependency_is_rejected_without_events(self) -> None:
        s = Sim()
        s.submit("t1")
        before = snapshot(s.hive)
        with pytest.raises(DependencyNotFound) as info:
            s.submit("t2", t=1, depends_on=["t1", "nope"])
        assert info.value.details == {"dependency": "nope"}
        assert "t2" not in s.hive.tasks
        assert snapshot(s.hive) == before

    def test_self_dependency_is_invalid_input(self) -> None:
        s = Sim()
        with pytest.raises(InvalidInput):
            s.submit("t1", depends_on=["t1"])
        assert s.hive.tasks == {} and s.hive.sequence == 0


# ---------------------------------------------------------------- execution


class TestExecution:
    def setup_sim(self) -> Sim:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", {"x": 0.9})
        s.submit("t1", {"x": 0.5}, type="etl")
        return s

    def test_task_started(self) -> None:
        s = self.setup_sim()
        events = s.start("t1", t=3)
        st = one(events, ev.TaskStarted)
        assert (st.task_id, st.agent_id, st.attempt_number) == ("t1", "a", 1)
        t = s.task("t1")
        assert t.status == TaskStatus.RUNNING and t.started_at == at(3)

    def test_repeated_start_is_idempotent(self) -> None:
        s = self.setup_sim()
        s.start("t1", t=3)
        assert s.start("t1", t=4) == []
        assert s.task("t1").started_at == at(3)

    def test_progress_extrapolates_eta_linearly(self) -> None:
        s = self.setup_sim()
        s.start("t1", t=100)
        events = s.progress("t1", 0.5, t=110, current_step="batch 1/2")
        p = one(events, ev.TaskProgress)
        assert p.progress == 0.5 and p.current_step == "batch 1/2" and p.attempt_number == 1
        assert p.estimated_completion == at(120)
        p2 = one(s.progress("t1", 0.8, t=116), ev.TaskProgress)
        assert p2.estimated_completion == at(120)  # 16 s for 80 % -> 4 s more
        t = s.task("t1")
        assert (t.progress, t.estimated_completion) == (0.8, at(120))

    def test_progress_zero_has_no_eta(self) -> None:
        s = self.setup_sim()
        s.start("t1", t=1)
        assert one(s.progress("t1", 0.0, t=2), ev.TaskProgress).estimated_completion is None

    def test_progress_without_start_starts_the_task(self) -> None:
        s = self.setup_sim()
        events = s.progress("t1", 0.3, t=5)
        assert types(events) == ["task_started", "task_progress"]
        assert s.task("t1").started_at == at(5)

    def test_complete(self) -> None:
        s = self.setup_sim()
        s.start("t1", t=10)
        events = s.complete("t1", t=12.5, result={"rows": 3}, quality=0.9)
        assert types(events) == ["task_completed", "agent_performance_updated", "agent_status_changed"]
        c = one(events, ev.TaskCompleted)
        assert (c.task_id, c.agent_id, c.attempt_number) == ("t1", "a", 1)
        assert c.execution_time_ms == 2500.0
        assert c.result == {"rows": 3} and c.quality == 0.9
        t = s.task("t1")
        assert t.status == TaskStatus.COMPLETED
        assert t.result == {"rows": 3} and t.completed_at == at(12.5) and t.progress == 1.0
        assert s.agent("a").current_tasks == []
        sc = one(events, ev.AgentStatusChanged)
        assert (sc.old_status, sc.new_status, sc.reason) == ("active", "idle", "task_completed")

    def test_complete_without_start_has_zero_execution_time(self) -> None:
        s = self.setup_sim()
        events = s.complete("t1", t=4)
        assert types(events)[:2] == ["task_started", "task_completed"]
        assert one(events, ev.TaskCompleted).execution_time_ms == 0.0

    def test_performance_metrics_are_true_values(self) -> None:
        s = self.setup_sim()
        s.start("t1", t=0)
        p1 = one(s.complete("t1", t=2), ev.AgentPerformanceUpdated)
        assert p1.agent_id == "a" and p1.outcome == "completed" and p1.task_type == "etl"
        assert p1.metrics.tasks_completed == 1
        assert p1.metrics.tasks_failed == 0
        assert p1.metrics.success_rate == 1.0
        assert p1.metrics.average_response_time_ms == 2000.0
        assert p1.metrics.capability_improvements == 0

        s.submit("t2", {"x": 0.5}, t=10, type="etl")
        s.start("t2", t=10)
        p2 = one(s.complete("t2", t=14), ev.AgentPerformanceUpdated)
        assert p2.metrics.tasks_completed == 2
        assert p2.metrics.average_response_time_ms == 3000.0
        assert p2.metrics.success_rate == 1.0

        s.submit("t3", {"x": 0.5}, t=20, max_retries=0)
        s.start("t3", t=20)
        p3 = one(s.fail("t3", t=21), ev.AgentPerformanceUpdated)
        assert p3.outcome == "failed"
        assert (p3.metrics.tasks_completed, p3.metrics.tasks_failed) == (2, 1)
        assert p3.metrics.success_rate == pytest.approx(2 / 3, abs=1e-4)
        assert p3.metrics.average_response_time_ms == 3000.0  # failures do not count towards it

        m = s.agent("a").metrics
        assert (m.tasks_completed, m.tasks_failed) == (2, 1)
        assert m.average_response_time_ms == 3000.0
        assert m.success_rate == pytest.approx(2 / 3, abs=1e-4)


# ---------------------------------------------------------------- failure / retry


class TestFailureAndRetry:
    def test_retryable_failure_schedules_a_retry_within_backoff_bounds(self) -> None:
        s = Sim(HiveConfig(heartbeat_timeout=10_000, retry_base_seconds=10, retry_cap_seconds=25))
        s.register("a")
        s.submit("t1", max_retries=5)
        expected_bounds = [(5, 10), (10, 20), (12.5, 25), (12.5, 25)]  # base*2^(n-1), capped, equal jitter
        t = 0.0
        for n, (lo, hi) in enumerate(expected_bounds, start=1):
            s.start("t1", t=t)
            events = s.fail("t1", t=t + 1)
            f = one(events, ev.TaskFailed)
            assert f.attempt_number == n
            assert f.retry_scheduled is True
            assert f.failure_kind == "reported"
            assert f.error == TaskError("BOOM", "it broke")
            assert f.execution_time_ms == 1000.0
            assert f.next_retry_at is not None
            delay = (f.next_retry_at - at(t + 1)).total_seconds()
            assert lo <= delay <= hi, (n, delay)
            task = s.task("t1")
            assert task.status == TaskStatus.PENDING
            assert task.assigned_agent_id is None and task.started_at is None
            assert task.next_retry_at == f.next_retry_at
            assert task.failures == n
            assert of(events, ev.TaskAssigned) == []  # not before the backoff
            assigned = one(s.tick(f.next_retry_at), ev.TaskAssigned)
            assert assigned.attempt_number == n + 1
            t = (f.next_retry_at - T0).total_seconds()

    def test_tick_before_next_retry_at_does_not_assign_and_tick_at_it_does(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        f = one(s.fail("t1", t=2), ev.TaskFailed)
        assert f.next_retry_at is not None
        assert s.hive.next_deadline() == f.next_retry_at.timestamp()  # one clock given: the monotonic axis is the wall one
        assert s.tick(f.next_retry_at - timedelta(milliseconds=1)) == []
        assert s.task("t1").status == TaskStatus.PENDING
        events = s.tick(f.next_retry_at)
        a = one(events, ev.TaskAssigned)
        assert (a.task_id, a.agent_id, a.attempt_number, a.assignment_reason) == ("t1", "a", 2, "retry")
        assert s.task("t1").status == TaskStatus.ASSIGNED
        assert s.task("t1").next_retry_at is None

    def test_retry_prefers_a_different_eligible_agent(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("best", {"x": 1.0})
        s.register("other", {"x": 0.5})
        s.submit("t1", {"x": 0.5})
        assert s.holder("t1") == "best"  # the better agent takes the first attempt
        s.start("t1", t=1)
        f = one(s.fail("t1", t=2), ev.TaskFailed)
        assert f.next_retry_at is not None
        a = one(s.tick(f.next_retry_at), ev.TaskAssigned)
        assert a.agent_id == "other"
        assert a.assignment_reason == "retry_different_agent"
        assert a.attempt_number == 2
        assert s.task("t1").failed_agents == ["best"]

    def test_retry_goes_back_to_the_same_agent_when_it_is_the_only_one(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        f = one(s.fail("t1", t=1), ev.TaskFailed)
        assert f.next_retry_at is not None
        a = one(s.tick(f.next_retry_at), ev.TaskAssigned)
        assert (a.agent_id, a.assignment_reason) == ("a", "retry")
        assert a.score_breakdown["failed_before_penalty"] == 0.5

    def test_non_retryable_failure_fails_at_once(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=3)
        s.start("t1", t=1)
        events = s.fail("t1", t=2, retryable=False, code="BAD_INPUT")
        f = one(events, ev.TaskFailed)
        assert f.retry_scheduled is False and f.next_retry_at is None
        t = s.task("t1")
        assert t.status == TaskStatus.FAILED
        assert t.error is not None and t.error.code == "BAD_INPUT"
        assert t.completed_at == at(2)
        assert s.hive.status(at(2))["metrics"]["failed_tasks_today"] == 1
        assert s.tick(at(1000)) == []

    def test_after_max_retries_the_task_fails_for_good(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=2)
        now = at(0)
        outcomes = []
        for _ in range(3):
            s.start("t1", t=now)
            f = one(s.fail("t1", t=now), ev.TaskFailed)
            outcomes.append((f.attempt_number, f.retry_scheduled))
            if f.next_retry_at is not None:
                now = f.next_retry_at
                s.tick(now)
        assert outcomes == [(1, True), (2, True), (3, False)]
        assert s.task("t1").status == TaskStatus.FAILED
        assert s.task("t1").failures == 3

    def test_max_retries_zero_means_one_attempt(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=0)
        f = one(s.fail("t1", t=1), ev.TaskFailed)
        assert f.retry_scheduled is False
        assert s.task("t1").status == TaskStatus.FAILED

    def test_release_requeues_without_counting_a_failure(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.register("b")
        s.submit("t1")
        holder = s.holder("t1")
        events = s.do(ReleaseTask(task_id="t1", agent_id=holder, reason="agent_shutdown", attempt=1), 1)
        r = one(events, ev.TaskReleased)
        assert (r.task_id, r.agent_id, r.attempt_number, r.reason) == ("t1", holder, 1, "agent_shutdown")
        assert s.task("t1").failures == 0
        assert s.agent(holder).metrics.tasks_failed == 0
        a = one(events, ev.TaskAssigned)  # re-queued at once, no backoff
        assert a.attempt_number == 2


# ---------------------------------------------------------------- timeouts


class TestTimeouts:
    def test_timeout_of_a_running_task(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", timeout_seconds=30)
        s.start("t1", t=5)
        assert s.tick(34) == []
        events = s.tick(36)
        assert types(events)[:2] == ["error_occurred", "task_failed"]
        err = one(events, ev.ErrorOccurred)
        assert err.component == "task_executor"
        assert err.severity == "error"
        assert err.error.code == "EXECUTION_FAILED"
        assert err.error.details["task_id"] == "t1"
        assert err.error.details["timeout_seconds"] == 30
        assert err.error.details["execution_time_seconds"] == 31.0
        assert err.error_id
        f = one(events, ev.TaskFailed)
        assert f.failure_kind == "timeout"
        assert f.task_id == "t1" and f.agent_id == "a" and f.attempt_number == 1
        assert f.error.code == "TASK_TIMEOUT"
        assert f.retry_scheduled is True
        assert f.execution_time_ms == 31000.0
        assert s.task("t1").status == TaskStatus.PENDING

    def test_timeout_of_an_assigned_never_started_task_counts_from_assignment(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", t=10, timeout_seconds=20)
        assert s.hive.next_deadline() == at(30).timestamp()
        assert s.tick(29) == []
        events = s.tick(31)
        assert one(events, ev.ErrorOccurred).error.details["execution_time_seconds"] == 21.0
        assert one(events, ev.TaskFailed).failure_kind == "timeout"

    def test_timeout_restarts_when_the_task_starts(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", timeout_seconds=30)
        s.start("t1", t=20)
        assert s.tick(31) == []  # the deadline from assignment no longer applies
        assert s.task("t1").status == TaskStatus.RUNNING
        assert one(s.tick(51), ev.TaskFailed).failure_kind == "timeout"

    def test_completed_task_does_not_time_out(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", timeout_seconds=30)
        s.complete("t1", t=5)
        assert s.tick(100) == []

    def test_timed_out_attempt_cannot_report_afterwards(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", timeout_seconds=30)
        s.start("t1", t=0, attempt=1)
        f = one(s.tick(31), ev.TaskFailed)
        assert f.next_retry_at is not None
        s.tick(f.next_retry_at)
        assert s.task("t1").attempt == 2
        before = snapshot(s.hive)
        with pytest.raises(NotTaskHolder):
            s.do(CompleteTask(task_id="t1", agent_id="a", attempt=1), 40)
        assert snapshot(s.hive) == before
        s.do(CompleteTask(task_id="t1", agent_id="a", attempt=2), 40)
        assert s.task("t1").status == TaskStatus.COMPLETED


# ---------------------------------------------------------------- liveness


class TestLiveness:
    def test_silent_agent_goes_offline_and_its_task_moves_to_another_agent(self) -> None:
        s = Sim()  # heartbeat_timeout 15 s
        s.register("a", t=0)
        s.submit("t1", t=0)
        s.start("t1", "a", t=0)
        s.register("b", t=10)
        assert s.hive.next_deadline() == at(15).timestamp()
        assert s.tick(14) == []
        events = s.tick(16)
        sc = one(events, ev.AgentStatusChanged)
        assert (sc.agent_id, sc.old_status, sc.new_status, sc.reason) == (
            "a",
            "active",
            "offline",
            "heartbeat_timeout",
        )
        f = one(events, ev.TaskFailed)
        assert (f.task_id, f.agent_id, f.failure_kind) == ("t1", "a", "agent_lost")
        assert f.error.code == "AGENT_LOST"
        assert f.retry_scheduled is True and f.next_retry_at is not None
        assert s.agent("a").current_tasks == []
        assert s.agent("b").status == AgentStatus.IDLE
        a = one(s.tick(f.next_retry_at), ev.TaskAssigned)
        assert (a.agent_id, a.attempt_number, a.assignment_reason) == ("b", 2, "retry_different_agent")

    def test_heartbeat_resets_the_timeout(self) -> None:
        s = Sim()
        s.register("a", t=0)
        assert s.heartbeat("a", t=10) == []
        assert s.agent("a").last_seen_at == at(10)
        assert s.tick(16) == []
        assert s.agent("a").status == AgentStatus.IDLE
        sc = one(s.tick(26), ev.AgentStatusChanged)
        assert (sc.new_status, sc.reason) == ("offline", "heartbeat_timeout")

    def test_any_report_from_the_agent_counts_as_a_heartbeat(self) -> None:
        s = Sim(HiveConfig(heartbeat_timeout=15))
        s.register("a", t=0)
        s.submit("t1", t=0, timeout_seconds=1000)
        s.start("t1", t=10)
        s.progress("t1", 0.5, t=20)
        assert s.tick(30) == []
        assert s.agent("a").status == AgentStatus.ACTIVE

    def test_heartbeat_brings_an_offline_agent_back(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.tick(16)
        assert s.agent("a").status == AgentStatus.OFFLINE
        events = s.heartbeat("a", t=17)
        sc = one(events, ev.AgentStatusChanged)
        assert (sc.old_status, sc.new_status, sc.reason) == ("offline", "idle", "heartbeat")

    def test_a_heartbeat_flood_keeps_one_liveness_entry_per_agent(self) -> None:
        # 10,000 heartbeats of two agents within one timeout: the liveness heap (the
        # index Tick uses to find silent agents) must not grow with them
        s = Sim()
        s.register("a", t=0)
        s.register("b", t=0)
        for i in range(5_000):
            s.heartbeat("a", t=i * 0.002)
            s.heartbeat("b", t=i * 0.002)
        assert len(s.hive._liveness) <= 2
        # and the one entry still finds the silent agent, one timeout after its last beat
        last = 4_999 * 0.002
        assert s.tick(last + 14.9) == []
        s.heartbeat("b", t=last + 14.9)
        sc = one(s.tick(last + 15.1), ev.AgentStatusChanged)
        assert (sc.agent_id, sc.new_status, sc.reason) == ("a", "offline", "heartbeat_timeout")
        assert len(s.hive._liveness) <= 2
        assert s.agent("b").status == AgentStatus.IDLE

    def test_heartbeat_of_unknown_agent(self) -> None:
        with pytest.raises(AgentNotFound):
            Sim().heartbeat("ghost", t=0)

    def test_disconnect_goes_offline_and_keeps_tasks_until_the_heartbeat_timeout(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.submit("t1", t=0, timeout_seconds=1000)
        s.start("t1", t=1)
        events = s.do(AgentDisconnected(agent_id="a"), 5)
        sc = one(events, ev.AgentStatusChanged)
        assert (sc.old_status, sc.new_status, sc.reason) == ("active", "offline", "disconnected")
        assert s.task("t1").status == TaskStatus.RUNNING
        assert s.agent("a").current_tasks == ["t1"]
        assert s.tick(19) == []
        events = s.tick(21)
        assert of(events, ev.AgentStatusChanged) == []  # already offline
        f = one(events, ev.TaskFailed)
        assert (f.task_id, f.error.code, f.failure_kind, f.retry_scheduled) == (
            "t1",
            "AGENT_LOST",
            "agent_lost",
            True,
        )
        assert s.task("t1").status == TaskStatus.PENDING

    def test_offline_agent_gets_no_new_task(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.do(AgentDisconnected(agent_id="a"), 1)
        events = s.submit("t1", t=2)
        assert one(events, ev.TaskCreated).matching_agents == 0
        assert of(events, ev.TaskAssigned) == []
        # it is assigned once the agent reconnects
        assert one(s.register("a", t=3), ev.TaskAssigned).task_id == "t1"

    def test_disconnect_of_unknown_agent_is_ignored(self) -> None:
        assert Sim().do(AgentDisconnected(agent_id="ghost"), 0) == []

    def test_next_deadline(self) -> None:
        s = Sim()
        assert s.hive.next_deadline() is None
        s.register("a", t=2)
        assert s.hive.next_deadline() == at(17).timestamp()


# ---------------------------------------------------------------- cancel / manual retry


class TestCancel:
    @pytest.mark.parametrize("stage", ["pending", "assigned", "running"])
    def test_cancel_an_unfinished_task(self, stage: str) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        if stage != "pending":
            s.register("a")
        s.submit("t1")
        if stage == "running":
            s.start("t1", t=1)
        assert s.task("t1").status == stage
        events = s.do(CancelTask(task_id="t1", reason="not needed", cancelled_by="user-7"), 2)
        c = one(events, ev.TaskCancelled)
        assert (c.task_id, c.reason, c.cancelled_by, c.previous_status) == (
            "t1",
            "not needed",
            "user-7",
            stage,
        )
        assert c.agent_id == (None if stage == "pending" else "a")
        t = s.task("t1")
        assert t.status == TaskStatus.CANCELLED and t.cancelled_by == "user-7" and t.completed_at == at(2)
        if stage != "pending":
            assert s.agent("a").current_tasks == []
            sc = one(events, ev.AgentStatusChanged)
            assert (sc.new_status, sc.reason) == ("idle", "task_cancelled")

    def test_cancel_defaults(self) -> None:
        s = Sim()
        s.submit("t1")
        c = one(s.do(CancelTask(task_id="t1"), 1), ev.TaskCancelled)
        assert (c.reason, c.cancelled_by) == ("manual_cancellation", "api")

    def test_cancel_frees_the_agent_for_the_next_task(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.submit("t2")
        events = s.do(CancelTask(task_id="t1"), 1)
        assert types(events) == ["task_cancelled", "task_assigned"]  # a stays active: no flap
        assert s.holder("t2") == "a"

    @pytest.mark.parametrize("final", ["completed", "cancelled", "failed"])
    def test_cancel_a_finished_task_raises_and_emits_nothing(self, final: str) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=0)
        if final == "completed":
            s.complete("t1", t=1)
        elif final == "failed":
            s.fail("t1", t=1)
        else:
            s.do(CancelTask(task_id="t1"), 1)
        assert s.task("t1").status == final
        before = snapshot(s.hive)
        with pytest.raises(InvalidTransition):
            s.do(CancelTask(task_id="t1"), 2)
        assert snapshot(s.hive) == before

    def test_cancel_unknown_task(self) -> None:
        with pytest.raises(TaskNotFound):
            Sim().do(CancelTask(task_id="nope"), 0)

    def test_report_after_cancel_is_stale(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(CancelTask(task_id="t1"), 2)
        with pytest.raises(NotTaskHolder):
            s.complete("t1", "a", t=3)


class TestManualRetry:
    def test_retry_a_failed_task(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=0)
        s.fail("t1", t=1)
        assert s.task("t1").status == TaskStatus.FAILED
        events = s.do(RetryTask(task_id="t1", requested_by="ops"), 2)
        assert types(events)[:2] == ["task_retried", "task_assigned"]
        r = one(events, ev.TaskRetried)
        assert (r.task_id, r.previous_status, r.requested_by) == ("t1", "failed", "ops")
        a = one(events, ev.TaskAssigned)
        assert (a.agent_id, a.attempt_number) == ("a", 2)
        t = s.task("t1")
        assert t.status == TaskStatus.ASSIGNED
        assert t.error is None and t.failures == 0 and t.completed_at is None

    def test_retry_a_cancelled_task(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.submit("t1")
        s.do(CancelTask(task_id="t1", cancelled_by="u"), 1)
        events = s.do(RetryTask(task_id="t1"), 2)
        r = one(events, ev.TaskRetried)
        assert (r.previous_status, r.requested_by) == ("cancelled", "api")
        t = s.task("t1")
        assert t.status == TaskStatus.PENDING and t.cancelled_by is None
        assert one(s.register("a", t=3), ev.TaskAssigned).task_id == "t1"

    @pytest.mark.parametrize("stage", ["pending", "assigned", "completed"])
    def test_retry_of_an_unfailed_task_is_rejected(self, stage: str) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        if stage != "pending":
            s.register("a")
        s.submit("t1")
        if stage == "completed":
            s.complete("t1", t=1)
        before = snapshot(s.hive)
        with pytest.raises(InvalidTransition):
            s.do(RetryTask(task_id="t1"), 2)
        assert snapshot(s.hive) == before

    def test_retry_unknown_task(self) -> None:
        with pytest.raises(TaskNotFound):
            Sim().do(RetryTask(task_id="nope"), 0)


# ---------------------------------------------------------------- stale reports


class TestStaleReports:
    def setup_sim(self) -> Sim:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.register("b")
        s.submit("t1")
        assert s.holder("t1") == "a"
        return s

    @pytest.mark.parametrize(
        "cmd",
        [
            StartTask(task_id="t1", agent_id="b", attempt=1),
            ReportProgress(task_id="t1", agent_id="b", progress=0.5, attempt=1),
            CompleteTask(task_id="t1", agent_id="b", attempt=1),
            FailTask(task_id="t1", agent_id="b", error=TaskError("E", "e"), attempt=1),
            ReleaseTask(task_id="t1", agent_id="b", attempt=1),
            StartTask(task_id="t1", agent_id="a", attempt=2),
            CompleteTask(task_id="t1", agent_id="a", attempt=0),
        ],
        ids=[
            "start-other",
            "progress-other",
            "complete-other",
            "fail-other",
            "release-other",
            "start-att2",
            "complete-att0",
        ],
    )
    def test_report_from_a_non_holder_is_rejected(self, cmd: Any) -> None:
        s = self.setup_sim()
        before = snapshot(s.hive)
        with pytest.raises(NotTaskHolder) as info:
            s.do(cmd, 1)
        assert info.value.details["task_id"] == "t1"
        assert info.value.details["current_attempt"] == 1
        assert snapshot(s.hive) == before

    def test_completed_task_cannot_complete_twice(self) -> None:
        s = self.setup_sim()
        s.complete("t1", "a", t=1)
        before = snapshot(s.hive)
        with pytest.raises(NotTaskHolder):
            s.complete("t1", "a", t=2)
        with pytest.raises(NotTaskHolder):
            s.fail("t1", "a", t=2)
        assert snapshot(s.hive) == before
        assert s.agent("a").metrics.tasks_completed == 1

    def test_report_for_unknown_task(self) -> None:
        s = self.setup_sim()
        with pytest.raises(TaskNotFound):
            s.do(CompleteTask(task_id="nope", agent_id="a", attempt=1), 1)

    @pytest.mark.parametrize(
        "cmd",
        [
            StartTask(task_id="t1", agent_id="a"),
            ReportProgress(task_id="t1", agent_id="a", progress=0.5),
            CompleteTask(task_id="t1", agent_id="a"),
            FailTask(task_id="t1", agent_id="a", error=TaskError("E", "e")),
            ReleaseTask(task_id="t1", agent_id="a"),
        ],
        ids=["start", "progress", "complete", "fail", "release"],
    )
    def test_report_without_attempt_is_refused_even_from_the_holder(self, cmd: Any) -> None:
        s = self.setup_sim()
        before = snapshot(s.hive)
        with pytest.raises(AttemptRequired) as info:
            s.do(cmd, 1)
        assert info.value.code == "attempt_required"
        assert info.value.details["task_id"] == "t1"
        assert snapshot(s.hive) == before

    def test_late_completion_of_attempt_1_does_not_complete_attempt_2(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1", max_retries=3)
        s.start("t1", t=0, attempt=1)
        s.fail("t1", t=1, attempt=1)  # attempt 1 failed; the retry is scheduled
        s.tick(100)
        assert (s.task("t1").attempt, s.holder("t1")) == (2, "a")
        before = snapshot(s.hive)
        with pytest.raises(NotTaskHolder):
            s.do(CompleteTask(task_id="t1", agent_id="a", attempt=1, result="stale"), 101)
        with pytest.raises(AttemptRequired):
            s.do(CompleteTask(task_id="t1", agent_id="a", result="stale"), 101)
        assert snapshot(s.hive) == before
        s.complete("t1", t=102, attempt=2, result="fresh")
        assert (s.task("t1").status, s.task("t1").result) == (TaskStatus.COMPLETED, "fresh")

    def test_errors_are_hive_errors_with_codes(self) -> None:
        s = self.setup_sim()
        with pytest.raises(HiveError) as info:
            s.complete("t1", "b", t=1)
        assert info.value.code == "not_task_holder"


# ---------------------------------------------------------------- remove / recover


class TestRemoveAgent:
    def test_held_tasks_are_released_and_reassigned(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("t1")
        s.submit("t2")
        s.start("t1", t=1)
        s.register("b", t=2, max_tasks=3)
        s.submit("t3", t=2)
        assert s.holder("t3") == "b"
        assert s.agent("a").current_tasks == ["t1", "t2"]
        events = s.do(RemoveAgent(agent_id="a", reason="decommissioned"), 3)
        released = of(events, ev.TaskReleased)
        assert [(r.task_id, r.agent_id, r.reason) for r in released] == [
            ("t1", "a", "agent_removed"),
            ("t2", "a", "agent_removed"),
        ]
        removed = one(events, ev.AgentRemoved)
        assert removed.agent_id == "a" and removed.reason == "decommissioned"
        assert removed.cleanup_summary.tasks_reassigned == 2
        assert removed.cleanup_summary.data_removed is True
        assert "a" not in s.hive.agents
        assigned = of(events, ev.TaskAssigned)
        assert sorted(x.task_id for x in assigned) == ["t1", "t2"]
        assert {x.agent_id for x in assigned} == {"b"}
        assert all(x.attempt_number == 2 for x in assigned)
        assert types(events).index("agent_removed") < types(events).index("task_assigned")
        assert s.task("t1").failures == 0  # releasing is not a failure

    def test_remove_idle_agent(self) -> None:
        s = Sim()
        s.register("a")
        events = s.do(RemoveAgent(agent_id="a"), 1)
        removed = one(events, ev.AgentRemoved)
        assert removed.reason == "manual_removal" and removed.cleanup_summary.tasks_reassigned == 0
        assert s.hive.agents == {}
        assert s.tick(100) == []  # its liveness entry is ignored

    def test_remove_unknown_agent(self) -> None:
        with pytest.raises(AgentNotFound):
            Sim().do(RemoveAgent(agent_id="ghost"), 0)


class TestRecover:
    def test_online_agents_go_offline_with_reason_hub_restarted(self) -> None:
        s = Sim()
        s.register("idle", t=0)
        s.register("busy", t=0)
        s.register("gone", t=0)
        s.do(AgentDisconnected(agent_id="gone"), 1)
        s.submit("t1", t=1, timeout_seconds=1000)
        assert s.holder("t1") == "busy"
        events = s.do(Recover(), 100)
        changes = {
            c.agent_id: (c.old_status, c.new_status, c.reason) for c in of(events, ev.AgentStatusChanged)
        }
        assert changes == {
            "idle": ("idle", "offline", "hub_restarted"),
            "busy": ("active", "offline", "hub_restarted"),
        }
        assert s.task("t1").status == TaskStatus.ASSIGNED  # kept for one heartbeat timeout
        # the heartbeat timeout counts from the restart, not from before it
        assert s.tick(114) == []
        assert one(s.register("busy", t=110, running={}), ev.AgentStatusChanged).reason == "reconnected"
        assert s.task("t1").status == TaskStatus.ASSIGNED
        assert s.tick(116) == []  # "busy" was heard at 110; the others are offline and hold nothing
        events = s.tick(126)
        assert one(events, ev.AgentStatusChanged).reason == "heartbeat_timeout"
        assert one(events, ev.TaskFailed).task_id == "t1"

    def test_tasks_of_an_agent_that_does_not_come_back_are_requeued(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.submit("t1", t=0, timeout_seconds=1000)
        s.do(Recover(), 50)
        events = s.tick(66)
        f = one(events, ev.TaskFailed)
        assert (f.task_id, f.error.code) == ("t1", "AGENT_LOST")


# ---------------------------------------------------------------- status


class TestStatus:
    def test_status_counts(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.register("b", max_tasks=1)
        s.register("c", max_tasks=5)
        s.do(AgentDisconnected(agent_id="c"), 0)
        for i in range(5):
            s.submit(f"t{i}", t=0, max_retries=0)
        s.start("t0", t=1)
        s.complete("t0", t=2)  # t3 goes to a
        s.fail("t1", t=3)  # t4 goes to a
        s.start("t3", t=4)
        s.submit("x", t=5)
        s.do(CancelTask(task_id="x"), 5)
        st = s.hive.status(at(10))
        assert st["sequence"] == s.hive.sequence
        assert st["metrics"] == {
            "total_agents": 3,
            "online_agents": 2,
            "active_agents": 2,
            "idle_agents": 0,
            "offline_agents": 1,
            "total_tasks": 6,
            "pending_tasks": 0,
            "assigned_tasks": 2,
            "running_tasks": 1,
            "completed_tasks": 1,
            "failed_tasks": 1,
            "cancelled_tasks": 1,
            "completed_tasks_today": 1,
            "failed_tasks_today": 1,
            "system_load": 1.0,  # 3 held tasks over 3 online slots
        }
        tomorrow = s.hive.status(at(86_400))["metrics"]
        assert (tomorrow["completed_tasks_today"], tomorrow["failed_tasks_today"]) == (0, 0)


# ---------------------------------------------------------------- log: sequence and replay


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
