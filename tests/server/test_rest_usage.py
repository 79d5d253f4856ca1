"""Model usage over REST: quota pools and budgets (``/api/quotas``, ``/api/budgets``),
``blocked_reason`` on task reads, ``llm`` in ``/api/hive/status`` and the LLM
figures of ``/metrics``."""

from __future__ import annotations

from typing import Any

import pytest

from hivehub.core.model import ModelPrice

from .conftest import HiveConfig, Hub, HubFactory, bearer

#: whom a request counts as with auth off (``created_by``, ``approved_by``, a task's owner)
OWNER = "anonymous"  # a task's owner with auth off (created_by "admin:anonymous")
PRICES = {"m1": ModelPrice(input_per_million=1.0, output_per_million=2.0)}


async def claimed(hub: Hub, agent_id: str) -> dict[str, Any]:
    r = await hub.post(f"/api/agents/{agent_id}/claim?wait=0")
    assert r.status == 200, r
    return r.body  # type: ignore[no-any-return]


async def run_to_completion(hub: Hub, agent_id: str, task_id: str, usage: dict[str, Any] | None) -> None:
    c = await claimed(hub, agent_id)
    assert c["task"]["id"] == task_id
    att = c["attempt"]
    r = await hub.post(f"/api/tasks/{task_id}/start", {"agent_id": agent_id, "attempt": att})
    assert r.status == 200, r
    r = await hub.post(
        f"/api/tasks/{task_id}/complete",
        {"agent_id": agent_id, "attempt": att, "result": "ok", "usage": usage},
    )
    assert r.status == 200 and r.body["status"] == "completed", r


# ------------------------------------------------------------------ quotas


async def test_a_quota_is_created_read_listed_and_deleted(hub: Hub) -> None:
    r = await hub.request("PUT", "/api/quotas/openai", json={"tokens_per_minute": 1000, "max_concurrent": 2})
    assert r.status == 200, r
    assert r.body == {
        "quota": {
            "name": "openai",
            "requests_per_minute": None,
            "tokens_per_minute": 1000,
            "max_concurrent": 2,
            "in_flight": 0,
            "paused_until": None,
            "agents": [],
        }
    }
    await hub.register("a1", ["code"], id="a1", quota="openai")
    got = await hub.get("/api/quotas/openai")
    assert got.status == 200 and got.body["quota"]["agents"] == ["a1"]
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await claimed(hub, "a1")
    assert (await hub.get("/api/quotas/openai")).body["quota"]["in_flight"] == 1
    changed = await hub.request("PUT", "/api/quotas/openai", json={"requests_per_minute": 60})
    assert changed.body["quota"]["requests_per_minute"] == 60
    assert changed.body["quota"]["tokens_per_minute"] is None  # a PUT replaces every limit
    await hub.request("PUT", "/api/quotas/anthropic", json={"max_concurrent": 1})
    listed = await hub.get("/api/quotas")
    assert [q["name"] for q in listed.body["quotas"]] == ["anthropic", "openai"]
    d = await hub.delete("/api/quotas/anthropic")
    assert (d.status, d.body) == (200, {"deleted": "anthropic"})
    assert [q["name"] for q in (await hub.get("/api/quotas")).body["quotas"]] == ["openai"]
    types = [e["type"] for e in await hub.events(types="quota_set,quota_deleted")]
    assert types == ["quota_set", "quota_set", "quota_set", "quota_deleted"]


async def test_an_unknown_quota_is_404_quota_not_found(hub: Hub) -> None:
    for r in (await hub.get("/api/quotas/nope"), await hub.delete("/api/quotas/nope")):
        assert (r.status, r.code) == (404, "quota_not_found"), r


async def test_registering_with_an_unknown_quota_is_404_quota_not_found(hub: Hub) -> None:
    r = await hub.post("/api/agents", {"name": "w", "quota": "nope"})
    assert (r.status, r.code) == (404, "quota_not_found"), r


@pytest.mark.parametrize(
    "body",
    [{}, {"tokens_per_minute": 0}, {"requests_per_minute": -5}, {"max_concurrent": "two"}, {"bogus": 1}],
)
async def test_a_quota_without_a_valid_limit_is_422(hub: Hub, body: dict[str, Any]) -> None:
    r = await hub.request("PUT", "/api/quotas/q", json=body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/quotas")).body == {"quotas": []}


async def test_a_quota_body_that_is_not_json_is_400(hub: Hub) -> None:
    r = await hub.request("PUT", "/api/quotas/q", data=b"{", headers={"Content-Type": "application/json"})
    assert r.status == 400, r


async def test_deleting_a_quota_an_agent_names_is_409_quota_in_use(hub: Hub) -> None:
    await hub.request("PUT", "/api/quotas/openai", json={"max_concurrent": 1})
    await hub.register("a1", ["code"], id="a1", quota="openai")
    r = await hub.delete("/api/quotas/openai")
    assert (r.status, r.code) == (409, "quota_in_use"), r
    assert (await hub.get("/api/quotas/openai")).status == 200


# ------------------------------------------------------------------ budgets


async def test_a_budget_is_created_read_listed_and_deleted(hub: Hub) -> None:
    r = await hub.request("PUT", "/api/budgets/alice", json={"tokens_per_day": 5000, "cost_usd_per_day": 2.5})
    assert r.status == 200, r
    b = r.body["budget"]
    assert (b["owner"], b["tokens_per_day"], b["cost_usd_per_day"]) == ("alice", 5000, 2.5)
    assert (b["spent_tokens"], b["spent_cost_usd"], b["reserved_tokens"], b["reserved_cost_usd"]) == (
        0,
        0.0,
        0,
        0.0,
    )
    assert b["blocked"] is False and len(b["day"]) == 10
    assert (await hub.get("/api/budgets/alice")).body == r.body
    await hub.request("PUT", "/api/budgets/bob", json={"tokens_per_day": 10})
    assert [x["owner"] for x in (await hub.get("/api/budgets")).body["budgets"]] == ["alice", "bob"]
    d = await hub.delete("/api/budgets/alice")
    assert (d.status, d.body) == (200, {"deleted": "alice"})
    assert [x["owner"] for x in (await hub.get("/api/budgets")).body["budgets"]] == ["bob"]


async def test_an_unknown_budget_is_404_budget_not_found(hub: Hub) -> None:
    for r in (await hub.get("/api/budgets/nope"), await hub.delete("/api/budgets/nope")):
        assert (r.status, r.code) == (404, "budget_not_found"), r


@pytest.mark.parametrize(
    "body", [{}, {"tokens_per_day": 0}, {"cost_usd_per_day": -1.0}, {"cost_usd_per_day": 0}]
)
async def test_a_budget_without_a_valid_limit_is_422(hub: Hub, body: dict[str, Any]) -> None:
    r = await hub.request("PUT", "/api/budgets/alice", json=body)
    assert (r.status, r.code) == (422, "invalid_input"), r


async def test_a_spent_budget_blocks_the_owners_tasks_and_shows_it(hub: Hub) -> None:
    await hub.register("a1", ["code"], id="a1")
    # auth off: the submitter (and so the owner) is the anonymous identity
    await hub.request("PUT", f"/api/budgets/{OWNER}", json={"tokens_per_day": 100})
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}], estimated_tokens=50)
    await run_to_completion(hub, "a1", "t1", {"model": "m1", "prompt_tokens": 60, "completion_tokens": 30})
    b = (await hub.get(f"/api/budgets/{OWNER}")).body["budget"]
    assert (b["spent_tokens"], b["reserved_tokens"]) == (90, 0)
    await hub.submit(id="t2", required_capabilities=[{"name": "code"}], estimated_tokens=50)
    t2 = await hub.get("/api/tasks/t2")
    assert (t2.body["status"], t2.body["blocked_reason"]) == ("pending", "budget")
    assert (await hub.get(f"/api/budgets/{OWNER}")).body["budget"]["blocked"] is True
    await hub.request("PUT", f"/api/budgets/{OWNER}", json={"tokens_per_day": 1000})
    assert (await hub.get("/api/tasks/t2")).body["blocked_reason"] is None


# ------------------------------------------------------------------ blocked_reason


async def test_blocked_reason_names_why_a_task_waits(hub: Hub) -> None:
    await hub.submit(id="lonely", required_capabilities=[{"name": "rare"}])
    await hub.submit(id="dep", required_capabilities=[{"name": "rare"}], depends_on=["lonely"])
    await hub.submit(id="gate", requires_approval=True)
    await hub.request("PUT", "/api/quotas/pool", json={"max_concurrent": 1})
    await hub.register("a1", ["code"], id="a1", quota="pool", max_concurrent_tasks=5)
    await hub.submit(id="q1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="q2", required_capabilities=[{"name": "code"}])
    reasons = {
        tid: (await hub.get(f"/api/tasks/{tid}")).body["blocked_reason"]
        for tid in ("lonely", "dep", "gate", "q1", "q2")
    }
    assert reasons == {
        "lonely": "no_agent",
        "dep": "dependencies",
        "gate": "approval",
        "q1": None,
        "q2": "quota:pool",
    }
    listed = (await hub.get("/api/tasks?order=asc")).body["tasks"]
    assert {t["id"]: t["blocked_reason"] for t in listed} == reasons


# ------------------------------------------------------------------ totals


async def test_status_llm_totals_fold_reported_usage_priced_from_the_table(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", hive=HiveConfig(prices=PRICES))
    await hub.register("a1", ["code"], id="a1")
    await hub.submit(id="t1", type="summarize", required_capabilities=[{"name": "code"}])
    await run_to_completion(hub, "a1", "t1", {"model": "m1", "prompt_tokens": 1000, "completion_tokens": 500})
    await hub.submit(id="t2", type="summarize", required_capabilities=[{"name": "code"}])
    await run_to_completion(hub, "a1", "t2", {"model": "free", "prompt_tokens": 10, "completion_tokens": 5})
    t1 = (await hub.get("/api/tasks/t1")).body
    assert t1["usage"] == {
        "model": "m1",
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "cost_usd": 0.002,
        "prompt_tokens_source": None,  # the agent did not say where its count comes from
    }
    llm = (await hub.get("/api/hive/status")).body["llm"]
    assert llm["total"] == {
        "requests": 2,
        "prompt_tokens": 1010,
        "completion_tokens": 505,
        "total_tokens": 1515,
        "cost_usd": 0.002,
        "unpriced_tokens": 15,
    }
    assert llm["by_model"]["m1"]["cost_usd"] == 0.002 and llm["by_model"]["free"]["unpriced_tokens"] == 15
    assert llm["by_type"]["summarize"]["requests"] == 2
    # auth off: the submitter (created_by, the owner) is the anonymous identity
    assert t1["created_by"] == "admin:anonymous"  # its owner: the token part, "anonymous"
    assert llm["by_owner"][OWNER]["total_tokens"] == 1515
    agent = (await hub.get("/api/agents/a1")).body
    assert agent["metrics"]["usage"]["total_tokens"] == 1515

    text = (await hub.get("/metrics")).text
    assert 'hive_llm_tokens_total{kind="prompt",model="m1"} 1000.0' in text
    assert 'hive_llm_tokens_total{kind="completion",model="m1"} 500.0' in text
    assert 'hive_llm_cost_usd_total{model="m1"} 0.002' in text
    assert 'hive_llm_requests_total{model="free"} 1.0' in text


async def test_metrics_show_attempts_in_flight_per_quota(hub: Hub) -> None:
    await hub.request("PUT", "/api/quotas/pool", json={"max_concurrent": 3})
    await hub.register("a1", ["code"], id="a1", quota="pool", max_concurrent_tasks=3)
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "code"}])
    text = (await hub.get("/metrics")).text
    assert 'hive_quota_in_flight{quota="pool"} 2.0' in text


# ------------------------------------------------------------------ roles


async def test_quota_and_budget_writes_need_the_operator_role(secured: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = secured
    writes = [
        ("PUT", "/api/quotas/q", {"max_concurrent": 1}),
        ("DELETE", "/api/quotas/q", None),
        ("PUT", "/api/budgets/o", {"tokens_per_day": 1}),
        ("DELETE", "/api/budgets/o", None),
    ]
    for method, path, body in writes:
        for role in ("viewer", "agent"):
            r = await hub.request(method, path, json=body, headers=bearer(tokens[role]))
            assert r.status == 403, (role, method, path, r)
        r = await hub.request(method, path, json=body, headers=bearer(tokens["operator"]))
        assert r.status == 200, (method, path, r)
    for path in ("/api/quotas", "/api/budgets"):
        assert (await hub.get(path, headers=bearer(tokens["viewer"]))).status == 200
        assert (await hub.get(path, headers={})).status == 401
    r = await hub.request(
        "PUT", "/api/budgets/o", json={"tokens_per_day": 1}, headers=bearer(tokens["operator"])
    )
    assert r.body["budget"]["owner"] == "o"
