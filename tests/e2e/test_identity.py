"""Agents keep who they are and what the hub learned about them across restarts of
the hub (kill -9) and of the agent process; real ``hive serve`` and ``hive agent``."""

from __future__ import annotations

from typing import Any

from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers"
FAST = (
    "--heartbeat-timeout",
    "3",
    "--retry-base",
    "0.05",
    "--retry-cap",
    "0.2",
    "--learning-min-outcomes",
    "2",
)


def agents_named(hub: Hub, name: str) -> list[dict[str, Any]]:
    return [a for a in hub.get("/api/agents?limit=1000")["agents"] if a["name"] == name]


def online(hub: Hub, name: str, since: int = 0) -> dict[str, Any]:
    """The one agent called ``name``, once it registered after event ``since``."""

    def find() -> dict[str, Any] | None:
        up = [a for a in agents_named(hub, name) if a["status"] in ("idle", "active")]
        if not up:
            return None
        back = [
            e
            for e in hub.events(since, "agent_created,agent_status_changed")
            if e["type"] == "agent_created" or e["data"]["new_status"] in ("idle", "active")
        ]
        return up[0] if back else None

    return wait_for(find, 30, what=f"agent {name} online")


def run_tasks(hub: Hub, n: int) -> None:
    ids = [
        hub.post(
            "/api/tasks",
            {"type": "x", "required_capabilities": [{"name": "x"}], "input": {"quality": 1.0}},
            expect=201,
        )["id"]
        for _ in range(n)
    ]
    for tid in ids:
        wait_for(
            lambda tid=tid: hub.get(f"/api/tasks/{tid}")["status"] == "completed",
            30,
            what=f"task {tid} completed",
        )


def learned(hub: Hub, agent_id: str) -> float:
    def done() -> Any:
        return any(e["data"]["agent_id"] == agent_id for e in hub.events(0, "learning_cycle_completed"))

    wait_for(done, 30, what="a learning cycle")
    cap = hub.get(f"/api/agents/{agent_id}")["capabilities"][0]
    assert cap["proficiency"] > 0.9  # quality 1.0 outcomes pull it up from the declared 0.9
    return float(cap["proficiency"])


def test_hub_killed_agent_reconnects_with_its_id_and_learned_proficiency(
    hub_factory: Any, agents: Any
) -> None:
    hub = hub_factory(*FAST).start()
    agents(hub, "L", ["x:0.9"], f"{H}:quality")
    aid = online(hub, "L")["id"]
    run_tasks(hub, 2)
    value = learned(hub, aid)

    hub.kill()
    hub2 = hub_factory(*FAST, port=hub.port).start()
    head = hub2.get("/api/hive/status")["sequence"]
    back = online(hub2, "L", since=head)
    assert back["id"] == aid
    assert [a["id"] for a in agents_named(hub2, "L")] == [aid]
    cap = back["capabilities"][0]
    assert cap["proficiency"] == value  # the SDK re-sent 0.9: a prior, not a reset
    assert cap["declared_proficiency"] == 0.9
    # and it goes on learning from there, not from 0.9
    run_tasks(hub2, 2)
    wait_for(
        lambda: [e for e in hub2.events(head, "learning_cycle_completed") if e["data"]["agent_id"] == aid],
        30,
        what="a learning cycle after the restart",
    )
    cycles = [e for e in hub2.events(head, "learning_cycle_completed") if e["data"]["agent_id"] == aid]
    assert cycles[0]["data"]["improvements"]["x_proficiency"]["old_value"] == value

    # an operator reset is explicit and logged
    status, body = hub2.request("POST", f"/api/agents/{aid}/reset-learning", {})
    assert status == 200, body
    assert body["capabilities"][0]["proficiency"] == 0.9
    reset = hub2.events(head, "agent_learning_reset")
    assert [e["data"]["agent_id"] for e in reset] == [aid]


def test_restarted_agent_process_keeps_its_id(hub: Hub, agents: Any) -> None:
    first = agents(hub, "R", ["x:0.9"], f"{H}:echo")
    aid = online(hub, "R")["id"]
    first.stop()
    wait_for(lambda: agents_named(hub, "R")[0]["status"] == "offline", 30, what="R offline")
    head = hub.get("/api/hive/status")["sequence"]
    agents(hub, "R", ["x:0.9"], f"{H}:echo")
    assert online(hub, "R", since=head)["id"] == aid
    assert len(agents_named(hub, "R")) == 1


def test_pull_agent_registering_again_with_its_id_updates_its_spec(hub: Hub) -> None:
    a = hub.post(
        "/api/agents", {"name": "P", "capabilities": [{"name": "x", "proficiency": 0.7}]}, expect=201
    )
    spec = {
        "id": a["id"],
        "name": "P2",
        "capabilities": [{"name": "x", "proficiency": 0.8}, {"name": "y", "proficiency": 0.5}],
        "max_concurrent_tasks": 3,
    }
    again = hub.post("/api/agents", spec, expect=200)
    assert (again["id"], again["name"], again["max_concurrent_tasks"]) == (a["id"], "P2", 3)
    assert [(c["name"], c["proficiency"]) for c in again["capabilities"]] == [("x", 0.8), ("y", 0.5)]
    assert hub.get(f"/api/agents/{a['id']}")["name"] == "P2"
    assert [e["data"]["agent_id"] for e in hub.events(0, "agent_updated")] == [a["id"]]
    assert len(hub.get("/api/agents?limit=1000")["agents"]) == 1


def test_pull_agent_process_restarted_keeps_its_id(hub: Hub, agents: Any) -> None:
    first = agents(hub, "PR", ["x:0.9"], f"{H}:echo", pull=True)
    aid = online(hub, "PR")["id"]
    first.stop()
    head = hub.get("/api/hive/status")["sequence"]
    agents(hub, "PR", ["x:0.8"], f"{H}:echo", pull=True)  # restarted with a new prior

    def updated() -> list[dict[str, Any]]:
        return [e for e in hub.events(head, "agent_created,agent_updated")]

    evs = wait_for(updated, 30, what="the restarted pull agent to register")
    assert [(e["type"], e["data"]["agent_id"]) for e in evs] == [("agent_updated", aid)]
    assert [a["id"] for a in agents_named(hub, "PR")] == [aid]
    assert agents_named(hub, "PR")[0]["capabilities"][0]["proficiency"] == 0.8
