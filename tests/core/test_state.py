"""Reads of the state (``core/state.py``): the folded status."""

from __future__ import annotations

from hivehub.core.commands import (
    AgentDisconnected,
    CancelTask,
)

from ._harness import NO_HEARTBEAT_EXPIRY, Sim, at


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
            "awaiting_approval_tasks": 0,
            "input_required_tasks": 0,
            "completed_tasks_today": 1,
            "failed_tasks_today": 1,
            "system_load": 1.0,  # 3 held tasks over 3 online slots
        }
        tomorrow = s.hive.status(at(86_400))["metrics"]
        assert (tomorrow["completed_tasks_today"], tomorrow["failed_tasks_today"]) == (0, 0)


# ---------------------------------------------------------------- log: sequence and replay
