"""Retention of finished tasks in memory (``HiveConfig.retain_finished``) and the
fold of one task from its own events (``core/tasklog.py``)."""

from __future__ import annotations

import random

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import CancelTask, CompleteTask, FailTask, RetryTask
from hivehub.core.errors import NotTaskHolder, TaskEvicted, TaskExists
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import TaskError, TaskStatus
from hivehub.core.tasklog import task_id_of

from ._harness import Ids, Sim, one
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
