"""The hive's intelligence and self-monitoring on a real hub: learning changes routing,
rebalancing moves work, resource and system alerts fire and clear, periodic status,
inter-module messages. Payloads are checked field by field."""

from __future__ import annotations

import json
import threading
from typing import Any

import psutil
import pytest
import websocket

from tests.e2e.test_agents import online, submit, task_ends
from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers"


def ws_collect(hub: Hub, query: str) -> tuple[websocket.WebSocket, list[dict[str, Any]], threading.Event]:
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/ws{query}")
    ws.settimeout(0.2)
    got: list[dict[str, Any]] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException):
                return
            if not raw:
                return
            got.append(json.loads(raw))

    threading.Thread(target=run, daemon=True).start()
    return ws, got, stop


def test_failing_agent_learns_down_and_loses_routing_share(hub_factory, agents) -> None:
    hub = hub_factory("--learning-min-outcomes", "3", "--heartbeat-timeout", "10").start()
    agents(hub, "A", ["x:0.95:0.5"], f"{H}:flaky", env={"HIVE_TEST_FAIL": "1"})
    agents(hub, "B", ["x:0.72"], f"{H}:flaky")
    a, b = online(hub, "A"), online(hub, "B")
    req = [{"name": "x", "min_proficiency": 0.7}]
    for _ in range(3):
        t = submit(hub, type="x", required_capabilities=req, max_retries=0)
        done = task_ends(hub, t["id"], "failed")
        assert done["assigned_agent_id"] == a["id"]  # A is the most proficient on paper
    started = wait_for(
        lambda: [
            e["data"] for e in hub.events(types="learning_cycle_started") if e["data"]["agent_id"] == a["id"]
        ],
        10,
        what="A's learning cycle",
    )
    s = started[0]
    assert s["learning_type"] == "capability_improvement" and s["target_capability"] == "x"
    assert s["cycle_id"].startswith("learn-") and isinstance(s["estimated_duration_minutes"], float)
    completed = wait_for(
        lambda: [
            e["data"]
            for e in hub.events(types="learning_cycle_completed")
            if e["data"]["cycle_id"] == s["cycle_id"]
        ],
        10,
        what="cycle completed",
    )[0]
    imp = completed["improvements"]["x_proficiency"]
    # three failures observed: new = 0.95 + 0.5 * (0.0 - 0.95)
    assert (
        imp["old_value"] == 0.95
        and imp["new_value"] == pytest.approx(0.475)
        and imp["improvement"] == pytest.approx(-0.475)
    )
    assert completed["duration_ms"] >= 0
    statuses = [
        (e["data"]["new_status"], e["data"]["reason"])
        for e in hub.events(types="agent_status_changed")
        if e["data"]["agent_id"] == a["id"]
    ]
    assert ("learning", "learning_cycle_started") in statuses
    assert any(r == "learning_cycle_completed" for _, r in statuses)
    assert hub.get(f"/api/agents/{a['id']}")["capabilities"][0]["proficiency"] == pytest.approx(0.475)
    # A is now below the threshold: the work goes to B, and only B matches
    for _ in range(3):
        t = submit(hub, type="x", required_capabilities=req, max_retries=0)
        created = [e for e in hub.events(types="task_created") if e["data"]["task"]["id"] == t["id"]][0][
            "data"
        ]
        assert created["matching_agents"] == 1
        assert task_ends(hub, t["id"])["assigned_agent_id"] == b["id"]
    # B's successes raise its proficiency; the gain is counted
    perf = wait_for(
        lambda: [
            e["data"]
            for e in hub.events(types="agent_performance_updated")
            if e["data"]["agent_id"] == b["id"] and e["data"]["metrics"]["capability_improvements"] == 1
        ],
        10,
        what="B's improvement",
    )
    assert perf[-1]["metrics"]["tasks_completed"] == 3 and perf[-1]["metrics"]["success_rate"] == 1.0
    assert hub.get(f"/api/agents/{b['id']}")["capabilities"][0]["proficiency"] == pytest.approx(
        0.72 + 0.1 * (1 - 0.72)
    )


def test_unstarted_work_is_rebalanced_to_an_idle_agent(hub_factory, agents) -> None:
    hub = hub_factory(
        "--rebalance-min-unstarted", "0.5", "--rebalance-interval", "1", "--heartbeat-timeout", "5"
    ).start()
    slow = hub.post(
        "/api/agents",
        {"name": "slow", "capabilities": [{"name": "x", "proficiency": 0.95}], "max_concurrent_tasks": 3},
        expect=201,
    )
    stop = threading.Event()

    def beat() -> None:  # alive, but it never claims its work
        while not stop.wait(1.0):
            hub.request("POST", f"/api/agents/{slow['id']}/heartbeat", {})

    threading.Thread(target=beat, daemon=True).start()
    try:
        ids = [submit(hub, type="x", required_capabilities=[{"name": "x"}])["id"] for _ in range(3)]
        assert all(hub.get(f"/api/tasks/{i}")["assigned_agent_id"] == slow["id"] for i in ids)
        agents(hub, "Q", ["x:0.6"], f"{H}:echo", max_concurrent=3)
        q = online(hub, "Q")
        for i in ids:
            assert task_ends(hub, i, timeout=30)["assigned_agent_id"] == q["id"]
    finally:
        stop.set()
    coord = [e["data"] for e in hub.events(types="coordination_event")]
    assert coord, "no coordination_event"
    c = coord[0]
    assert c["event_type"] == "SwarmOptimization" and c["module"] == "coordinator"
    d = c["details"]
    assert (
        d["optimization_type"] == "load_balancing" and d["agents_rebalanced"] == 2 and d["tasks_moved"] == 3
    )
    before, after = d["predicted_completion_before_ms"], d["predicted_completion_after_ms"]
    assert before > after > 0
    assert d["efficiency_improvement"] == pytest.approx(round((before - after) / before, 4))
    moved = [
        e["data"] for e in hub.events(types="task_assigned") if e["data"]["assignment_reason"] == "rebalanced"
    ]
    assert sorted(m["task_id"] for m in moved) == sorted(ids)
    assert all(m["previous_agent_id"] == slow["id"] and m["agent_id"] == q["id"] for m in moved)
    msgs = [e["data"] for e in hub.events(types="inter_module_message")]
    assert any(m["from_module"] == "coordinator" and m["message_type"] == "RebalanceRequest" for m in msgs)


def test_resource_alert_fires_and_clears_with_true_values(hub_factory) -> None:
    hub = hub_factory("--memory-threshold", "1", "--resource-interval", "0.3").start()
    fired = wait_for(
        lambda: [e["data"] for e in hub.events(types="resource_alert") if e["data"]["resource"] == "memory"],
        10,
        what="memory alert",
    )[0]
    assert fired["state"] == "active" and fired["threshold_percent"] == 1.0
    assert fired["usage_percent"] == pytest.approx(psutil.virtual_memory().percent, abs=10)
    assert fired["trend"] in ("increasing", "decreasing", "stable")
    assert fired["recommendations"]
    assert any(a["key"] == "resource:memory" for a in hub.get("/api/alerts")["alerts"])
    res = hub.request("PATCH", "/api/resources", {"memory": 99.9})[1]
    assert res["thresholds"]["memory"] == 99.9
    cleared = wait_for(
        lambda: [
            e["data"]
            for e in hub.events(types="resource_alert")
            if e["data"]["resource"] == "memory" and e["data"]["state"] == "cleared"
        ],
        10,
        what="memory alert cleared",
    )[0]
    assert cleared["threshold_percent"] == 99.9
    assert not any(a["key"] == "resource:memory" for a in hub.get("/api/alerts")["alerts"])
    assert hub.request("PATCH", "/api/resources", {"memory": 0})[0] == 422


def test_periodic_status_matches_the_status_endpoint(hub_factory) -> None:
    hub = hub_factory("--status-interval", "0.5").start()
    hub.post("/api/agents", {"name": "a", "capabilities": [{"name": "x", "proficiency": 0.5}]}, expect=201)
    for _ in range(3):
        submit(hub, type="y", required_capabilities=[{"name": "nobody-has-this"}])
    ws, got, stop = ws_collect(hub, "?types=hive_status_update")
    try:
        upd = wait_for(
            lambda: [m for m in got if m["type"] == "hive_status_update"], 10, what="a status update"
        )[0]["data"]
    finally:
        stop.set()
        ws.close()
    st = hub.get("/api/hive/status")
    for k in ("total_agents", "active_agents", "pending_tasks", "completed_tasks_today", "system_load"):
        assert upd["metrics"][k] == st["metrics"][k], k
    assert upd["metrics"]["pending_tasks"] == 3
    assert upd["status"] in ("healthy", "degraded", "unhealthy")
    # the unservable work is an active alert, listed in the update
    assert any("no agent can serve" in a["message"] for a in upd["alerts"])


def unservable(hub: Hub, pred: Any = lambda d: True, state: str = "active") -> list[dict[str, Any]]:
    return [
        e["data"]
        for e in hub.events(types="system_alert")
        if e["data"]["alert_key"] == "unservable_work" and e["data"]["state"] == state and pred(e["data"])
    ]


def test_unservable_work_alert_raises_and_clears(hub: Hub) -> None:
    t = submit(hub, type="q", required_capabilities=[{"name": "quantum", "min_proficiency": 0.5}])
    raised = wait_for(lambda: unservable(hub), 10, what="unservable alert")[0]
    assert raised["level"] == "warning"
    assert raised["details"]["error"] == "no_capable_agent" and raised["details"]["pending_tasks"] == 1
    assert raised["details"]["groups"] == [{"required_capabilities": "quantum>=0.5", "pending_tasks": 1}]
    assert set(raised["details"]["affected_components"]) == {"task_management", "coordinator"}
    agent = hub.post(
        "/api/agents", {"name": "q", "capabilities": [{"name": "quantum", "proficiency": 0.9}]}, expect=201
    )
    wait_for(lambda: unservable(hub, state="cleared"), 10, what="alert cleared")
    assert hub.get(f"/api/tasks/{t['id']}")["assigned_agent_id"] == agent["id"]


def test_many_distinct_unservable_capabilities_give_one_alert_and_bounded_status_updates(hub_factory) -> None:
    hub = hub_factory("--status-interval", "0.3").start()
    n = 3000
    for start in range(0, n, 1000):
        tasks = [
            {"type": "u", "required_capabilities": [{"name": f"cap-{i:05d}-" + "z" * 40}]}
            for i in range(start, start + 1000)
        ]
        hub.post("/api/tasks/batch", {"tasks": tasks}, expect=201)
    wait_for(
        lambda: unservable(hub, lambda d: d["details"]["pending_tasks"] == n),
        20,
        what="the alert counting all of them",
    )
    seq = hub.get("/api/hive/status")["sequence"]
    wait_for(lambda: hub.events(since=seq, types="hive_status_update"), 10, what="a status update after it")
    alerts = hub.get("/api/alerts")["alerts"]
    assert [a["key"] for a in alerts if "unservable" in a["key"]] == ["unservable_work"]
    d = next(a for a in alerts if a["key"] == "unservable_work")["details"]
    assert (d["pending_tasks"], d["requirement_sets"], d["groups_omitted"]) == (n, n, n - len(d["groups"]))
    raised = unservable(hub)
    assert len(raised) <= 10  # updates as the count grew, not one alert per capability
    updates = hub.events(types="hive_status_update")
    assert updates
    for u in updates:
        assert len(json.dumps(u)) < 8_000, len(json.dumps(u))
        assert len(u["data"]["alerts"]) <= 20


def test_inter_module_messages_only_for_subscribers_who_ask(hub: Hub, agents) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:echo")
    online(hub, "A")
    ws, got, stop = ws_collect(hub, "?types=inter_module_message")
    plain, plain_got, plain_stop = ws_collect(hub, "")
    try:
        t = submit(hub, type="x", required_capabilities=[{"name": "x"}])
        task_ends(hub, t["id"])
        msg = wait_for(
            lambda: [
                m
                for m in got
                if m["data"].get("message_type") == "TaskCompleted"
                and m["data"]["payload"]["task_id"] == t["id"]
            ],
            10,
            what="TaskCompleted message",
        )[0]
        d = msg["data"]
        assert (d["from_module"], d["to_module"]) == ("task_management", "metrics_collection")
        assert d["payload"]["execution_time_ms"] > 0
        wait_for(
            lambda: any(m["type"] == "task_completed" for m in plain_got),
            10,
            what="plain subscriber sees the task",
        )
        assert not any(m["type"] == "inter_module_message" for m in plain_got)  # not asked for: not sent
    finally:
        stop.set()
        plain_stop.set()
        ws.close()
        plain.close()


def test_prometheus_metrics(hub: Hub, agents) -> None:
    agents(hub, "A", ["x:0.9"], f"{H}:echo")
    online(hub, "A")
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}])
    task_ends(hub, t["id"])
    import urllib.request

    text = urllib.request.urlopen(hub.url + "/metrics").read().decode()
    assert 'hive_tasks{status="completed"} 1.0' in text
    assert "hive_task_duration_seconds_count 1.0" in text
    assert "hive_task_assignment_latency_seconds_count 1.0" in text
    assert 'hive_module_health{module="persistence"} 0.0' in text
    assert "hive_events_appended_total" in text and "hive_subscribers" in text
