"""``hive_tasks_blocked{reason}``: the waiting tasks of /metrics by ``blocked_reason``,
the same reason ``GET /api/tasks/{id}`` gives each of them."""

from __future__ import annotations

from .conftest import Hub
from .test_health_metrics import metric
from .test_rest_human import ask, running


async def blocked(hub: Hub) -> dict[str, float]:
    r = await hub.get("/metrics")
    assert r.status == 200
    reasons = ["approval", "budget", "dependencies", "input", "no_agent", "quota:p"]
    return {x: metric(r.text, "hive_tasks_blocked", f'reason="{x}"') for x in reasons}


async def reason(hub: Hub, task_id: str) -> str | None:
    return (await hub.get(f"/api/tasks/{task_id}")).body["blocked_reason"]  # type: ignore[no-any-return]


async def test_waiting_tasks_are_counted_by_blocked_reason(hub: Hub) -> None:
    assert (await hub.request("PUT", "/api/quotas/p", json={"max_concurrent": 1})).status == 200
    assert set((await blocked(hub)).values()) == {0}  # every reason is there, at 0

    # input: a pull agent's running task asks a person
    assert (await ask(hub, await running(hub))).status == 200
    # approval, and a task depending on it
    await hub.submit(id="gate", requires_approval=True)
    await hub.submit(id="after", depends_on=["gate"])
    # no agent has the capability
    await hub.submit(id="lonely", required_capabilities=[{"name": "nobody-has-this"}])
    # a pool with room for one attempt: the second task waits for the pool
    await hub.register("a2", ["llm"], id="a2", quota="p")
    for tid in ("q1", "q2"):
        await hub.submit(id=tid, required_capabilities=[{"name": "llm"}], estimated_tokens=5)
    claimed = await hub.post("/api/agents/a2/claim?wait=0")
    assert claimed.status == 200 and claimed.body["task"]["id"] == "q1", claimed

    want = {"approval": 1, "budget": 0, "dependencies": 1, "input": 1, "no_agent": 1, "quota:p": 1}
    assert await blocked(hub) == want
    ids = {"t1": "input", "gate": "approval", "after": "dependencies", "lonely": "no_agent", "q2": "quota:p"}
    assert {t: await reason(hub, t) for t in ids} == ids
    assert await reason(hub, "q1") is None  # held by a2: not waiting

    # an owner out of budget: its ready tasks wait for the budget first
    owner = "anonymous"
    assert (await hub.request("PUT", f"/api/budgets/{owner}", json={"tokens_per_day": 1})).status == 200
    want.update(budget=2, no_agent=0, **{"quota:p": 0})
    assert await blocked(hub) == want
    assert await reason(hub, "lonely") == await reason(hub, "q2") == "budget"
