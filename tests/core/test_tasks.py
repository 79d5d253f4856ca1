"""Task decisions (``core/tasks.py``) through ``Hive.handle``: submitting (one task or
an all-or-nothing batch), execution reports, failures and retries, cancels."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    CancelTask,
    CompleteTask,
    FailTask,
    ReleaseTask,
    ReportProgress,
    RetryTask,
    StartTask,
    SubmitTask,
    SubmitTasks,
    TaskSpec,
)
from hivehub.core.errors import (
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
from hivehub.core.hive import HiveConfig
from hivehub.core.model import TaskError, TaskStatus

from ._harness import NO_HEARTBEAT_EXPIRY, T0, Sim, at, of, one, reqs, snapshot, types
from ._state import full_state

TS = TaskStatus


def ready_hive() -> Sim:
    s = Sim()
    s.register("a", {"x": 0.9}, t=0, max_tasks=2)
    s.submit("old", {"nobody": 0.1}, t=0)
    return s


@pytest.mark.parametrize(
    ("third", "error"),
    [
        (TaskSpec(id="t3", depends_on=["no-such-task"]), DependencyNotFound),
        (TaskSpec(id="t3", depends_on=["t3"]), InvalidInput),  # itself
        (TaskSpec(id="t3", depends_on=["t4"]), DependencyNotFound),  # a later task of the batch
        (TaskSpec(id="old"), TaskExists),  # an id that is taken
        (TaskSpec(id="t1"), InvalidInput),  # twice in the batch
    ],
)
def test_a_batch_whose_third_task_is_invalid_leaves_no_trace(third: TaskSpec, error: type[HiveError]) -> None:
    s = ready_hive()
    before = full_state(s.hive, volatile=True)
    specs = [TaskSpec(id="t1"), TaskSpec(id="t2", depends_on=["t1"]), third, TaskSpec(id="t4")]
    with pytest.raises(error) as exc:
        s.do(SubmitTasks(id="req", specs=specs), 1)
    assert full_state(s.hive, volatile=True) == before
    assert "t1" not in s.hive.tasks and "t2" not in s.hive.tasks
    if not isinstance(exc.value, InvalidInput) or "duplicate" not in exc.value.message:
        assert exc.value.details["index"] == 2


def test_a_batch_decides_as_the_single_submissions_it_stands_for() -> None:
    specs = [
        TaskSpec(id="t1", required_capabilities=reqs({"x": 0.5}), priority="low"),
        TaskSpec(id="t2", depends_on=["t1"]),
        TaskSpec(id="t3", required_capabilities=reqs({"x": 0.5}), priority="critical"),
        TaskSpec(id="t4", required_capabilities=reqs({"x": 0.5})),
    ]
    batch, single = ready_hive(), ready_hive()
    out = batch.do(SubmitTasks(id="req", specs=specs, created_by="u"), 1)
    one_by_one = [
        e
        for i, spec in enumerate(specs)
        for e in single.do(SubmitTask(id=f"req#{i}", spec=spec, created_by="u"), 1)
    ]

    def plain(events: list[ev.Event]) -> list[tuple[str, object]]:
        return [(e.type, msgspec.to_builtins(e.data)) for e in events]

    assert plain(out) == plain(one_by_one)
    assert [d.task.id for d in of(out, ev.TaskCreated)] == ["t1", "t2", "t3", "t4"]
    assert {d.caused_by for d in of(out, ev.TaskCreated)} == {"req#0", "req#1", "req#2", "req#3"}
    # the first two with a slot took the agent's two slots, as one at a time would have
    assert [d.task_id for d in of(out, ev.TaskAssigned)] == ["t1", "t3"]
    assert batch.task("t2").status == TS.PENDING and batch.task("t2").depends_on == ["t1"]
    assert full_state(batch.hive) == full_state(single.hive)


def test_a_batch_task_depending_on_a_failed_task_fails_at_once_and_the_rest_is_created() -> None:
    s = ready_hive()
    s.submit("dead", t=0, max_retries=0)
    s.fail("dead", t=0, retryable=False)
    out = s.do(SubmitTasks(specs=[TaskSpec(id="t1", depends_on=["dead"]), TaskSpec(id="t2")]), 1)
    assert [d.task.id for d in of(out, ev.TaskCreated)] == ["t1", "t2"]
    failed = of(out, ev.TaskFailed)
    assert [(d.task_id, d.failure_kind) for d in failed] == [("t1", "dependency_failed")]
    assert s.task("t1").status == TS.FAILED and s.task("t2").status == TS.ASSIGNED


def test_generated_ids_and_no_command_id() -> None:
    s = ready_hive()
    out = s.hive.handle(SubmitTasks(specs=[TaskSpec(), TaskSpec()]), at(1))
    created = of(out, ev.TaskCreated)
    assert len({d.task.id for d in created}) == 2
    assert all(d.caused_by is None for d in created)


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
        assert (
            s.hive.next_deadline() == f.next_retry_at.timestamp()
        )  # one clock given: the monotonic axis is the wall one
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
