"""Agents doing real work: real ``hive serve`` and real ``hive agent`` processes.

Every wait is for a specific state or event (``wait_for``), never a fixed sleep.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers"


def online(hub: Hub, name: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for a in hub.get("/api/agents?limit=1000")["agents"]:
            if a["name"] == name and a["status"] in ("idle", "active"):
                return a
        return None

    return wait_for(find, 30, what=f"agent {name} online")


def submit(hub: Hub, **spec: Any) -> dict[str, Any]:
    return hub.post("/api/tasks", spec, expect=201)


def task_ends(hub: Hub, tid: str, status: str = "completed", timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        t = hub.get(f"/api/tasks/{tid}")
        if t["status"] in ("completed", "failed", "cancelled"):
            return t
        return None

    t = wait_for(done, timeout, what=f"task {tid} to end")
    assert t["status"] == status, t
    return t


def task_events(hub: Hub, tid: str) -> list[dict[str, Any]]:
    return [
        e
        for e in hub.events()
        if e["data"].get("task_id") == tid or (e["type"] == "task_created" and e["data"]["task"]["id"] == tid)
    ]


def gapless(events: list[dict[str, Any]]) -> None:
    seqs = [e["sequence"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))


def test_completion_with_progress_and_true_values(hub: Hub, agents) -> None:
    agents(hub, "A", ["text:0.9"], f"{H}:echo")
    a = online(hub, "A")
    t = submit(
        hub,
        type="text",
        description="echo it",
        required_capabilities=[{"name": "text", "min_proficiency": 0.5}],
        input={"v": 1},
    )
    done = task_ends(hub, t["id"])
    assert done["result"] == {"echo": {"v": 1}, "agent": "A", "attempt": 1}
    assert done["assigned_agent_id"] == a["id"]
    evs = task_events(hub, t["id"])
    types = [e["type"] for e in evs]
    assert types == ["task_created", "task_assigned", "task_started", "task_progress", "task_completed"]
    created, assigned, started, progress, completed = (e["data"] for e in evs)
    assert created["matching_agents"] == 1
    assert assigned["agent_id"] == a["id"] and assigned["assignment_reason"] == "capability_match"
    assert 0 < assigned["score"] <= 1 and set(assigned["score_breakdown"]) >= {
        "proficiency",
        "reliability",
        "availability",
    }
    assert assigned["estimated_completion"] is None  # no history yet: no invented estimate
    assert started["attempt_number"] == 1
    assert progress["progress"] == 0.5 and progress["current_step"] == "halfway"
    assert progress["estimated_completion"] is not None
    # execution time is measured from the start report to the completion report
    from datetime import datetime

    def ts(x: str) -> datetime:
        return datetime.fromisoformat(x.replace("Z", "+00:00"))

    assert completed["execution_time_ms"] == pytest.approx(
        (ts(completed["timestamp"]) - ts(started["timestamp"])).total_seconds() * 1000, abs=0.01
    )
    perf = [
        e["data"] for e in hub.events(types="agent_performance_updated") if e["data"]["agent_id"] == a["id"]
    ]
    assert perf[-1]["metrics"]["tasks_completed"] == 1
    assert perf[-1]["metrics"]["success_rate"] == 1.0
    assert perf[-1]["metrics"]["average_response_time_ms"] == pytest.approx(
        completed["execution_time_ms"], abs=0.01
    )
    status = [
        (e["data"]["old_status"], e["data"]["new_status"], e["data"]["reason"])
        for e in hub.events(types="agent_status_changed")
        if e["data"]["agent_id"] == a["id"]
    ]
    assert ("idle", "active", "task_assigned") in status and ("active", "idle", "task_completed") in status
    # a second task of the same type now gets an estimate from the observed duration
    t2 = submit(
        hub, type="text", required_capabilities=[{"name": "text", "min_proficiency": 0.5}], input={"v": 2}
    )
    task_ends(hub, t2["id"])
    a2 = [e for e in task_events(hub, t2["id"]) if e["type"] == "task_assigned"][0]["data"]
    assert a2["estimated_completion"] is not None
    gapless(hub.events())


def test_failure_then_retry_on_another_agent(hub: Hub, agents) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:flaky", env={"HIVE_TEST_FAIL": "1"})
    agents(hub, "B", ["x:0.6"], f"{H}:flaky")
    a, b = online(hub, "A"), online(hub, "B")
    t = submit(hub, type="x", required_capabilities=[{"name": "x", "min_proficiency": 0.5}])
    done = task_ends(hub, t["id"])
    assert done["result"] == {"ok": True, "agent": "B"}
    evs = task_events(hub, t["id"])
    assigned = [e["data"] for e in evs if e["type"] == "task_assigned"]
    failed = [e["data"] for e in evs if e["type"] == "task_failed"]
    assert assigned[0]["agent_id"] == a["id"]  # the more proficient agent first
    assert failed[0]["agent_id"] == a["id"] and failed[0]["attempt_number"] == 1
    assert failed[0]["error"]["code"] == "FLAKY" and failed[0]["retry_scheduled"] is True
    assert failed[0]["next_retry_at"] is not None
    assert assigned[1]["agent_id"] == b["id"] and assigned[1]["attempt_number"] == 2
    assert assigned[1]["assignment_reason"] == "retry_different_agent"
    assert done["attempt"] == 2


def test_non_retryable_failure_fails_at_once(hub: Hub, agents) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:fatal")
    online(hub, "A")
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}], max_retries=5, input={"bad": True})
    done = task_ends(hub, t["id"], "failed")
    assert done["error"]["code"] == "BAD_INPUT" and done["attempt"] == 1
    (failed,) = [e["data"] for e in task_events(hub, t["id"]) if e["type"] == "task_failed"]
    assert failed["retry_scheduled"] is False and failed["next_retry_at"] is None


def test_timeout_tells_the_agent_to_stop_and_reports_true_times(hub: Hub, agents, tmp_path: Path) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:gate")
    online(hub, "A")
    marker = tmp_path / "cancelled"
    t = submit(
        hub,
        type="x",
        timeout_seconds=1,
        max_retries=0,
        input={"release": str(tmp_path / "never"), "cancelled_marker": str(marker)},
    )
    done = task_ends(hub, t["id"], "failed")
    assert done["error"]["code"] == "TASK_TIMEOUT"
    errs = [
        e["data"]
        for e in hub.events(types="error_occurred")
        if e["data"]["error"]["details"].get("task_id") == t["id"]
    ]
    assert len(errs) == 1
    err = errs[0]
    assert err["component"] == "task_executor" and err["error"]["code"] == "EXECUTION_FAILED"
    assert err["error"]["details"]["timeout_seconds"] == 1
    assert 1.0 <= err["error"]["details"]["execution_time_seconds"] < 5.0
    assert err["severity"] == "error" and err["error_id"]
    (failed,) = [e["data"] for e in task_events(hub, t["id"]) if e["type"] == "task_failed"]
    assert failed["failure_kind"] == "timeout"
    wait_for(marker.exists, 10, what="the agent to see the cancellation")


def test_cancel_while_running_reaches_the_agent(hub: Hub, agents, tmp_path: Path) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:gate")
    a = online(hub, "A")
    started, marker = tmp_path / "started", tmp_path / "cancelled"
    t = submit(
        hub,
        type="x",
        input={"release": str(tmp_path / "never"), "started": str(started), "cancelled_marker": str(marker)},
    )
    wait_for(started.exists, 20, what="task to start")
    out = hub.post(
        f"/api/tasks/{t['id']}/cancel", {"reason": "user changed mind", "cancelled_by": "alice"}, expect=200
    )
    assert out["status"] == "cancelled"
    wait_for(marker.exists, 10, what="the agent to see the cancellation")
    (c,) = [e["data"] for e in task_events(hub, t["id"]) if e["type"] == "task_cancelled"]
    assert c["reason"] == "user changed mind" and c["cancelled_by"] == "alice" and c["agent_id"] == a["id"]
    wait_for(lambda: hub.get(f"/api/agents/{a['id']}")["status"] == "idle", 10, what="agent idle again")
    # the agent's late report for the cancelled attempt is refused, the task stays cancelled
    status, body = hub.request(
        "POST", f"/api/tasks/{t['id']}/complete", {"agent_id": a["id"], "attempt": 1, "result": 1}
    )
    assert status == 409 and body["error"]["code"] == "not_task_holder"
    assert hub.get(f"/api/tasks/{t['id']}")["status"] == "cancelled"


def test_agent_killed_mid_task_work_completes_on_another(hub: Hub, agents, tmp_path: Path) -> None:
    victim = agents(hub, "A", ["x:0.9"], f"{H}:gate")
    agents(hub, "B", ["x:0.5"], f"{H}:gate")
    a, b = online(hub, "A"), online(hub, "B")
    started, release = tmp_path / "started", tmp_path / "release"
    t = submit(
        hub,
        type="x",
        required_capabilities=[{"name": "x"}],
        input={"release": str(release), "started": str(started)},
    )
    wait_for(started.exists, 20, what="task to start")
    assert started.read_text() == "A"
    victim.kill()
    release.write_text("go")
    done = task_ends(hub, t["id"], timeout=30)
    assert done["assigned_agent_id"] == b["id"] and done["result"]["agent"] == "B"
    evs = task_events(hub, t["id"])
    failed = [e["data"] for e in evs if e["type"] == "task_failed"]
    assert [f["failure_kind"] for f in failed] == ["agent_lost"] and failed[0]["error"][
        "code"
    ] == "AGENT_LOST"
    assert failed[0]["retry_scheduled"] is True
    reasons = [
        e["data"]["reason"]
        for e in hub.events(types="agent_status_changed")
        if e["data"]["agent_id"] == a["id"]
    ]
    assert "disconnected" in reasons
    assert Counter(e["type"] for e in evs)["task_completed"] == 1


def test_priority_order_with_fifo_within_a_priority(hub: Hub, agents) -> None:
    ids = {}
    for name, prio in [
        ("low", "low"),
        ("crit1", "critical"),
        ("med", "medium"),
        ("high", "high"),
        ("crit2", 4),
    ]:
        ids[name] = submit(hub, type="p", priority=prio, required_capabilities=[{"name": "p"}])["id"]
    agents(hub, "A", ["p:0.9"], f"{H}:echo", max_concurrent=1)
    for tid in ids.values():
        task_ends(hub, tid)
    order = [e["data"]["task_id"] for e in hub.events(types="task_assigned")]
    names = {v: k for k, v in ids.items()}
    assert [names[x] for x in order] == ["crit1", "crit2", "high", "med", "low"]


def test_dependencies_run_in_order_and_failures_cascade(hub: Hub, agents, tmp_path: Path) -> None:
    agents(hub, "A", ["d:0.9"], f"{H}:echo", max_concurrent=3)
    online(hub, "A")
    release = tmp_path / "release"
    # A gate task on a separate agent type, so the dependents clearly wait for it
    agents(hub, "G", ["g:0.9"], f"{H}:gate")
    online(hub, "G")
    first = submit(hub, type="g", required_capabilities=[{"name": "g"}], input={"release": str(release)})
    second = submit(hub, type="d", required_capabilities=[{"name": "d"}], depends_on=[first["id"]])
    third = submit(hub, type="d", required_capabilities=[{"name": "d"}], depends_on=[second["id"]])
    wait_for(lambda: hub.get(f"/api/tasks/{first['id']}")["status"] == "running", 20, what="first running")
    assert hub.get(f"/api/tasks/{second['id']}")["status"] == "pending"
    release.write_text("go")
    for t in (first, second, third):
        task_ends(hub, t["id"])
    seq = {(e["type"], e["data"].get("task_id")): e["sequence"] for e in hub.events()}
    assert seq[("task_completed", first["id"])] < seq[("task_assigned", second["id"])]
    assert seq[("task_completed", second["id"])] < seq[("task_assigned", third["id"])]
    # a dependency that fails for good fails its dependents, transitively
    agents(hub, "F", ["f:0.9"], f"{H}:fatal")
    online(hub, "F")
    bad = submit(hub, type="f", required_capabilities=[{"name": "f"}])
    dep1 = submit(hub, type="d", required_capabilities=[{"name": "d"}], depends_on=[bad["id"]])
    dep2 = submit(hub, type="d", required_capabilities=[{"name": "d"}], depends_on=[dep1["id"]])
    task_ends(hub, bad["id"], "failed")
    for d in (dep1, dep2):
        t = task_ends(hub, d["id"], "failed")
        assert t["error"]["code"] == "DEPENDENCY_FAILED"
    status, body = hub.request("POST", "/api/tasks", {"depends_on": ["no-such-task"]})
    assert status == 422 and body["error"]["code"] == "dependency_not_found"


def test_task_nobody_can_serve_waits_then_runs_when_a_capable_agent_joins(hub: Hub, agents) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:echo")
    online(hub, "A")
    q = submit(hub, type="q", required_capabilities=[{"name": "quantum", "min_proficiency": 0.7}])
    created = [e for e in task_events(hub, q["id"]) if e["type"] == "task_created"][0]["data"]
    assert created["matching_agents"] == 0
    other = submit(hub, type="x", required_capabilities=[{"name": "x"}])
    task_ends(hub, other["id"])  # the scheduler ran, and did not block on the unservable task
    assert hub.get(f"/api/tasks/{q['id']}")["status"] == "pending"
    agents(hub, "Q", ["quantum:0.8"], f"{H}:echo")
    done = task_ends(hub, q["id"])
    assert done["result"]["agent"] == "Q"


def test_remove_agent_reassigns_its_work(hub: Hub, agents, tmp_path: Path) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:gate")
    agents(hub, "B", ["x:0.5"], f"{H}:gate")
    a, b = online(hub, "A"), online(hub, "B")
    started, release = tmp_path / "started", tmp_path / "release"
    t = submit(
        hub,
        type="x",
        required_capabilities=[{"name": "x"}],
        input={"release": str(release), "started": str(started)},
    )
    wait_for(started.exists, 20, what="task to start")
    removed = hub.request("DELETE", f"/api/agents/{a['id']}")[1]
    assert removed["cleanup_summary"] == {"tasks_reassigned": 1, "data_removed": True, "tasks_failed": 0}
    wait_for(
        lambda: hub.get(f"/api/tasks/{t['id']}")["assigned_agent_id"] == b["id"], 10, what="reassigned to B"
    )
    release.write_text("go")
    assert task_ends(hub, t["id"])["result"]["agent"] == "B"
    assert hub.request("GET", f"/api/agents/{a['id']}")[0] == 404


def test_http_pull_protocol(hub: Hub) -> None:
    agent = hub.post(
        "/api/agents", {"name": "puller", "capabilities": [{"name": "x", "proficiency": 0.8}]}, expect=201
    )
    other = hub.post(
        "/api/agents", {"name": "other", "capabilities": [{"name": "y", "proficiency": 0.8}]}, expect=201
    )
    aid = agent["id"]
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}], input={"n": 3})
    claim = hub.post(f"/api/agents/{aid}/claim?wait=5", expect=200)
    assert claim["task"]["id"] == t["id"] and claim["attempt"] == 1 and claim["task"]["input"] == {"n": 3}
    status, body = hub.request("POST", f"/api/tasks/{t['id']}/start", {"agent_id": other["id"], "attempt": 1})
    assert status == 409 and body["error"]["code"] == "not_task_holder"
    hub.post(f"/api/tasks/{t['id']}/start", {"agent_id": aid, "attempt": 1}, expect=200)
    hub.post(
        f"/api/tasks/{t['id']}/progress",
        {"agent_id": aid, "attempt": 1, "progress": 0.5, "current_step": "half"},
        expect=200,
    )
    done = hub.post(
        f"/api/tasks/{t['id']}/complete",
        {"agent_id": aid, "attempt": 1, "result": {"sum": 6}, "quality": 0.9},
        expect=200,
    )
    assert done["status"] == "completed" and done["result"] == {"sum": 6}
    status, body = hub.request(
        "POST", f"/api/tasks/{t['id']}/complete", {"agent_id": aid, "attempt": 1, "result": {}}
    )
    assert status == 409  # reported twice: ignored, the first result stands
    assert hub.get(f"/api/tasks/{t['id']}")["result"] == {"sum": 6}
    status, _ = hub.request("POST", f"/api/agents/{aid}/claim?wait=0.2")
    assert status == 204
    hb = hub.post(f"/api/agents/{aid}/heartbeat", expect=200)
    assert hb["status"] in ("idle", "active")
    t2 = submit(hub, type="x", required_capabilities=[{"name": "x"}])
    claim = hub.post(f"/api/agents/{aid}/claim?wait=5", expect=200)
    assert claim["task"]["id"] == t2["id"]
    failed = hub.post(
        f"/api/tasks/{t2['id']}/fail",
        {
            "agent_id": aid,
            "attempt": claim["attempt"],
            "error": {"code": "NOPE", "message": "no", "details": {"k": 1}},
            "retryable": False,
        },
        expect=200,
    )
    assert failed["status"] == "failed" and failed["error"] == {
        "code": "NOPE",
        "message": "no",
        "details": {"k": 1},
    }
    assert hub.request("POST", "/api/agents/nope/claim")[0] == 404


def test_pull_agent_process_runs_tasks(hub: Hub, agents) -> None:
    agents(hub, "P", ["x:0.9"], f"{H}:echo", pull=True)
    online(hub, "P")
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}], input={"via": "pull"})
    done = task_ends(hub, t["id"])
    assert done["result"]["echo"] == {"via": "pull"}
    assert [e["type"] for e in task_events(hub, t["id"])].count("task_progress") == 1


def test_hub_killed_and_restarted_mid_run_every_task_ends_once(hub_factory, agents, tmp_path: Path) -> None:
    port = None
    hub = hub_factory("--heartbeat-timeout", "4", "--retry-base", "0.05", "--retry-cap", "0.2").start()
    port = hub.port
    agents(hub, "A", ["x:0.9"], f"{H}:gate", max_concurrent=2)
    agents(hub, "B", ["x:0.8"], f"{H}:gate", max_concurrent=2)
    online(hub, "A")
    online(hub, "B")
    release = tmp_path / "release"
    ids = [submit(hub, type="x", input={"release": str(release)})["id"] for _ in range(8)]
    wait_for(
        lambda: sum(1 for i in ids if hub.get(f"/api/tasks/{i}")["status"] == "running") == 4,
        20,
        what="4 running",
    )
    hub.kill()
    hub2 = hub_factory(
        "--heartbeat-timeout", "4", "--retry-base", "0.05", "--retry-cap", "0.2", port=port
    ).start()
    release.write_text("go")
    for i in ids:
        task_ends(hub2, i, timeout=60)
    evs = hub2.events()
    gapless(evs)
    for i in ids:
        terminal = [
            e
            for e in evs
            if e["data"].get("task_id") == i
            and (
                e["type"] in ("task_completed", "task_cancelled")
                or (e["type"] == "task_failed" and not e["data"]["retry_scheduled"])
            )
        ]
        assert len(terminal) == 1, (i, terminal)
    assert any(e["data"].get("reason") == "hub_restarted" for e in evs if e["type"] == "agent_status_changed")


def test_every_report_names_its_attempt_and_a_stale_one_changes_nothing(hub: Hub) -> None:
    """agent-protocol §2: a report without ``attempt`` is refused (``attempt_required``)
    on both transports, and a late completion of attempt 1 cannot complete attempt 2."""
    agent = hub.post(
        "/api/agents", {"name": "puller", "capabilities": [{"name": "x", "proficiency": 0.8}]}, expect=201
    )
    aid = agent["id"]
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}], max_retries=3)
    assert hub.post(f"/api/agents/{aid}/claim?wait=5", expect=200)["attempt"] == 1
    hub.post(
        f"/api/tasks/{t['id']}/fail",
        {"agent_id": aid, "attempt": 1, "error": {"code": "E", "message": "e", "details": {}}},
        expect=200,
    )
    again = hub.post(f"/api/agents/{aid}/claim?wait=10", expect=200)
    assert (again["task"]["id"], again["attempt"]) == (t["id"], 2)
    for route, extra in (
        ("start", {}),
        ("progress", {"progress": 0.5}),
        ("complete", {"result": "stale"}),
        ("fail", {}),
        ("release", {}),
    ):
        status, body = hub.request("POST", f"/api/tasks/{t['id']}/{route}", {"agent_id": aid, **extra})
        assert (status, body["error"]["code"]) == (422, "attempt_required"), (route, body)
    status, body = hub.request(
        "POST", f"/api/tasks/{t['id']}/complete", {"agent_id": aid, "attempt": 1, "result": "stale"}
    )
    assert (status, body["error"]["code"]) == (409, "not_task_holder")
    assert (hub.get(f"/api/tasks/{t['id']}")["status"], hub.get(f"/api/tasks/{t['id']}")["attempt"]) == (
        "assigned",
        2,
    )
    done = hub.post(
        f"/api/tasks/{t['id']}/complete", {"agent_id": aid, "attempt": 2, "result": "fresh"}, expect=200
    )
    assert (done["status"], done["result"]) == ("completed", "fresh")

    # the same rule over /agents/ws
    ws = websocket.create_connection(hub.ws_url + "/agents/ws", timeout=10)
    try:
        ws.send(
            json.dumps(
                {
                    "type": "register",
                    "data": {"name": "ws", "capabilities": [{"name": "y", "proficiency": 0.9}]},
                }
            )
        )
        assert json.loads(ws.recv())["type"] == "registered"
        t2 = submit(hub, type="y", required_capabilities=[{"name": "y"}])
        while (m := json.loads(ws.recv()))["type"] != "assign":
            pass
        assert m["data"]["attempt"] == 1
        for typ in ("task_started", "task_progress", "task_completed", "task_failed", "task_released"):
            ws.send(
                json.dumps(
                    {"type": typ, "data": {"task_id": t2["id"], "result": "no attempt"}, "message_id": typ}
                )
            )
            while (m := json.loads(ws.recv()))["type"] != "error":
                pass
            assert (m["message_id"], m["data"]["code"]) == (typ, "attempt_required"), m
        assert hub.get(f"/api/tasks/{t2['id']}")["status"] == "assigned"
        ws.send(
            json.dumps(
                {
                    "type": "task_completed",
                    "data": {"task_id": t2["id"], "attempt": 1, "result": "ok"},
                    "message_id": "ok",
                }
            )
        )
        while (m := json.loads(ws.recv()))["type"] != "ack":
            pass
        assert hub.get(f"/api/tasks/{t2['id']}")["result"] == "ok"
    finally:
        ws.close()
        ws.shutdown()


def test_handler_error_of_2mb_is_reported_truncated_and_the_agent_stays_connected(hub: Hub, agents) -> None:
    proc = agents(hub, "H", ["huge:0.9"], f"{H}:huge_error")
    online(hub, "H")
    t = submit(hub, type="huge", required_capabilities=[{"name": "huge"}], max_retries=0)
    done = task_ends(hub, t["id"], "failed")
    err = done["error"]
    assert err["code"] == "HANDLER_ERROR"
    assert len(err["message"]) <= 10_000 and err["message"].startswith("EEEE")
    assert "truncated: 2097152 characters" in err["message"], err["message"][-100:]
    assert len(json.dumps(err["details"])) <= 16 * 1024
    # the agent still works on the connection it registered on: no reconnect loop
    t2 = submit(hub, type="huge", required_capabilities=[{"name": "huge"}], max_retries=0)
    task_ends(hub, t2["id"], "failed")
    registrations = [ln for ln in proc.logs().splitlines() if ": registered as " in ln]
    assert len(registrations) == 1, registrations
    assert "(connection 1," in registrations[0]
