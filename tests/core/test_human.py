"""Human approval and mid-task input (``core/human.py``): the gate before a task runs,
and a person's answer to the question its holder asks while it runs."""

from __future__ import annotations

import random

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    ApproveTask,
    CancelTask,
    CompleteTask,
    Heartbeat,
    ProvideInput,
    RejectTask,
    RequestInput,
    RetryTask,
    StartTask,
    SubmitTask,
    TaskSpec,
)
from hivehub.core.errors import AttemptRequired, InvalidInput, InvalidTransition, NotTaskHolder
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import AgentStatus, TaskStatus
from hivehub.core.tasklog import fold_task, task_id_of

from ._harness import NO_HEARTBEAT_EXPIRY, Ids, Sim, at, of, one, snapshot, types
from ._state import differences, full_state

TS = TaskStatus
AS = AgentStatus


def ask(
    s: Sim,
    task_id: str,
    t: float,
    *,
    request_id: str = "q1",
    choices: list[str] | None = None,
    timeout: float = 60.0,
    agent_id: str | None = None,
    attempt: int | None = -1,
) -> list[ev.Event]:
    cmd = RequestInput(
        task_id=task_id,
        agent_id=agent_id or s.holder(task_id),
        attempt=s.task(task_id).attempt if attempt == -1 else attempt,
        request_id=request_id,
        question="Ship it?",
        choices=choices,
        timeout_seconds=timeout,
    )
    return s.do(cmd, t)


def answer(s: Sim, task_id: str, text: str, t: float, request_id: str | None = None) -> list[ev.Event]:
    return s.do(ProvideInput(task_id=task_id, answer=text, answered_by="bob", request_id=request_id), t)


def question(agent_id: str = "a", attempt: int | None = 1, request_id: str = "q") -> RequestInput:
    return RequestInput(task_id="t", agent_id=agent_id, attempt=attempt, request_id=request_id, question="?")


def refused(s: Sim, cmd: object, t: float, error: type[Exception]) -> None:
    """``cmd`` raises ``error`` and changes nothing (volatile state included)."""
    before = full_state(s.hive, volatile=True)
    snap = snapshot(s.hive)
    with pytest.raises(error):
        s.do(cmd, t)
    assert snapshot(s.hive) == snap
    after = full_state(s.hive, volatile=True)
    assert after == before, differences(before, after)


def running_task(config: HiveConfig = NO_HEARTBEAT_EXPIRY, **spec: object) -> Sim:
    s = Sim(config)
    s.register("a", t=0)
    s.submit("t", t=0, **spec)
    s.start("t", t=1)
    return s


def assert_replay_equal(s: Sim, last_tick: float | None = None) -> None:
    """A hive folding the log equals the live one, its timers drained to the last Tick
    (``last_tick`` seconds; by default the last Tick that emitted something)."""
    replay = Hive(s.hive.config, new_id=Ids("other"), rng=random.Random(1))
    for e in s.log:
        replay.apply(e)
    drained = at(last_tick) if last_tick is not None else None
    if drained is None:
        drained = max((e.timestamp for e in s.log if e.data.caused_by == "tick"), default=None)
    if drained is not None:
        replay.drain_timers(drained.timestamp())
    live, folded = full_state(s.hive), full_state(replay)
    assert live == folded, differences(live, folded)
    for task_id, t in s.hive.tasks.items():
        assert fold_task(e for e in s.log if task_id_of(e.data) == task_id) == t


# ---------------------------------------------------------------- approval


class TestApproval:
    def test_no_assignment_before_approval_even_with_idle_agents(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.register("b", t=0)
        out = s.do(SubmitTask(spec=TaskSpec(id="t", requires_approval=True), created_by="alice"), 1)
        assert types(out) == ["task_created", "task_approval_requested"]
        assert one(out, ev.TaskCreated).task.status == TS.AWAITING_APPROVAL
        assert one(out, ev.TaskApprovalRequested).requested_by == "alice"
        for t in (2, 100, 1000):
            assert not of(s.tick(t), ev.TaskAssigned)
        assert s.task("t").status == TS.AWAITING_APPROVAL
        assert s.task("t").requires_approval
        metrics = s.hive.status(at(1000))["metrics"]
        assert (metrics["awaiting_approval_tasks"], metrics["pending_tasks"]) == (1, 0)
        assert {s.agent("a").status, s.agent("b").status} == {AS.IDLE}

    def test_approval_queues_it_and_logs_the_approver(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        out = s.submit("t", t=1, requires_approval=True)
        assert one(out, ev.TaskApprovalRequested).requested_by == "anonymous"
        out = s.do(ApproveTask(task_id="t", approved_by="carol", comment="looks fine"), 2)
        assert types(out)[:2] == ["task_approved", "task_assigned"]
        approved = one(out, ev.TaskApproved)
        assert (approved.approved_by, approved.comment) == ("carol", "looks fine")
        t = s.task("t")
        assert (t.status, t.approved_by, t.assigned_agent_id) == (TS.ASSIGNED, "carol", "a")
        s.start("t", t=3)
        s.complete("t", t=4)
        assert s.task("t").status == TS.COMPLETED
        assert_replay_equal(s)

    def test_an_approved_task_waits_for_no_agent_like_any_pending_task(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.submit("t", t=0, requires_approval=True)
        assert types(s.do(ApproveTask(task_id="t"), 1)) == ["task_approved"]
        assert s.task("t").status == TS.PENDING
        assert of(s.register("a", t=2), ev.TaskAssigned)

    def test_rejection_cancels_it_by_the_approver_and_fails_its_dependents(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("t", t=0, requires_approval=True)
        s.submit("child", t=0, depends_on=["t"])
        s.submit("grandchild", t=0, depends_on=["child"])
        out = s.do(RejectTask(task_id="t", rejected_by="dave", reason="too costly"), 1)
        assert types(out)[:2] == ["task_rejected", "task_cancelled"]
        rejected = one(out, ev.TaskRejected)
        assert (rejected.rejected_by, rejected.reason) == ("dave", "too costly")
        cancelled = one(out, ev.TaskCancelled)
        assert (cancelled.cancelled_by, cancelled.reason) == ("dave", "rejected: too costly")
        assert cancelled.previous_status == TS.AWAITING_APPROVAL
        failed = of(out, ev.TaskFailed)
        assert [f.task_id for f in failed] == ["child", "grandchild"]
        assert {f.error.code for f in failed} == {"DEPENDENCY_FAILED"}
        assert (s.task("t").status, s.task("t").cancelled_by) == (TS.CANCELLED, "dave")
        assert not of(out, ev.TaskAssigned)
        assert_replay_equal(s)

    def test_a_rejected_task_cannot_be_retried_past_the_gate(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("t", t=0, requires_approval=True)
        s.do(RejectTask(task_id="t"), 1)
        refused(s, RetryTask(task_id="t"), 2, InvalidTransition)
        # cancelled while awaiting approval: never approved either
        s.submit("u", t=3, requires_approval=True)
        s.do(CancelTask(task_id="u"), 4)
        refused(s, RetryTask(task_id="u"), 5, InvalidTransition)

    def test_an_approved_task_that_failed_can_be_retried(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("t", t=0, requires_approval=True, max_retries=0)
        s.do(ApproveTask(task_id="t"), 1)
        s.fail("t", t=2)
        assert s.task("t").status == TS.FAILED
        out = s.do(RetryTask(task_id="t"), 3)
        assert types(out)[:2] == ["task_retried", "task_assigned"]
        assert s.task("t").approved_by == "api"

    @pytest.mark.parametrize("status", ["pending", "assigned", "running", "completed", "cancelled"])
    def test_approving_or_rejecting_a_task_not_awaiting_approval_is_refused(self, status: str) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        if status != "pending":
            s.register("a", t=0)
        s.submit("t", t=0)
        if status in ("running", "completed"):
            s.start("t", t=1)
        if status == "completed":
            s.complete("t", t=2)
        if status == "cancelled":
            s.do(CancelTask(task_id="t"), 2)
        assert s.task("t").status == status
        refused(s, ApproveTask(task_id="t"), 3, InvalidTransition)
        refused(s, RejectTask(task_id="t"), 3, InvalidTransition)

    def test_approving_twice_is_refused(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.submit("t", t=0, requires_approval=True)
        s.do(ApproveTask(task_id="t"), 1)
        refused(s, ApproveTask(task_id="t"), 2, InvalidTransition)


class TestApprovalWithDependencies:
    def test_a_dependency_completed_before_approval(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("dep", t=0)
        s.submit("t", t=0, requires_approval=True, depends_on=["dep"])
        s.start("dep", t=1)
        out = s.complete("dep", t=2)
        assert not of(out, ev.TaskAssigned)  # completed, but t still awaits approval
        assert s.task("t").status == TS.AWAITING_APPROVAL
        out = s.do(ApproveTask(task_id="t"), 3)
        assert one(out, ev.TaskAssigned).task_id == "t"
        assert_replay_equal(s)

    def test_approved_before_its_dependency_completed_waits_for_it(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0, max_tasks=2)
        s.submit("dep", t=0)
        s.submit("t", t=0, requires_approval=True, depends_on=["dep"])
        out = s.do(ApproveTask(task_id="t"), 1)
        assert types(out) == ["task_approved"]  # pending, waiting on dep (a has a free slot)
        assert s.task("t").status == TS.PENDING
        s.start("dep", t=2)
        out = s.complete("dep", t=3)
        assert one(out, ev.TaskAssigned).task_id == "t"
        assert_replay_equal(s)

    def test_a_dependency_that_failed_before_approval_fails_it_when_approved(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("dep", t=0, max_retries=0)
        s.submit("t", t=0, requires_approval=True, depends_on=["dep"])
        out = s.fail("dep", t=1)
        assert s.task("t").status == TS.AWAITING_APPROVAL  # a person still decides about it
        assert not [f for f in of(out, ev.TaskFailed) if f.task_id == "t"]
        out = s.do(ApproveTask(task_id="t"), 2)
        assert types(out) == ["task_approved", "task_failed"]
        failed = one(out, ev.TaskFailed)
        assert (failed.task_id, failed.error.code) == ("t", "DEPENDENCY_FAILED")
        assert s.task("t").status == TS.FAILED
        assert_replay_equal(s)


# ---------------------------------------------------------------- input


class TestInputRoundTrip:
    def test_question_and_answer(self) -> None:
        s = running_task()
        out = ask(s, "t", 5, choices=None, timeout=120.0)
        req = one(out, ev.TaskInputRequired)
        assert (req.agent_id, req.attempt_number, req.request_id) == ("a", 1, "q1")
        assert (req.question, req.choices, req.timeout_seconds) == ("Ship it?", None, 120.0)
        assert req.deadline == at(125)
        t = s.task("t")
        assert t.status == TS.INPUT_REQUIRED
        assert t.pending_input is not None and t.pending_input.request_id == "q1"
        assert t.pending_input.deadline == at(125)
        # the agent still holds it: its slot stays taken, it stays active, it is not offered again
        assert s.agent("a").current_tasks == ["t"] and s.agent("a").status == AS.ACTIVE
        assert s.hive.status(at(5))["metrics"]["input_required_tasks"] == 1
        s.do(Heartbeat(agent_id="a"), 6)
        s.progress("t", 0.5, t=7)  # it may still report progress
        s.submit("other", t=8)
        assert s.task("other").status == TS.PENDING  # a's one slot is still taken

        out = answer(s, "t", "ship it", 10)
        got = one(out, ev.TaskInputReceived)
        assert (got.agent_id, got.attempt_number, got.request_id) == ("a", 1, "q1")
        assert (got.answer, got.answered_by, got.timed_out) == ("ship it", "bob", False)
        t = s.task("t")
        assert (t.status, t.pending_input) == (TS.RUNNING, None)
        assert t.last_input is not None
        assert (t.last_input.answer, t.last_input.request_id, t.last_input.attempt) == ("ship it", "q1", 1)
        out = s.complete("t", t=11, result="done")
        assert s.task("t").status == TS.COMPLETED
        assert one(out, ev.TaskAssigned).task_id == "other"
        assert_replay_equal(s)

    def test_an_assigned_task_is_started_by_its_question(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("t", t=0)
        out = ask(s, "t", 1)
        assert types(out) == ["task_started", "task_input_required"]

    def test_a_repeated_question_is_idempotent(self) -> None:
        s = running_task()
        ask(s, "t", 2)
        assert ask(s, "t", 3) == []
        assert s.task("t").pending_input is not None

    def test_several_questions_in_one_attempt(self) -> None:
        s = running_task()
        ask(s, "t", 2, request_id="q1")
        answer(s, "t", "one", 3)
        ask(s, "t", 4, request_id="q2", choices=["a", "b"])
        answer(s, "t", "b", 5, request_id="q2")
        last = s.task("t").last_input
        assert last is not None and (last.request_id, last.answer) == ("q2", "b")

    def test_choices_are_validated(self) -> None:
        s = running_task()
        ask(s, "t", 2, choices=["yes", "no"])
        req = s.task("t").pending_input
        assert req is not None and req.choices == ["yes", "no"]
        refused(s, ProvideInput(task_id="t", answer="maybe"), 3, InvalidInput)
        refused(s, ProvideInput(task_id="t", answer="YES"), 3, InvalidInput)
        got = one(answer(s, "t", "no", 4), ev.TaskInputReceived)
        assert got.answer == "no"

    @pytest.mark.parametrize(
        ("choices", "timeout", "question"),
        [([], 60.0, "q?"), (["x"] * 51, 60.0, "q?"), (["x" * 1001], 60.0, "q?"), (None, 0.0, "q?"),
         (None, 7 * 24 * 3600.0 + 1, "q?"), (None, 60.0, ""), (None, 60.0, "x" * 10_001)],
    )  # fmt: skip
    def test_a_bad_question_is_refused(
        self, choices: list[str] | None, timeout: float, question: str
    ) -> None:
        s = running_task()
        cmd = RequestInput(
            task_id="t",
            agent_id="a",
            attempt=1,
            request_id="q1",
            question=question,
            choices=choices,
            timeout_seconds=timeout,
        )
        refused(s, cmd, 2, InvalidInput)

    def test_an_answer_too_long_is_refused(self) -> None:
        s = running_task()
        ask(s, "t", 2)
        refused(s, ProvideInput(task_id="t", answer="x" * 100_001), 3, InvalidInput)


class TestInputTimeout:
    def test_the_deadline_answers_timed_out(self) -> None:
        s = running_task()
        ask(s, "t", 2, timeout=30.0)
        assert s.hive.next_deadline() == at(32).timestamp()
        assert not of(s.tick(31), ev.TaskInputReceived)
        out = s.tick(32)
        got = one(out, ev.TaskInputReceived)
        assert (got.answer, got.answered_by, got.timed_out, got.request_id) == (None, "timeout", True, "q1")
        t = s.task("t")
        assert (t.status, t.pending_input) == (TS.RUNNING, None)
        assert t.last_input is not None and t.last_input.timed_out
        # the late answer is refused: it no longer waits
        refused(s, ProvideInput(task_id="t", answer="late"), 33, InvalidTransition)
        assert_replay_equal(s)

    def test_an_answered_question_does_not_time_out(self) -> None:
        s = running_task()
        ask(s, "t", 2, timeout=30.0)
        answer(s, "t", "yes", 10)
        ask(s, "t", 20, request_id="q2", timeout=100.0)
        assert not of(s.tick(40), ev.TaskInputReceived)  # q1's deadline (32) passed: not q2's
        assert s.task("t").status == TS.INPUT_REQUIRED
        assert one(s.tick(120), ev.TaskInputReceived).request_id == "q2"
        assert_replay_equal(s)


class TestTaskTimeoutSuspended:
    def test_suspended_while_waiting_and_applied_again_after(self) -> None:
        s = running_task(timeout_seconds=10.0)  # started at 1: due at 11
        ask(s, "t", 5, timeout=1000.0)  # 4 s used, 6 s left
        assert not of(s.tick(30), ev.TaskFailed)
        assert not of(s.tick(200), ev.TaskFailed)
        assert s.task("t").status == TS.INPUT_REQUIRED
        answer(s, "t", "go", 300)  # waited 295 s: now due at 306
        assert s.hive.next_deadline() == pytest.approx(at(306).timestamp())
        assert not of(s.tick(305.5), ev.TaskFailed)
        failed = one(s.tick(306), ev.TaskFailed)
        assert (failed.error.code, failed.failure_kind) == ("TASK_TIMEOUT", "timeout")
        # the execution time is the agent's, not the person's
        assert failed.execution_time_ms == pytest.approx(10_000.0)
        assert_replay_equal(s)

    def test_an_input_timeout_moves_the_task_deadline_too(self) -> None:
        s = running_task(timeout_seconds=10.0)
        ask(s, "t", 5, timeout=20.0)  # 6 s left when it answers
        out = s.tick(25)
        assert types(out) == ["task_input_received"]
        assert not of(s.tick(30.5), ev.TaskFailed)
        assert one(s.tick(31), ev.TaskFailed).error.code == "TASK_TIMEOUT"
        assert_replay_equal(s)

    def test_a_completion_after_the_answer_counts_the_agent_time(self) -> None:
        s = running_task(timeout_seconds=100.0)
        ask(s, "t", 3)
        answer(s, "t", "ok", 53)
        done = one(s.complete("t", t=55), ev.TaskCompleted)
        assert done.execution_time_ms == pytest.approx(4000.0)  # 2 s before, 2 s after the wait

    def test_a_question_past_the_task_timeout_is_refused(self) -> None:
        s = running_task(timeout_seconds=10.0)
        refused(s, question("a", 1, "q"), 12, InvalidTransition)


class TestCancel:
    def test_cancel_while_awaiting_approval(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.submit("t", t=0, requires_approval=True)
        s.submit("child", t=0, depends_on=["t"])
        out = s.do(CancelTask(task_id="t", cancelled_by="eve"), 1)
        assert one(out, ev.TaskCancelled).previous_status == TS.AWAITING_APPROVAL
        assert one(out, ev.TaskFailed).task_id == "child"
        assert s.task("t").status == TS.CANCELLED
        assert s.hive.status(at(1))["metrics"]["awaiting_approval_tasks"] == 0

    def test_cancel_while_input_required(self) -> None:
        s = running_task()
        ask(s, "t", 2, timeout=10.0)
        out = s.do(CancelTask(task_id="t", cancelled_by="eve"), 3)
        cancelled = one(out, ev.TaskCancelled)
        assert (cancelled.previous_status, cancelled.agent_id) == (TS.INPUT_REQUIRED, "a")
        t = s.task("t")
        assert (t.status, t.pending_input) == (TS.CANCELLED, None)
        assert s.agent("a").current_tasks == [] and s.agent("a").status == AS.IDLE
        assert not of(s.tick(20), ev.TaskInputReceived)  # its deadline no longer answers anything
        refused(s, ProvideInput(task_id="t", answer="x"), 21, InvalidTransition)
        assert_replay_equal(s, last_tick=20)


class TestAgentLost:
    CONFIG = HiveConfig(heartbeat_timeout=10.0, retry_base_seconds=1.0, retry_cap_seconds=1.0)

    def test_agent_lost_while_input_required_fails_the_attempt(self) -> None:
        s = running_task(self.CONFIG)
        ask(s, "t", 2, timeout=1000.0)
        out = s.tick(13)  # silent since 2
        failed = one(out, ev.TaskFailed)
        assert (failed.error.code, failed.failure_kind, failed.retry_scheduled) == (
            "AGENT_LOST",
            "agent_lost",
            True,
        )
        assert failed.execution_time_ms is not None
        t = s.task("t")
        assert (t.status, t.pending_input, t.last_input, t.assigned_agent_id) == (
            TS.PENDING,
            None,
            None,
            None,
        )
        assert s.hive.status(at(13))["metrics"]["input_required_tasks"] == 0
        assert_replay_equal(s)

    def test_without_retries_it_fails(self) -> None:
        s = running_task(self.CONFIG, max_retries=0)
        ask(s, "t", 2)
        s.tick(13)
        assert s.task("t").status == TS.FAILED

    def test_heartbeats_keep_it_alive_while_it_waits(self) -> None:
        s = running_task(self.CONFIG)
        ask(s, "t", 2, timeout=1000.0)
        for t in range(8, 60, 8):
            s.heartbeat("a", t)
            assert not of(s.tick(t + 0.5), ev.TaskFailed)
        assert s.task("t").status == TS.INPUT_REQUIRED

    def test_a_reconnect_without_the_task_fails_the_attempt(self) -> None:
        s = running_task()
        ask(s, "t", 2)
        out = s.register("a", t=3, running={})
        assert one(out, ev.TaskFailed).error.code == "AGENT_LOST"
        s2 = running_task()
        ask(s2, "t", 2)
        assert not of(s2.register("a", t=3, running={"t": 1}), ev.TaskFailed)  # still runs it
        assert s2.task("t").status == TS.INPUT_REQUIRED


class TestRefused:
    def test_wrong_agent_or_attempt(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", t=0)
        s.register("b", t=0)
        s.submit("t", t=0)
        s.start("t", t=1)
        holder = s.holder("t")
        other = "b" if holder == "a" else "a"
        refused(s, question(other, 1, "q"), 2, NotTaskHolder)
        refused(s, question(holder, 2, "q"), 2, NotTaskHolder)
        refused(s, question(holder, None, "q"), 2, AttemptRequired)

    def test_answers_and_reports_that_do_not_fit(self) -> None:
        s = running_task()
        refused(s, ProvideInput(task_id="t", answer="x"), 2, InvalidTransition)  # not waiting
        ask(s, "t", 3, request_id="q1")
        refused(s, ProvideInput(task_id="t", answer="x", request_id="q9"), 4, InvalidTransition)
        refused(s, question("a", 1, "q2"), 4, InvalidTransition)
        # it completes once the question is answered (or timed out), not while it waits
        refused(s, CompleteTask(task_id="t", agent_id="a", attempt=1), 4, InvalidTransition)
        assert s.do(StartTask(task_id="t", agent_id="a", attempt=1), 4) == []  # a repeated start
        answer(s, "t", "x", 5)
        # an answered request id is not asked again in the same attempt
        refused(s, question("a", 1, "q1"), 6, InvalidTransition)

    def test_a_failure_reported_while_waiting(self) -> None:
        s = running_task()
        ask(s, "t", 2)
        out = s.fail("t", t=3)
        failed = one(out, ev.TaskFailed)
        assert failed.retry_scheduled and s.task("t").pending_input is None
