"""hivehub.server.rest_status: the entry points /api, /health and /api/hive/status."""

from __future__ import annotations

from .conftest import Hub, recv_until
from .test_health_metrics import MODULES


async def test_health_is_200_healthy_with_every_module(hub: Hub) -> None:
    r = await hub.get("/health")
    assert r.status == 200, r
    assert r.body["status"] in ("healthy", "degraded")  # a busy machine may lag the loop
    assert set(r.body["modules"]) == MODULES
    for m in r.body["modules"].values():
        assert set(m) == {"status", "reason", "signals"}
    assert r.body["modules"]["persistence"]["status"] == "healthy"


async def test_health_is_degraded_not_unhealthy_while_the_store_fails(hub: Hub) -> None:
    await hub.submit(id="t1")
    alerts = await hub.ws(params={"types": "system_alert"})
    hub.store.fail_writes = True
    assert (await hub.post("/api/tasks", {})).status == 503
    r = await hub.get("/health")
    assert r.status == 200, r
    assert r.body["status"] == "degraded"
    mods = r.body["modules"]
    assert (mods["persistence"]["status"], mods["task_management"]["status"]) == ("degraded", "degraded")
    assert "writes failing" in mods["persistence"]["reason"]
    hub.store.fail_writes = False
    await recv_until(alerts, lambda m: m["data"].get("state") == "cleared")
    assert (await hub.get("/health")).body["modules"]["persistence"]["status"] == "healthy"


async def test_hive_status_counts_tasks_and_agents_at_the_published_sequence(hub: Hub) -> None:
    await hub.register("w1", id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "nobody-has-this"}])
    await hub.submit(id="t2")
    await hub.post("/api/tasks/t2/cancel", {})
    r = await hub.get("/api/hive/status")
    assert r.status == 200, r
    s = r.body
    m = s["metrics"]
    assert (m["total_tasks"], m["pending_tasks"], m["cancelled_tasks"]) == (2, 1, 1)
    assert (m["total_agents"], m["idle_agents"]) == (1, 1)
    assert s["published_sequence"] == s["sequence"] >= 5
    assert s["cluster"] == {"role": "single"}
    assert s["subscribers"] == 0 and s["connected_agents"] == 0
    assert set(s["modules"]) == MODULES
    assert s["uptime_seconds"] >= 0


async def test_api_names_the_entry_points(hub: Hub) -> None:
    r = await hub.get("/api")
    assert r.status == 200, r
    assert r.body["name"] == "Hive Hub" and r.body["version"]
    assert r.body["endpoints"] == {
        "stream": "/ws",
        "agents": "/agents/ws",
        "openapi": "/api/openapi.json",
        "health": "/health",
        "dashboard": "/",
    }
