"""The Tick (``core/tick.py``): task timeouts and heartbeat liveness."""

from __future__ import annotations

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    CompleteTask,
)
from hivehub.core.errors import (
    AgentNotFound,
    NotTaskHolder,
)
from hivehub.core.hive import HiveConfig
from hivehub.core.model import AgentStatus, TaskStatus

from ._harness import NO_HEARTBEAT_EXPIRY, Sim, at, of, one, snapshot, types


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
