"""Finished tasks beyond ``--retain-finished`` leave memory, not the API: the real hub
answers them from the log, identically, before and after a restart."""

from __future__ import annotations

from typing import Any

from tests.hubproc import Hub

RETAIN = 3


def run_one(h: Hub, agent_id: str, i: int, outcome: str) -> dict[str, Any]:
    """Submit a task the agent holds at once, report on it, and return it as GET answers it then."""
    t = h.post(
        "/api/tasks",
        {
            "id": f"t{i}",
            "type": "x",
            "input": {"n": i},
            "required_capabilities": [{"name": "x"}],
            "max_retries": 0,
        },
        expect=201,
    )
    assert t["assigned_agent_id"] == agent_id, t
    if outcome == "cancelled":
        h.post(f"/api/tasks/{t['id']}/cancel", {"reason": "no longer needed"}, expect=200)
    else:
        h.post(
            f"/api/tasks/{t['id']}/progress",
            {"agent_id": agent_id, "attempt": 1, "progress": 0.5, "current_step": f"step {i}"},
            expect=200,
        )
        if outcome == "completed":
            h.post(
                f"/api/tasks/{t['id']}/complete",
                {"agent_id": agent_id, "attempt": 1, "result": {"double": 2 * i}, "quality": 0.8},
                expect=200,
            )
        else:
            h.post(
                f"/api/tasks/{t['id']}/fail",
                {
                    "agent_id": agent_id,
                    "attempt": 1,
                    "error": {"code": "E", "message": f"bad {i}"},
                    "retryable": False,
                },
                expect=200,
            )
    got = h.get(f"/api/tasks/{t['id']}")
    assert got["status"] == outcome
    return got


def test_evicted_tasks_are_answered_identically_from_the_log_also_after_a_restart(hub_factory) -> None:
    args = ("--retain-finished", str(RETAIN), "--heartbeat-timeout", "120", "--learning-interval", "100000")
    h = hub_factory(*args).start()
    agent = h.post(
        "/api/agents", {"name": "w", "capabilities": [{"name": "x", "proficiency": 0.9}]}, expect=201
    )["id"]
    outcomes = [
        "completed",
        "failed",
        "cancelled",
        "completed",
        "completed",
        "failed",
        "completed",
        "completed",
    ]
    seen = [run_one(h, agent, i, o) for i, o in enumerate(outcomes)]
    pending = h.post(
        "/api/tasks", {"id": "waiting", "required_capabilities": [{"name": "nobody-has-this"}]}, expect=201
    )

    listed = [t["id"] for t in h.get("/api/tasks?limit=1000")["tasks"]]
    assert listed == ["waiting", "t7", "t6", "t5"]  # in memory: unfinished + the newest RETAIN finished
    status = h.get("/api/hive/status")["metrics"]
    assert (
        status["total_tasks"],
        status["completed_tasks"],
        status["failed_tasks"],
        status["cancelled_tasks"],
    ) == (9, 5, 2, 1)

    def check(hub: Hub) -> None:
        for t in seen:
            assert hub.get(f"/api/tasks/{t['id']}") == t, t["id"]
        assert hub.get("/api/tasks/waiting") == pending
        assert hub.request("GET", "/api/tasks/never-was")[0] == 404
        # the id of an evicted task is still taken; retrying it is refused with its own code
        code, body = hub.request("POST", "/api/tasks", {"id": "t0"})
        assert code == 409, body
        code, body = hub.request("POST", "/api/tasks/t1/retry", {})
        assert (code, body["error"]["code"]) == (409, "task_evicted"), body
        code, body = hub.request("POST", "/api/tasks/t0/complete", {"agent_id": agent, "attempt": 1})
        assert (code, body["error"]["code"]) == (409, "not_task_holder"), body

    check(h)
    # a dependency on an evicted completed task is satisfied
    child = h.post(
        "/api/tasks",
        {"id": "child", "depends_on": ["t0"], "required_capabilities": [{"name": "x"}]},
        expect=201,
    )
    assert child["status"] == "assigned" and child["assigned_agent_id"] == agent
    h.stop()

    h2 = hub_factory(*args, db=h.db).start()
    check(h2)
    assert [t["id"] for t in h2.get("/api/tasks?limit=1000")["tasks"]] == [
        "child",
        "waiting",
        "t7",
        "t6",
        "t5",
    ]
