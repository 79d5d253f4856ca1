"""Retention of finished tasks in memory (``HiveConfig.retain_finished``) and the
fold of one task from its own events (``core/tasklog.py``)."""

from __future__ import annotations

import random

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    CancelTask,
    CompleteTask,
    FailTask,
    RetryTask,
    SubmitTask,
    SubmitTasks,
    TaskSpec,
)
from hivehub.core.errors import (
    DependencyNotFound,
    FactsRequired,
    NotTaskHolder,
    TaskEvicted,
    TaskExists,
    TaskNotFound,
)
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import TaskError, TaskStatus
from hivehub.core.tasklog import task_id_of

from ._harness import Ids, Sim, at, of, one, snapshot
from .test_hive import busy_history, projection

TS = TaskStatus


def events_of(log: list[ev.Event], task_id: str) -> list[ev.Event]:
    return [e for e in log if task_id_of(e.data) == task_id]


def finish(s: Sim, task_id: str, t: float) -> None:
    """Submit a task the one agent ``a`` runs, and complete it."""
    s.submit(task_id, t=t)
    s.complete(task_id, "a", t=t)


def retaining(n: int) -> Sim:
    s = Sim(HiveConfig(retain_finished=n, heartbeat_timeout=10_000))
    s.register("a", t=0)
    return s


class TestEviction:
    def test_the_oldest_finished_tasks_beyond_the_limit_are_evicted_in_finish_order(self) -> None:
        s = retaining(2)
        s.submit("p", {"nobody": 0.1}, t=0)  # pending: never evicted, however old
        s.submit("c1", {"nobody": 0.1}, t=0)
        for i in range(1, 5):
            finish(s, f"t{i}", i)
        s.do(CancelTask(task_id="c1", cancelled_by="u"), 5)  # c1 is older but finished last
        assert list(s.hive.tasks) == ["p", "c1", "t4"]  # (in creation order)
        assert list(s.hive._finished) == ["t4", "c1"]
        assert s.hive.evicted == {"t1": TS.COMPLETED, "t2": TS.COMPLETED, "t3": TS.COMPLETED}
        st = s.hive.status(s.hive.tasks["p"].created_at)["metrics"]
        # counters still count every task, in memory or not
        assert (st["total_tasks"], st["completed_tasks"], st["cancelled_tasks"], st["pending_tasks"]) == (
            6,
            4,
            1,
            1,
        )

    def test_a_retried_task_is_no_longer_finished_and_finishes_again_as_the_newest(self) -> None:
        s = retaining(2)
        s.submit("f", t=0, max_retries=0)
        s.fail("f", "a", t=0, retryable=False)
        finish(s, "t1", 1)
        assert list(s.hive._finished) == ["f", "t1"]
        s.do(RetryTask(task_id="f"), 2)  # assigned again at once: out of the finished set
        assert s.hive.tasks["f"].status == TS.ASSIGNED and list(s.hive._finished) == ["t1"]
        s.complete("f", "a", t=3)
        finish(s, "t2", 4)
        assert list(s.hive._finished) == ["f", "t2"] and list(s.hive.evicted) == ["t1"]

    def test_an_id_of_an_evicted_task_is_still_taken(self) -> None:
        s = retaining(1)
        finish(s, "t1", 1)
        finish(s, "t2", 2)
        assert "t1" in s.hive.evicted
        with pytest.raises(TaskExists, match="already exists"):
            s.submit("t1", t=3)

    def test_a_dependency_on_an_evicted_completed_task_is_satisfied(self) -> None:
        s = retaining(1)
        finish(s, "dep", 1)
        finish(s, "other", 2)
        assert "dep" in s.hive.evicted
        events = s.submit("child", t=3, depends_on=["dep"])
        assert one(events, ev.TaskAssigned).task_id == "child"

    def test_a_dependency_on_an_evicted_failed_task_fails_the_dependent(self) -> None:
        s = retaining(1)
        s.submit("dep", t=1, max_retries=0)
        s.fail("dep", "a", t=1, retryable=False)
        finish(s, "other", 2)
        assert s.hive.evicted["dep"] == TS.FAILED
        failed = one(s.submit("child", t=3, depends_on=["dep"]), ev.TaskFailed)
        assert (
            failed.error.code == "DEPENDENCY_FAILED" and failed.error.details["dependency_status"] == "failed"
        )
        assert s.hive.tasks["child"].status == TS.FAILED

    def test_an_evicted_task_can_no_longer_change(self) -> None:
        s = retaining(1)
        s.submit("f", t=1, max_retries=0)
        s.fail("f", "a", t=1, retryable=False)
        finish(s, "t2", 2)
        with pytest.raises(TaskEvicted):
            s.do(RetryTask(task_id="f"), 3)
        with pytest.raises(TaskEvicted):
            s.do(CancelTask(task_id="f", cancelled_by="u"), 3)
        with pytest.raises(NotTaskHolder):  # a stale report, as before eviction
            s.do(CompleteTask(task_id="f", agent_id="a"), 3)
        with pytest.raises(NotTaskHolder):
            s.do(FailTask(task_id="f", agent_id="a", error=TaskError("X", "y")), 3)

    def test_a_dependent_of_an_evicted_failed_task_cannot_be_retried_into_a_wait_forever(self) -> None:
        s = retaining(2)
        s.submit("dep", t=1, max_retries=0)
        s.submit("child", t=1, depends_on=["dep"])
        s.fail("dep", "a", t=1, retryable=False)  # child fails with it
        finish(s, "t3", 2)
        assert "dep" in s.hive.evicted and s.hive.tasks["child"].status == TS.FAILED
        with pytest.raises(TaskEvicted, match="depends on dep"):
            s.do(RetryTask(task_id="child"), 3)

    def test_nothing_keeps_a_reference_to_an_evicted_task(self) -> None:
        s = retaining(0)
        finish(s, "t1", 1)
        h = s.hive
        assert "t1" not in h.tasks and not h._finished and not h._waiting and "t1" not in h._queued
        assert all("t1" not in a.current_tasks for a in h.agents.values())
        s.tick(10_000)  # stale deadline entries for t1 are skipped
        assert h.evicted == {"t1": TS.COMPLETED}


class TestReplay:
    def test_replay_evicts_the_same_tasks_and_rebuilds_the_same_state(self) -> None:
        s = busy_history_retaining(2)
        assert s.hive.evicted, "the history must evict something"
        replica = Hive(
            HiveConfig(heartbeat_timeout=15, retain_finished=2), new_id=Ids("r"), rng=random.Random(9)
        )
        for body in s.wire:
            replica.apply(ev.decode_event(body))
        assert projection(replica) == projection(s.hive)
        assert replica.evicted == s.hive.evicted
        assert list(replica._finished) == list(s.hive._finished)
        assert replica.status(s.log[-1].timestamp) == s.hive.status(s.log[-1].timestamp)

    def test_retention_changes_nothing_but_which_finished_tasks_are_in_memory(self) -> None:
        kept, evicting = busy_history(), busy_history_retaining(2)
        assert types_of(kept) == types_of(evicting)  # same decisions, same events
        k_agents, k_tasks = projection(kept.hive)
        e_agents, e_tasks = projection(evicting.hive)
        assert e_agents == k_agents
        assert {i: t for i, t in k_tasks.items() if i in e_tasks} == e_tasks
        assert set(k_tasks) == set(e_tasks) | set(evicting.hive.evicted)


def busy_history_retaining(n: int) -> Sim:
    """``busy_history`` with retention: the same commands against a hive that evicts."""
    return busy_history(retain_finished=n)


def types_of(s: Sim) -> list[tuple[str, str | None]]:
    return [(e.type, task_id_of(e.data)) for e in s.log]


def forgetting(retain: int, remember: int) -> Sim:
    s = Sim(HiveConfig(retain_finished=retain, remember_evicted=remember, heartbeat_timeout=10_000))
    s.register("a", t=0)
    return s


class TestForgetting:
    """Beyond ``remember_evicted`` the core forgets evicted ids; the rules that need
    a forgotten task's final status take it as a fact read from the log (``Sim.do``
    reads it from its log, as the service reads the store)."""

    def test_the_index_keeps_the_newest_evictions_and_counts_the_rest(self) -> None:
        s = forgetting(1, 2)
        for i in range(1, 7):
            finish(s, f"t{i}", i)
        h = s.hive
        assert list(h.tasks) == ["t6"] and h.evicted == {"t4": TS.COMPLETED, "t5": TS.COMPLETED}
        assert list(h._evicted_order) == ["t4", "t5"] and h.forgotten == 3
        assert h.status(at(7))["metrics"]["total_tasks"] == 6  # every task still counts
        assert h.unknown_task_ids(SubmitTask(spec=TaskSpec(id="t1", depends_on=["t5", "t2"]))) == ("t1", "t2")

    def test_bounded_after_thousands_of_tasks(self) -> None:
        # (bench/retention.py measures the bytes; before the bound the index held 4,990 ids)
        s = forgetting(10, 100)
        for i in range(5000):
            finish(s, f"t{i}", i)
        h = s.hive
        assert len(h.tasks) == 10 and len(h.evicted) == len(h._evicted_order) == 100
        assert h.forgotten == 4890 and h.status(at(0))["metrics"]["total_tasks"] == 5000

    def test_an_id_of_a_forgotten_task_is_still_taken(self) -> None:
        s = forgetting(0, 0)
        finish(s, "old", 1)
        assert "old" not in s.hive.evicted and s.hive.forgotten == 1
        before = snapshot(s.hive)
        with pytest.raises(TaskExists, match="already exists"):
            s.submit("old", t=2)
        with pytest.raises(TaskExists):
            s.do(SubmitTasks(specs=[TaskSpec(id="new"), TaskSpec(id="old")]), 2)
        assert snapshot(s.hive) == before  # refused: nothing changed
        assert one(s.submit("fresh", t=3), ev.TaskCreated).task.id == "fresh"  # not in the log: free

    def test_dependencies_on_forgotten_tasks(self) -> None:
        s = forgetting(0, 0)
        finish(s, "ok", 1)
        s.submit("bad", t=1, max_retries=0)
        s.fail("bad", "a", t=1, retryable=False)
        assert not s.hive.evicted and s.hive.forgotten == 2
        assert one(s.submit("child", t=2, depends_on=["ok"]), ev.TaskAssigned).task_id == "child"
        failed = one(s.submit("orphan", t=3, depends_on=["bad"]), ev.TaskFailed)
        assert failed.error.details == {"dependency": "bad", "dependency_status": "failed"}
        with pytest.raises(DependencyNotFound):
            s.submit("x", t=4, depends_on=["never"])

    def test_a_forgotten_task_can_no_longer_change(self) -> None:
        s = forgetting(0, 0)
        s.submit("f", t=1, max_retries=0)
        s.fail("f", "a", t=1, retryable=False)
        before = snapshot(s.hive)
        with pytest.raises(TaskEvicted) as exc:
            s.do(RetryTask(task_id="f"), 2)
        assert exc.value.details["status"] == "failed"
        with pytest.raises(TaskEvicted):
            s.do(CancelTask(task_id="f", cancelled_by="u"), 2)
        with pytest.raises(NotTaskHolder):  # a stale report, as before eviction
            s.do(CompleteTask(task_id="f", agent_id="a", attempt=1), 2)
        with pytest.raises(TaskNotFound):  # never existed: the log says so
            s.do(RetryTask(task_id="never"), 2)
        assert snapshot(s.hive) == before

    def test_a_dependent_of_a_forgotten_failed_task_cannot_be_retried(self) -> None:
        s = forgetting(1, 0)
        s.submit("dep", t=1, max_retries=0)
        s.submit("child", t=1, depends_on=["dep"])
        s.fail("dep", "a", t=1, retryable=False)  # child fails with it
        finish(s, "t3", 2)
        assert s.hive.forgotten == 2 and list(s.hive.tasks) == ["t3"]
        s2 = forgetting(2, 0)  # child still in memory, dep forgotten
        s2.submit("dep", t=1, max_retries=0)
        s2.submit("child", t=1, depends_on=["dep"])
        s2.fail("dep", "a", t=1, retryable=False)
        finish(s2, "t3", 2)
        assert "dep" not in s2.hive.tasks and "child" in s2.hive.tasks and not s2.hive.evicted
        with pytest.raises(TaskEvicted, match="depends on dep"):
            s2.do(RetryTask(task_id="child"), 3)

    def test_without_the_facts_the_core_refuses_to_guess(self) -> None:
        s = forgetting(0, 0)
        finish(s, "old", 1)
        before = snapshot(s.hive)
        with pytest.raises(FactsRequired) as exc:
            s.hive.handle(SubmitTask(spec=TaskSpec(id="old")), at(2))
        assert exc.value.task_ids == ("old",)
        assert snapshot(s.hive) == before
        s.hive.handle(SubmitTask(spec=TaskSpec()), at(2))  # a hub-generated id needs none

    def test_a_batch_still_knows_what_it_forgets_while_it_runs(self) -> None:
        s = forgetting(0, 0)
        s.submit("bad", t=1, max_retries=0)
        s.fail("bad", "a", t=1, retryable=False)
        # b1 fails at once (its dependency failed), is evicted and forgotten; b2 depends on b1
        events = s.do(
            SubmitTasks(specs=[TaskSpec(id="b1", depends_on=["bad"]), TaskSpec(id="b2", depends_on=["b1"])]),
            2,
        )
        assert [(d.task_id, d.error.details["dependency"]) for d in of(events, ev.TaskFailed)] == [
            ("b1", "bad"),
            ("b2", "b1"),
        ]

    def test_replay_forgets_the_same(self) -> None:
        s = Sim(HiveConfig(heartbeat_timeout=15, retain_finished=2, remember_evicted=1))
        s.register("a", t=0, max_tasks=2)
        for i in range(6):
            finish(s, f"t{i}", i)
        s.submit("c", {"nobody": 0.1}, t=7)
        s.do(CancelTask(task_id="c", cancelled_by="u"), 8)
        replica = Hive(s.hive.config, new_id=Ids("r"), rng=random.Random(9))
        for body in s.wire:
            replica.apply(ev.decode_event(body))
        assert replica.evicted == s.hive.evicted and list(replica._evicted_order) == list(
            s.hive._evicted_order
        )
        assert replica.forgotten == s.hive.forgotten == 4

    def test_the_bounds_are_checked(self) -> None:
        with pytest.raises(ValueError, match="remember_evicted"):
            HiveConfig(remember_evicted=-1)
        with pytest.raises(ValueError, match="retain_finished"):
            HiveConfig(retain_finished=-1)
