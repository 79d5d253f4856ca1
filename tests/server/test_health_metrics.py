"""Health, status and observability: /health, /metrics, /api/hive/status,
/api/modules, /api/alerts, /api/resources, the /api entry point, the OpenAPI
document and the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import Hub, ask

#: the REST surface as the generated reference lists it: (method, path)
DOCUMENTED = re.findall(
    r"^\| (GET|POST|PATCH|DELETE) \| \[`([^`]+)`\]",
    (Path(__file__).resolve().parents[2] / "docs" / "rest.md").read_text(),
    re.M,
)

MODULES = {
    "persistence",
    "event_stream",
    "background_processes",
    "task_management",
    "agent_management",
    "metrics_collection",
    "coordinator",
}


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample of the Prometheus text exposition."""
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" ([0-9.e+-]+)$"
    m = re.search(pattern, text, re.M)
    assert m is not None, f"{name}{{{labels}}} not in /metrics"
    return float(m.group(1))


# ------------------------------------------------------------------ /health


# ------------------------------------------------------------------ /metrics


async def test_metrics_expose_tasks_agents_and_the_log_head(hub: Hub) -> None:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    await hub.submit(id="t2", required_capabilities=[{"name": "nobody-has-this"}])
    await hub.submit(id="t3")
    await hub.post("/api/tasks/t3/cancel", {})
    ws = await hub.ws()
    await ask(ws, {"type": "ping", "message_id": "p"})
    r = await hub.get("/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert metric(text, "hive_tasks", 'status="assigned"') == 1
    assert metric(text, "hive_tasks", 'status="pending"') == 1
    assert metric(text, "hive_tasks", 'status="cancelled"') == 1
    assert metric(text, "hive_tasks", 'status="completed"') == 0
    assert metric(text, "hive_agents", 'status="active"') == 1
    assert metric(text, "hive_events_appended_total") == await hub.head()
    assert metric(text, "hive_subscribers") == 1
    assert metric(text, "hive_connected_agents") == 0
    assert metric(text, "hive_module_health", 'module="persistence"') == 0
    assert "hive_task_assignment_latency_seconds_bucket" in text
    assert metric(text, "hive_task_assignment_latency_seconds_count") == 1
    await ws.close()


# ------------------------------------------------------------------ status, modules, alerts, resources


async def test_modules_report_signals_and_what_the_log_recorded(hub: Hub) -> None:
    r = await hub.get("/api/modules")
    assert r.status == 200, r
    assert set(r.body["modules"]) == MODULES
    assert isinstance(r.body["recorded"], dict)
    assert "loop_lag_ms" in r.body["modules"]["background_processes"]["signals"]


async def test_alerts_are_empty_on_a_quiet_hub(hub: Hub) -> None:
    r = await hub.get("/api/alerts")
    assert r.status == 200 and r.body == {"alerts": []}


async def test_resources_can_be_read_and_thresholds_changed(hub: Hub) -> None:
    r = await hub.get("/api/resources")
    assert r.status == 200, r
    assert set(r.body) == {"last_sample_percent", "thresholds", "alerting", "trends"}
    r = await hub.patch("/api/resources", {"cpu": 55.5, "event_loop_lag_ms": 500})
    assert r.status == 200, r
    assert (r.body["thresholds"]["cpu"], r.body["thresholds"]["event_loop_lag_ms"]) == (55.5, 500)
    assert (await hub.get("/api/resources")).body["thresholds"]["cpu"] == 55.5


@pytest.mark.parametrize("body", [{"cpu": 0}, {"cpu": 101}, {"memory": "high"}, {"swap": 50}])
async def test_an_invalid_threshold_patch_is_422_and_changes_nothing(hub: Hub, body: dict) -> None:
    before = (await hub.get("/api/resources")).body["thresholds"]
    r = await hub.patch("/api/resources", body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/resources")).body["thresholds"] == before


# ------------------------------------------------------------------ entry points and documents


async def test_openapi_document_lists_every_route(hub: Hub) -> None:
    r = await hub.get("/api/openapi.json")
    assert r.status == 200, r
    doc = r.body
    assert doc["openapi"].startswith("3.")
    for method, path in DOCUMENTED:
        assert method.lower() in doc["paths"][path], (method, path)
    assert "get" in doc["paths"]["/ws"] and "get" in doc["paths"]["/agents/ws"]
    # served twice, the same bytes
    assert (await hub.get("/api/openapi.json")).text == r.text


def test_the_reference_lists_the_whole_surface() -> None:
    assert (
        len(DOCUMENTED) >= 30 and ("GET", "/ws") in DOCUMENTED and ("POST", "/api/tasks/batch") in DOCUMENTED
    )


@pytest.mark.parametrize(("method", "path"), DOCUMENTED, ids=[f"{m} {p}" for m, p in DOCUMENTED])
async def test_every_documented_route_is_served(hub: Hub, method: str, path: str) -> None:
    """A route of docs/rest.md that the app does not route answers the router's own
    404 ``not_found`` or 405; a served one answers anything else (an unknown id is
    ``task_not_found`` or ``agent_not_found``, a plain GET of a WebSocket 400)."""
    concrete = re.sub(r"\{[^}]+\}", "x", path)  # {id}, {name}, {owner}
    body = {} if method in ("POST", "PATCH", "PUT") else None
    r = await hub.request(method, concrete, json=body)
    assert r.code not in ("not_found", "method_not_allowed"), r
    assert r.status < 500 or path == "/api/openapi.json", r


async def test_the_dashboard_index_and_its_static_files_are_served(hub: Hub) -> None:
    r = await hub.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<title>Hive Hub</title>" in r.text
    for path in ("/static/app.js", "/static/style.css"):
        s = await hub.get(path)
        assert s.status == 200 and s.text, path
    missing = await hub.get("/static/nope.js")
    assert missing.status == 404
