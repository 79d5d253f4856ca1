"""REST: agents (register, list, get, patch, delete, reset-learning) and the pull
transport of docs/agent-protocol.md section 6 (heartbeat, claim, and the reports
start/progress/complete/fail/release under /api/tasks/{id}/...)."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import HiveConfig, Hub, HubFactory, MemoryStore, increasing, recv_until


def types_of(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


async def claimed(hub: Hub, agent_id: str, wait: float = 0) -> dict:
    r = await hub.post(f"/api/agents/{agent_id}/claim?wait={wait}")
    assert r.status == 200, r
    return r.body  # type: ignore[no-any-return]


# ------------------------------------------------------------------ register, get, list


async def test_register_is_201_then_200_for_a_known_id(hub: Hub) -> None:
    r = await hub.post(
        "/api/agents",
        {
            "id": "ag1",
            "name": "w1",
            "type": "specialist",
            "max_concurrent_tasks": 2,
            "capabilities": [{"name": "code", "proficiency": 0.7}],
            "metadata": {"host": "h"},
        },
    )
    assert r.status == 201, r
    a = r.body
    assert (a["id"], a["name"], a["type"], a["status"], a["max_concurrent_tasks"]) == (
        "ag1",
        "w1",
        "specialist",
        "idle",
        2,
    )
    assert a["capabilities"][0]["name"] == "code" and a["capabilities"][0]["proficiency"] == 0.7
    assert a["metadata"] == {"host": "h"} and a["current_tasks"] == []
    again = await hub.post(
        "/api/agents",
        {"id": "ag1", "name": "w1-renamed", "capabilities": [{"name": "code", "proficiency": 0.7}]},
    )
    assert again.status == 200, again
    assert again.body["name"] == "w1-renamed"
    got = await hub.get("/api/agents/ag1")
    assert got.status == 200 and got.body["name"] == "w1-renamed"
    assert types_of(await hub.events()) == ["agent_created", "agent_updated"]


async def test_register_without_id_gets_a_fresh_one(hub: Hub) -> None:
    a = await hub.register("w1")
    b = await hub.register("w1")
    assert a["id"] and b["id"] and a["id"] != b["id"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "type": "bogus"},
        {"name": "x", "max_concurrent_tasks": 0},
        {"name": "x", "capabilities": [{"name": "a", "proficiency": 1.5}]},
        {"name": "x", "capabilities": [{"name": "a", "proficiency": 0.5}, {"name": "a", "proficiency": 0.6}]},
        {"name": "x", "colour": "red"},
    ],
)
async def test_an_invalid_agent_spec_is_422(hub: Hub, body: dict) -> None:
    r = await hub.post("/api/agents", body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/agents")).body["agents"] == []


async def test_register_with_malformed_json_is_400(hub: Hub) -> None:
    r = await hub.request(
        "POST", "/api/agents", data=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert (r.status, r.code) == (400, "malformed_json")


async def test_list_filters_by_status_type_and_capability_and_pages(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.register("w2", ["math"], id="a2", type="specialist")
    await hub.register("w3", ["code", "math"], id="a3")
    await hub.submit(id="t1", required_capabilities=[{"name": "math"}], priority=4)

    async def ids(query: str) -> list[str]:
        r = await hub.get("/api/agents" + query)
        assert r.status == 200, r
        return [a["id"] for a in r.body["agents"]]

    assert await ids("") == ["a1", "a2", "a3"]
    assert await ids("?type=specialist") == ["a2"]
    assert await ids("?capability=code") == ["a1", "a3"]
    busy = (await hub.get("/api/tasks/t1")).body["assigned_agent_id"]
    assert busy in ("a2", "a3")
    assert await ids("?status=active") == [busy]
    assert sorted(await ids("?status=idle")) == sorted({"a1", "a2", "a3"} - {busy})
    page = await hub.get("/api/agents?limit=2")
    assert [a["id"] for a in page.body["agents"]] == ["a1", "a2"] and page.body["next_cursor"]
    rest = await hub.get("/api/agents", params={"limit": "2", "cursor": page.body["next_cursor"]})
    assert [a["id"] for a in rest.body["agents"]] == ["a3"] and rest.body["next_cursor"] is None


@pytest.mark.parametrize("query", ["status=bogus", "type=bogus", "limit=0", "limit=abc"])
async def test_list_agents_with_a_bad_query_is_422(hub: Hub, query: str) -> None:
    r = await hub.get("/api/agents?" + query)
    assert (r.status, r.code) == (422, "invalid_input"), r


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/agents/nope", None),
        ("PATCH", "/api/agents/nope", {"name": "x"}),
        ("DELETE", "/api/agents/nope", None),
        ("POST", "/api/agents/nope/reset-learning", {}),
        ("POST", "/api/agents/nope/heartbeat", None),
        ("POST", "/api/agents/nope/claim", None),
    ],
)
async def test_an_unknown_agent_is_404_agent_not_found(
    hub: Hub, method: str, path: str, body: dict | None
) -> None:
    r = await hub.request(method, path, json=body)
    assert (r.status, r.code) == (404, "agent_not_found"), r
    assert r.body["error"]["details"] == {"agent_id": "nope"}
    assert await hub.events() == []


# ------------------------------------------------------------------ patch, delete, reset-learning


async def test_patch_changes_name_capabilities_and_concurrency(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    r = await hub.patch(
        "/api/agents/a1",
        {"name": "w1b", "max_concurrent_tasks": 3, "capabilities": [{"name": "math", "proficiency": 0.4}]},
    )
    assert r.status == 200, r
    assert (r.body["name"], r.body["max_concurrent_tasks"]) == ("w1b", 3)
    assert [c["name"] for c in r.body["capabilities"]] == ["math"]
    assert (await hub.get("/api/agents/a1")).body == r.body
    assert types_of(await hub.events()) == ["agent_created", "agent_updated"]


@pytest.mark.parametrize(
    "body",
    [{}, {"max_concurrent_tasks": 0}, {"id": "other"}, {"capabilities": [{"name": "c", "proficiency": 3}]}],
)
async def test_an_invalid_patch_is_422_and_changes_nothing(hub: Hub, body: dict) -> None:
    before = await hub.register("w1", ["code"], id="a1")
    r = await hub.patch("/api/agents/a1", body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/agents/a1")).body == before


async def test_delete_removes_the_agent_and_requeues_its_task(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    t = await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    assert t["assigned_agent_id"] == "a1"
    r = await hub.delete("/api/agents/a1")
    assert r.status == 200, r
    assert (r.body["agent_id"], r.body["reason"]) == ("a1", "manual_removal")
    assert r.body["cleanup_summary"]["tasks_reassigned"] == 1
    assert (await hub.get("/api/agents/a1")).status == 404
    t = (await hub.get("/api/tasks/t1")).body
    assert (t["status"], t["assigned_agent_id"]) == ("pending", None)
    again = await hub.delete("/api/agents/a1")
    assert (again.status, again.code) == (404, "agent_not_found")
    assert types_of(await hub.events(types="task_released,agent_removed")) == [
        "task_released",
        "agent_removed",
    ]


async def test_reset_learning_logs_the_reset_and_returns_the_agent(hub: Hub) -> None:
    await hub.register("w1", ["code", "math"], id="a1")
    r = await hub.post("/api/agents/a1/reset-learning", {"capabilities": ["code"], "requested_by": "ops"})
    assert r.status == 200, r
    assert r.body["id"] == "a1"
    (e,) = await hub.events(types="agent_learning_reset")
    assert e["data"]["agent_id"] == "a1"
    assert (await hub.post("/api/agents/a1/reset-learning")).status == 200  # empty body: every capability


@pytest.mark.parametrize("body", [{"capabilities": ["nope"]}, {"bogus": 1}, {"capabilities": [""]}])
async def test_reset_learning_with_a_bad_body_is_422(hub: Hub, body: dict) -> None:
    await hub.register("w1", ["code"], id="a1")
    r = await hub.post("/api/agents/a1/reset-learning", body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert await hub.events(types="agent_learning_reset") == []


# ------------------------------------------------------------------ pull transport


async def test_heartbeat_answers_the_liveness_settings(hub: Hub) -> None:
    await hub.register("w1", id="a1")
    r = await hub.post("/api/agents/a1/heartbeat")
    assert r.status == 200, r
    assert r.body["agent_id"] == "a1" and r.body["status"] == "idle"
    assert r.body["heartbeat_interval"] <= r.body["heartbeat_timeout"] / 3


async def test_claim_without_work_is_204_after_the_wait(hub: Hub) -> None:
    await hub.register("w1", id="a1")
    t0 = time.monotonic()
    r = await hub.post("/api/agents/a1/claim?wait=0.3")
    assert r.status == 204 and r.text == ""
    assert time.monotonic() - t0 >= 0.3


async def test_claim_long_poll_is_woken_by_an_assignment(hub_factory: HubFactory) -> None:
    # a1 is known from the log of a previous run, so the restarted hub has it offline
    # (Recover) and the claim's heartbeat brings it back: an event that shows the
    # claim has reached its wait
    store = MemoryStore()
    first = await hub_factory(store=store, db="memory")
    await first.register("w1", ["code"], id="a1")
    await first.client.close()
    hub = await hub_factory(store=store, db="memory", hive=HiveConfig(heartbeat_timeout=300))
    assert (await hub.get("/api/agents/a1")).body["status"] == "offline"
    stream = await hub.ws(params={"types": "agent_status_changed", "agent_id": "a1"})
    parked = asyncio.ensure_future(hub.post("/api/agents/a1/claim?wait=30"))
    back, _ = await recv_until(stream, lambda m: m["data"]["new_status"] != "offline")
    assert back["data"]["new_status"] == "idle"
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    r = await asyncio.wait_for(parked, 10)  # woken at once, not found at the end of the 30 s wait
    assert r.status == 200, r
    assert (r.body["task"]["id"], r.body["attempt"]) == ("t1", 1)
    await stream.close()


@pytest.mark.parametrize("wait", ["-1", "61", "soon"])
async def test_claim_with_a_bad_wait_is_422(hub: Hub, wait: str) -> None:
    await hub.register("w1", id="a1")
    r = await hub.post(f"/api/agents/a1/claim?wait={wait}")
    assert (r.status, r.code) == (422, "invalid_input"), r


async def test_claim_delivers_an_attempt_once(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    c = await claimed(hub, "a1")
    assert c["task"]["status"] == "assigned" and c["attempt"] == c["task"]["attempt"] == 1
    assert (await hub.post("/api/agents/a1/claim?wait=0")).status == 204


async def test_pull_agent_runs_a_task_start_progress_complete(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    att = (await claimed(hub, "a1"))["attempt"]
    r = await hub.post("/api/tasks/t1/start", {"agent_id": "a1", "attempt": att})
    assert r.status == 200 and r.body["status"] == "running"
    assert (await hub.get("/api/agents/a1")).body["status"] == "active"
    r = await hub.post(
        "/api/tasks/t1/progress", {"agent_id": "a1", "attempt": att, "progress": 0.5, "current_step": "half"}
    )
    assert r.status == 200 and (r.body["progress"], r.body["current_step"]) == (0.5, "half")
    r = await hub.post(
        "/api/tasks/t1/complete", {"agent_id": "a1", "attempt": att, "result": {"answer": 42}, "quality": 0.9}
    )
    assert r.status == 200, r
    assert (r.body["status"], r.body["result"], r.body["progress"]) == ("completed", {"answer": 42}, 1.0)
    events = [e for e in await hub.events() if e["type"].startswith("task_")]
    assert types_of(events) == [
        "task_created",
        "task_assigned",
        "task_started",
        "task_progress",
        "task_completed",
    ]
    assert increasing([e["sequence"] for e in events])
    assert all(e["data"]["task_id"] == "t1" for e in events[1:])
    agent = (await hub.get("/api/agents/a1")).body
    assert agent["status"] == "idle" and agent["metrics"]["tasks_completed"] == 1
    # a finished attempt cannot be reported again
    again = await hub.post("/api/tasks/t1/complete", {"agent_id": "a1", "attempt": att})
    assert (again.status, again.code) == (409, "not_task_holder")


async def test_fail_retryable_requeues_with_a_backoff_and_not_retryable_fails_for_good(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "code"}])
    att = (await claimed(hub, "a1"))["attempt"]
    r = await hub.post(
        "/api/tasks/t1/fail",
        {"agent_id": "a1", "attempt": att, "error": {"code": "FLAKY", "message": "try again"}},
    )
    assert r.status == 200, r
    assert (r.body["status"], r.body["failures"]) == ("pending", 1) and r.body["next_retry_at"] is not None
    c = await claimed(hub, "a1")
    assert c["task"]["id"] == "t2"
    r = await hub.post(
        "/api/tasks/t2/fail",
        {
            "agent_id": "a1",
            "attempt": c["attempt"],
            "error": {"code": "BAD_INPUT", "message": "no"},
            "retryable": False,
        },
    )
    assert r.status == 200, r
    assert r.body["status"] == "failed" and r.body["error"]["code"] == "BAD_INPUT"
    retried = await hub.post("/api/tasks/t2/retry", {})
    assert retried.status == 200 and retried.body["status"] in ("pending", "assigned")


async def test_release_hands_the_attempt_back_without_a_failure(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    att = (await claimed(hub, "a1"))["attempt"]
    r = await hub.post("/api/tasks/t1/release", {"agent_id": "a1", "attempt": att, "reason": "shutting down"})
    assert r.status == 200, r
    assert r.body["failures"] == 0 and r.body["attempt"] == att + 1  # back in the queue, and assigned again
    (e,) = await hub.events(types="task_released")
    assert (e["data"]["task_id"], e["data"]["reason"]) == ("t1", "shutting down")
    stale = await hub.post("/api/tasks/t1/start", {"agent_id": "a1", "attempt": att})
    assert (stale.status, stale.code) == (409, "not_task_holder")
    assert stale.body["error"]["details"]["current_attempt"] == att + 1


@pytest.mark.parametrize("report", ["start", "progress", "complete", "fail", "release"])
async def test_a_report_without_attempt_is_422_attempt_required_and_changes_nothing(
    hub: Hub, report: str
) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    before = (await hub.get("/api/tasks/t1")).body
    r = await hub.post(f"/api/tasks/t1/{report}", {"agent_id": "a1"})
    assert (r.status, r.code) == (422, "attempt_required"), r
    assert r.body["error"]["details"] == {"task_id": "t1", "agent_id": "a1"}
    assert (await hub.get("/api/tasks/t1")).body == before


@pytest.mark.parametrize(
    ("agent", "attempt"),
    [("a1", 2), ("someone-else", 1)],
)
async def test_a_report_from_a_non_holder_is_409_not_task_holder(hub: Hub, agent: str, attempt: int) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    r = await hub.post("/api/tasks/t1/start", {"agent_id": agent, "attempt": attempt})
    assert (r.status, r.code) == (409, "not_task_holder"), r
    assert r.body["error"]["details"]["current_attempt"] == 1
    assert (await hub.get("/api/tasks/t1")).body["status"] == "assigned"


@pytest.mark.parametrize(
    ("report", "body"),
    [
        ("progress", {"progress": 1.5}),
        ("progress", {"progress": 0.5, "current_step": "x" * 1001}),
        ("complete", {"quality": -0.1}),
        ("fail", {"error": {"code": "", "message": "m"}}),
        ("fail", {"error": {"message": "m"}}),
        ("release", {"reason": "x" * 1001}),
        ("start", {"extra": 1}),
    ],
)
async def test_a_report_with_an_invalid_body_is_422(hub: Hub, report: str, body: dict) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.post("/api/tasks/t1/start", {"agent_id": "a1", "attempt": 1})
    r = await hub.post(f"/api/tasks/t1/{report}", {"agent_id": "a1", "attempt": 1, **body})
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/tasks/t1")).body["status"] == "running"


async def test_a_report_about_an_unknown_task_is_404(hub: Hub) -> None:
    await hub.register("w1", id="a1")
    r = await hub.post("/api/tasks/nope/start", {"agent_id": "a1", "attempt": 1})
    assert (r.status, r.code) == (404, "task_not_found")


async def test_list_tasks_by_agent(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "math"}])
    r = await hub.get("/api/tasks?agent_id=a1")
    assert [t["id"] for t in r.body["tasks"]] == ["t1"]


async def test_a_silent_pull_agent_goes_offline_and_its_task_is_requeued(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", hive=HiveConfig(heartbeat_timeout=0.5, retry_base_seconds=60))
    stream = await hub.ws(params={"types": "agent_status_changed,task_failed"})
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    att = (await claimed(hub, "a1"))["attempt"]
    await hub.post("/api/tasks/t1/start", {"agent_id": "a1", "attempt": att})
    failed, before = await recv_until(stream, lambda m: m["type"] == "task_failed")
    assert failed["data"]["task_id"] == "t1" and failed["data"]["error"]["code"] == "AGENT_LOST"
    if not any(m["data"].get("new_status") == "offline" for m in before):
        await recv_until(stream, lambda m: m["data"].get("new_status") == "offline")
    assert (await hub.get("/api/agents/a1")).body["status"] == "offline"
    t = (await hub.get("/api/tasks/t1")).body
    assert (t["status"], t["failures"], t["assigned_agent_id"]) == ("pending", 1, None)
    # it comes back by heartbeating
    assert (await hub.post("/api/agents/a1/heartbeat")).body["status"] != "offline"
    await stream.close()
