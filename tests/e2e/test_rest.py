"""REST API acceptance against the real ``hive serve`` subprocess (issue "Core hub")."""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections import Counter
from typing import Any

import websocket

from hivehub import __version__
from tests.hubproc import Hub, wait_for

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ENVELOPE = {"type", "data", "timestamp", "message_id", "sequence"}

#: Every (method, path) the server serves (the optional dashboard's static files
#: aside). Kept by hand on purpose: the OpenAPI document must list exactly these.
ALL_ROUTES = {
    ("get", "/health"),
    ("get", "/api"),
    ("get", "/api/openapi.json"),
    ("get", "/api/hive/status"),
    ("get", "/api/modules"),
    ("get", "/api/alerts"),
    ("get", "/api/resources"),
    ("patch", "/api/resources"),
    ("get", "/metrics"),
    ("get", "/api/resources"),
    ("patch", "/api/resources"),
    ("get", "/api/events"),
    ("post", "/api/agents"),
    ("get", "/api/agents"),
    ("get", "/api/agents/{id}"),
    ("patch", "/api/agents/{id}"),
    ("delete", "/api/agents/{id}"),
    ("post", "/api/agents/{id}/heartbeat"),
    ("post", "/api/agents/{id}/reset-learning"),
    ("post", "/api/agents/{id}/claim"),
    ("post", "/api/tasks"),
    ("post", "/api/tasks/batch"),
    ("get", "/api/tasks"),
    ("get", "/api/tasks/{id}"),
    ("get", "/api/tasks/{id}/attempts"),
    ("get", "/api/history/tasks"),
    ("get", "/api/history/series"),
    ("get", "/api/history/agents/{agent_id}"),
    ("post", "/api/tasks/{id}/cancel"),
    ("post", "/api/tasks/{id}/retry"),
    ("post", "/api/tasks/{id}/start"),
    ("post", "/api/tasks/{id}/progress"),
    ("post", "/api/tasks/{id}/complete"),
    ("post", "/api/tasks/{id}/fail"),
    ("post", "/api/tasks/{id}/release"),
    ("post", "/api/tasks/{id}/approve"),
    ("post", "/api/tasks/{id}/reject"),
    ("post", "/api/tasks/{id}/input"),
    ("post", "/api/tasks/{id}/input-request"),
    ("get", "/api/quotas"),
    ("get", "/api/quotas/{name}"),
    ("put", "/api/quotas/{name}"),
    ("delete", "/api/quotas/{name}"),
    ("get", "/api/budgets"),
    ("get", "/api/budgets/{owner}"),
    ("put", "/api/budgets/{owner}"),
    ("delete", "/api/budgets/{owner}"),
    ("get", "/ws"),
    ("get", "/agents/ws"),
}
#: Routes that take a JSON request body (the OpenAPI document must give its schema).
BODY_ROUTES = {
    ("post", "/api/agents"),
    ("patch", "/api/agents/{id}"),
    ("patch", "/api/resources"),
    ("post", "/api/tasks"),
    ("post", "/api/tasks/batch"),
    ("post", "/api/tasks/{id}/cancel"),
    ("post", "/api/tasks/{id}/retry"),
    ("post", "/api/tasks/{id}/start"),
    ("post", "/api/tasks/{id}/progress"),
    ("post", "/api/tasks/{id}/complete"),
    ("post", "/api/tasks/{id}/fail"),
    ("post", "/api/tasks/{id}/release"),
    ("post", "/api/tasks/{id}/approve"),
    ("post", "/api/tasks/{id}/reject"),
    ("post", "/api/tasks/{id}/input"),
    ("post", "/api/tasks/{id}/input-request"),
    ("put", "/api/quotas/{name}"),
    ("put", "/api/budgets/{owner}"),
}


def long_hub(hub_factory: Any, *extra: str) -> Hub:
    """A hub whose REST-registered agents stay online for the whole test."""
    return hub_factory("--heartbeat-timeout", "120", *extra).start()


def agent(h: Hub, name: str, caps: dict[str, float] | None = None, **kw: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "capabilities": [{"name": n, "proficiency": p} for n, p in (caps or {}).items()],
        **kw,
    }
    return h.post("/api/agents", body, expect=201)


def task(h: Hub, **kw: Any) -> dict[str, Any]:
    return h.post("/api/tasks", kw, expect=201)


def req(**caps: float) -> list[dict[str, Any]]:
    return [{"name": n, "min_proficiency": p} for n, p in caps.items()]


def walk(h: Hub, path: str, key: str, limit: int) -> tuple[list[str], int]:
    """Follow next_cursor to the end; returns the ids in order and the page count."""
    ids: list[str] = []
    cursor = None
    pages = 0
    sep = "&" if "?" in path else "?"
    while True:
        page = h.get(f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""))
        pages += 1
        assert len(page[key]) <= limit
        ids += [x["id"] for x in page[key]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages


def assert_walk(h: Hub, path: str, key: str, limit: int, expected: list[str]) -> None:
    ids, pages = walk(h, path, key, limit)
    assert len(ids) == len(set(ids)), f"duplicates walking {path}"
    assert ids == expected, path
    assert pages == max(1, math.ceil(len(expected) / limit)), (path, pages, len(expected))


# ----------------------------------------------------------------- meta


def test_health_and_api_info(hub: Hub) -> None:
    status, health = hub.request("GET", "/health")
    assert status == 200
    assert health["status"] == "healthy"
    mods = health["modules"]
    assert {"persistence", "event_stream"} <= set(mods)
    for name, m in mods.items():
        assert m["status"] in ("healthy", "degraded", "unhealthy"), name
        assert isinstance(m["reason"], str)
    assert mods["persistence"]["status"] == "healthy"
    assert mods["event_stream"]["status"] == "healthy"

    info = hub.get("/api")
    assert info["name"] == "Hive Hub"
    assert info["version"] == __version__


def test_openapi_lists_every_route_with_body_schemas(hub: Hub) -> None:
    doc = hub.get("/api/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == __version__
    listed = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == ALL_ROUTES, {"missing": ALL_ROUTES - listed, "extra": listed - ALL_ROUTES}

    components = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        name = ref.rsplit("/", 1)[-1]
        assert ref == f"#/components/schemas/{name}" and name in components, ref
        return components[name]

    for method, path in BODY_ROUTES:
        op = doc["paths"][path][method]
        schema = resolve(op["requestBody"]["content"]["application/json"]["schema"])
        assert schema.get("type") == "object" and schema.get("properties"), (method, path)
    # the task body schema documents the spec fields and the priority names
    task_schema = resolve(
        doc["paths"]["/api/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    assert {"description", "type", "priority", "required_capabilities"} <= set(task_schema["properties"])
    assert "critical" in json.dumps(task_schema["properties"]["priority"])

    # every listed route is really served (not the router's 404/405), probed without side effects
    for method, path in sorted(ALL_ROUTES):
        concrete = (
            path.replace("{id}", "no-such-id")
            .replace("{name}", "no-such")
            .replace("{owner}", "no-such")
            .replace("{agent_id}", "no-such")
        )
        raw = b"{" if method in ("post", "patch", "put") else None
        if path == "/metrics":  # text, not JSON
            with urllib.request.urlopen(hub.url + path, timeout=10) as r:
                assert r.status == 200 and r.headers.get_content_type() == "text/plain"
            continue
        status, body = hub.request(method.upper(), concrete, raw=raw)
        assert status not in (405, 500), (method, path, status, body)
        if status == 404:
            assert body["error"]["code"] in (
                "agent_not_found",
                "task_not_found",
                "quota_not_found",
                "budget_not_found",
            ), (method, path, body)
    status, body = hub.request("GET", "/api/no-such-route")
    assert status == 404 and body["error"]["code"] == "not_found"


# ----------------------------------------------------------------- agents


def test_agent_create_get_patch_delete(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    a = agent(h, "DataProcessor-1", {"data_processing": 0.85}, type="specialist", max_concurrent_tasks=3)
    assert set(a) >= {
        "id",
        "name",
        "type",
        "capabilities",
        "status",
        "max_concurrent_tasks",
        "created_at",
        "last_seen_at",
        "metrics",
    }
    assert a["name"] == "DataProcessor-1"
    assert a["type"] == "specialist"
    assert a["status"] == "idle"
    assert a["max_concurrent_tasks"] == 3
    assert a["capabilities"] == [
        {"name": "data_processing", "proficiency": 0.85, "learning_rate": 0.1, "declared_proficiency": 0.85}
    ]
    assert ISO_Z.match(a["created_at"]) and ISO_Z.match(a["last_seen_at"])
    assert {"tasks_completed", "success_rate", "average_response_time_ms", "capability_improvements"} <= set(
        a["metrics"]
    )
    assert a["metrics"]["tasks_completed"] == 0

    got = h.get(f"/api/agents/{a['id']}")
    assert got["id"] == a["id"] and got["capabilities"] == a["capabilities"]

    # PATCH changes capabilities (and is what matching and GET see afterwards)
    status, patched = h.request(
        "PATCH", f"/api/agents/{a['id']}", {"capabilities": [{"name": "ml", "proficiency": 0.5}]}
    )
    assert status == 200, patched
    assert patched["capabilities"] == [
        {"name": "ml", "proficiency": 0.5, "learning_rate": 0.1, "declared_proficiency": 0.5}
    ]
    assert patched["name"] == "DataProcessor-1" and patched["max_concurrent_tasks"] == 3
    assert h.get(f"/api/agents/{a['id']}")["capabilities"] == patched["capabilities"]
    assert [x["id"] for x in h.get("/api/agents?capability=ml")["agents"]] == [a["id"]]
    assert h.get("/api/agents?capability=data_processing")["agents"] == []

    # an agent holding a task: DELETE reassigns it and says so
    t = task(h, description="held", required_capabilities=req(ml=0.1))
    assert t["status"] == "assigned" and t["assigned_agent_id"] == a["id"]
    status, removed = h.request("DELETE", f"/api/agents/{a['id']}")
    assert status == 200, removed
    assert removed["cleanup_summary"]["tasks_reassigned"] == 1
    assert removed["cleanup_summary"]["data_removed"] is True
    ev = h.events(types="agent_removed")
    assert len(ev) == 1
    d = ev[0]["data"]
    assert d["agent_id"] == a["id"]
    assert d["reason"] == "manual_removal"
    assert d["cleanup_summary"]["tasks_reassigned"] == 1 and d["cleanup_summary"]["data_removed"] is True
    assert ISO_Z.match(d["timestamp"])
    back = h.get(f"/api/tasks/{t['id']}")
    assert back["status"] == "pending" and back["assigned_agent_id"] is None

    status, body = h.request("GET", f"/api/agents/{a['id']}")
    assert status == 404 and body["error"]["code"] == "agent_not_found"
    status, body = h.request("DELETE", f"/api/agents/{a['id']}")
    assert status == 404 and body["error"]["code"] == "agent_not_found"


def test_list_agents_filters_and_pagination(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    types = ["worker", "coordinator", "specialist", "learner"]
    made = []
    for i in range(23):
        caps = {"python": 0.5 + (i % 5) / 10} if i % 2 == 0 else {"sql": 0.7}
        if i % 3 == 0:
            caps["ml"] = 0.9
        made.append(agent(h, f"agent-{i}", caps, type=types[i % 4]))
    ids = [a["id"] for a in made]
    # one agent gets a task, so it is active and all others idle
    t = task(h, required_capabilities=req(python=0.85))
    busy = t["assigned_agent_id"]
    assert busy in ids

    assert_walk(h, "/api/agents", "agents", 5, ids)
    assert_walk(h, "/api/agents", "agents", 23, ids)
    assert_walk(h, "/api/agents", "agents", 1000, ids)
    for typ in types:
        assert_walk(h, f"/api/agents?type={typ}", "agents", 2, [a["id"] for a in made if a["type"] == typ])
    for cap in ("python", "sql", "ml", "nothing"):
        expected = [a["id"] for a in made if any(c["name"] == cap for c in a["capabilities"])]
        assert_walk(h, f"/api/agents?capability={cap}", "agents", 4, expected)
    assert_walk(h, "/api/agents?status=active", "agents", 3, [busy])
    assert_walk(h, "/api/agents?status=idle", "agents", 3, [i for i in ids if i != busy])
    assert_walk(h, "/api/agents?status=offline", "agents", 3, [])
    combo = [
        a["id"] for a in made if a["type"] == "worker" and any(c["name"] == "ml" for c in a["capabilities"])
    ]
    assert combo
    assert_walk(h, "/api/agents?type=worker&capability=ml", "agents", 1, combo)
    for bad in ("status=sleeping", "type=robot", "limit=0", "limit=1001", "limit=x", "cursor=%%%"):
        status, body = h.request("GET", f"/api/agents?{bad}")
        assert status == 422 and body["error"]["code"] == "invalid_input", (bad, status, body)


def test_matching_agents_counts_online_agents_meeting_every_requirement(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    agent(h, "A", {"python": 0.9, "sql": 0.5}, max_concurrent_tasks=50)
    b = agent(h, "B", {"python": 0.6}, max_concurrent_tasks=50)
    agent(h, "C", {"sql": 0.8}, max_concurrent_tasks=50)
    gone = agent(h, "E", {"python": 1.0, "sql": 1.0})
    h.request("DELETE", f"/api/agents/{gone['id']}")
    # D is registered over the agent socket and disconnects: offline, so it does not count
    ws = websocket.create_connection(h.ws_url + "/agents/ws", timeout=10)
    try:
        caps = [{"name": "python", "proficiency": 0.99}, {"name": "sql", "proficiency": 0.99}]
        ws.send(
            json.dumps({"type": "register", "message_id": "r1", "data": {"name": "D", "capabilities": caps}})
        )
        reg = json.loads(ws.recv())
        assert reg["type"] == "registered", reg
        d_id = reg["data"]["agent_id"]
    finally:
        ws.close()
    wait_for(lambda: h.get(f"/api/agents/{d_id}")["status"] == "offline", what="agent D offline")

    cases = [
        ([], 3),
        (req(python=0.6), 2),  # A, and B exactly at the threshold
        (req(python=0.7), 1),
        (req(python=0.0), 2),
        (req(python=0.5, sql=0.5), 1),
        (req(sql=0.85), 0),  # only the offline D qualifies
        (req(sql=0.5), 2),
        (req(rust=0.1), 0),
    ]
    created = [
        (task(h, description=f"case {i}", required_capabilities=r)["id"], n) for i, (r, n) in enumerate(cases)
    ]
    # B learns: it now meets python >= 0.7 too
    h.request("PATCH", f"/api/agents/{b['id']}", {"capabilities": [{"name": "python", "proficiency": 0.75}]})
    created.append((task(h, required_capabilities=req(python=0.7))["id"], 2))

    matching = {e["data"]["task"]["id"]: e["data"]["matching_agents"] for e in h.events(types="task_created")}
    assert matching == dict(created)


# ----------------------------------------------------------------- tasks


def test_create_task_fields_and_priority_names(hub: Hub) -> None:
    for given, stored in [("low", 1), ("medium", 2), ("high", 3), ("critical", 4), (1, 1), (4, 4)]:
        t = task(
            hub,
            description="Process customer data",
            type="data_processing",
            priority=given,
            required_capabilities=req(data_processing=0.7),
        )
        assert t["priority"] == stored, given
        assert t["status"] == "pending"
        assert t["description"] == "Process customer data"
        assert t["type"] == "data_processing"
        assert t["required_capabilities"] == [{"name": "data_processing", "min_proficiency": 0.7}]
        assert ISO_Z.match(t["created_at"])
        assert hub.get(f"/api/tasks/{t['id']}") == t
    default = task(hub)
    assert default["priority"] == 2 and default["type"] == "general" and default["status"] == "pending"
    for e in hub.events(types="task_created"):
        assert e["data"]["task"]["priority"] in (1, 2, 3, 4)


def test_task_batch(hub: Hub) -> None:
    specs = [
        {"description": f"b{i}", "type": "bulk", "priority": ["low", "critical"][i % 2]} for i in range(5)
    ]
    out = hub.post("/api/tasks/batch", {"tasks": specs}, expect=201)
    assert [t["description"] for t in out["tasks"]] == [s["description"] for s in specs]
    assert [t["priority"] for t in out["tasks"]] == [1, 4, 1, 4, 1]
    for t in out["tasks"]:
        assert hub.get(f"/api/tasks/{t['id']}")["status"] == "pending"
    # dependencies inside one batch
    dep = hub.post(
        "/api/tasks/batch",
        {"tasks": [{"id": "first"}, {"id": "second", "depends_on": ["first"]}]},
        expect=201,
    )
    assert [t["id"] for t in dep["tasks"]] == ["first", "second"]
    # all or nothing: one bad entry rejects the whole batch
    for bad in (
        {"tasks": [{"description": "ok"}, {"priority": 9}]},
        {"tasks": [{"description": "ok"}, {"depends_on": ["no-such-task"]}]},
        {"tasks": [{"id": "dup"}, {"id": "dup"}]},
        {"tasks": []},
        {"tasks": [{}] * 1001},
    ):
        status, body = hub.request("POST", "/api/tasks/batch", bad)
        assert status == 422, (status, body)
        assert body["error"]["code"] in ("invalid_input", "dependency_not_found")
    assert len(hub.events(types="task_created")) == 7
    assert hub.get("/api/hive/status")["metrics"]["total_tasks"] == 7


def test_list_tasks_filters_and_pagination(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    w = agent(h, "worker", {"gpu": 0.9}, max_concurrent_tasks=4)
    made = []
    for i in range(17):
        made.append(
            task(
                h,
                description=f"t{i}",
                type=["etl", "train", "report"][i % 3],
                priority=(i % 4) + 1,
                required_capabilities=req(gpu=0.5) if i % 4 == 0 else req(nobody=0.5),
            )
        )
    held = [t["id"] for t in made if t["assigned_agent_id"] == w["id"]]
    assert len(held) == 4  # i = 0, 4, 8, 12 (max_concurrent_tasks 4)
    cancelled = [made[1]["id"], made[2]["id"]]
    for tid in cancelled:
        h.post(f"/api/tasks/{tid}/cancel", {}, expect=200)
    # newest first by default; asc on request
    newest_first = [t["id"] for t in reversed(made)]
    assert_walk(h, "/api/tasks", "tasks", 4, newest_first)
    assert_walk(h, "/api/tasks?order=asc", "tasks", 5, newest_first[::-1])
    assert_walk(h, "/api/tasks", "tasks", 17, newest_first)
    cur = {t["id"]: h.get(f"/api/tasks/{t['id']}") for t in made}

    def expect(pred: Any) -> list[str]:
        return [tid for tid in newest_first if pred(cur[tid])]

    for status in ("pending", "assigned", "cancelled", "completed"):
        assert_walk(
            h, f"/api/tasks?status={status}", "tasks", 3, expect(lambda t, s=status: t["status"] == s)
        )
    assert expect(lambda t: t["status"] == "cancelled") == cancelled[::-1]
    for typ in ("etl", "train", "report", "none"):
        assert_walk(h, f"/api/tasks?type={typ}", "tasks", 2, expect(lambda t, s=typ: t["type"] == s))
    assert_walk(h, f"/api/tasks?agent_id={w['id']}", "tasks", 3, held[::-1])
    for p, name in ((1, "low"), (2, "medium"), (3, "high"), (4, "critical")):
        exp = expect(lambda t, p=p: t["priority"] == p)
        assert exp
        assert_walk(h, f"/api/tasks?priority={p}", "tasks", 2, exp)
        assert_walk(h, f"/api/tasks?priority={name}", "tasks", 2, exp)
    assert_walk(
        h,
        "/api/tasks?type=etl&status=pending",
        "tasks",
        1,
        expect(lambda t: t["type"] == "etl" and t["status"] == "pending"),
    )
    for bad in ("status=done", "priority=5", "priority=urgent", "order=sideways", "limit=0", "cursor=bm9wZQ"):
        status, body = h.request("GET", f"/api/tasks?{bad}")
        assert status == 422 and body["error"]["code"] == "invalid_input", (bad, status, body)
    status, body = h.request("GET", "/api/tasks/no-such-task")
    assert status == 404 and body["error"]["code"] == "task_not_found"


def test_cancel_conflict_and_retry(hub: Hub) -> None:
    t = task(hub, description="to cancel")
    out = hub.post(
        f"/api/tasks/{t['id']}/cancel", {"reason": "user_request", "cancelled_by": "user-123"}, expect=200
    )
    assert out["status"] == "cancelled"
    assert out["cancelled_by"] == "user-123"
    assert hub.get(f"/api/tasks/{t['id']}")["status"] == "cancelled"
    ev = hub.events(types="task_cancelled")
    assert len(ev) == 1
    d = ev[0]["data"]
    assert d["task_id"] == t["id"]
    assert d["reason"] == "user_request"
    assert d["cancelled_by"] == "user-123"
    assert ISO_Z.match(d["timestamp"])

    status, body = hub.request("POST", f"/api/tasks/{t['id']}/cancel", {})
    assert status == 409, body
    assert body["error"]["code"] == "invalid_transition"
    assert isinstance(body["error"]["message"], str) and isinstance(body["error"]["details"], dict)

    # default reason and actor
    t2 = task(hub)
    hub.post(f"/api/tasks/{t2['id']}/cancel", None, expect=200)
    d2 = hub.events(types="task_cancelled")[-1]["data"]
    assert d2["reason"] == "manual_cancellation" and d2["cancelled_by"]

    again = hub.post(f"/api/tasks/{t['id']}/retry", {}, expect=200)
    assert again["status"] == "pending"
    assert again["cancelled_by"] is None
    assert hub.events(types="task_retried")[-1]["data"]["task_id"] == t["id"]
    status, body = hub.request("POST", f"/api/tasks/{t['id']}/retry", {})
    assert status == 409 and body["error"]["code"] == "invalid_transition"
    status, body = hub.request("POST", "/api/tasks/no-such-task/cancel", {})
    assert status == 404 and body["error"]["code"] == "task_not_found"


# ----------------------------------------------------------------- events and status


def test_events_paging_types_and_gapless_sequences(hub: Hub) -> None:
    for i in range(6):
        agent(hub, f"a{i}", {"x": 0.5})
    tasks = [task(hub, required_capabilities=req(nobody=0.1)) for _ in range(9)]
    for t in tasks[:3]:
        hub.post(f"/api/tasks/{t['id']}/cancel", {}, expect=200)
    everything = hub.get("/api/events?since=0&limit=10000")
    evs = everything["events"]
    # (the hive may log events about itself at any time: compare up to what was read)
    end = evs[-1]["sequence"]
    assert [e["sequence"] for e in evs] == list(range(1, end + 1))
    assert everything["next_since"] == end
    assert end <= hub.get("/api/hive/status")["sequence"]

    def walk_events(query: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        since = 0
        while since < end:
            page = hub.get(f"/api/events?since={since}{query}")
            assert page["next_since"] >= since
            if page["next_since"] == since:
                break
            out += page["events"]
            since = page["next_since"]
        return [e for e in out if e["sequence"] <= end]

    # paging with limit walks the same events exactly once
    assert walk_events("&limit=4") == evs
    # since in the middle
    page = hub.get("/api/events?since=5&limit=3")
    assert [e["sequence"] for e in page["events"]] == [6, 7, 8]
    assert page["next_since"] == 8

    # types filter, walked with a small limit
    picked = walk_events("&types=task_cancelled,agent_created&limit=2")
    assert picked == [e for e in evs if e["type"] in ("task_cancelled", "agent_created")]
    assert Counter(e["type"] for e in picked) == {"agent_created": 6, "task_cancelled": 3}
    assert [e["type"] for e in hub.get("/api/events?types=task_cancelled&limit=2")["events"]] == [
        "task_cancelled"
    ] * 2

    # at the end: empty, next_since stays; past it: refused, naming the head (a poller
    # that kept the bad cursor would miss the next events)
    assert hub.get(f"/api/events?since={end}") == {"events": [], "next_since": end}
    far = end + 1_000_000
    status, body = hub.request("GET", f"/api/events?since={far}")
    assert status == 400 and body["error"]["code"] == "cursor_out_of_range", body
    assert body["error"]["details"] == {"since": far, "head": end}
    for bad in ("types=agent_created,bogus", "since=-1", "since=x", "limit=0", "limit=10001"):
        status, body = hub.request("GET", f"/api/events?{bad}")
        assert status == 422 and body["error"]["code"] == "invalid_input", (bad, body)


def test_event_envelopes_and_spec_fields(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    a = agent(h, "DataProcessor-1", {"data_processing": 0.85}, type="specialist", max_concurrent_tasks=5)
    h.request("PATCH", f"/api/agents/{a['id']}", {"name": "DataProcessor-2"})
    ok = task(h, description="ok", required_capabilities=req(data_processing=0.7))
    bad = task(h, description="bad", max_retries=0, required_capabilities=req(data_processing=0.7))
    cancel = task(h, description="cancel", required_capabilities=req(data_processing=0.7))
    aid = a["id"]
    h.post(f"/api/tasks/{ok['id']}/start", {"agent_id": aid, "attempt": 1}, expect=200)
    h.post(
        f"/api/tasks/{ok['id']}/progress",
        {"agent_id": aid, "attempt": 1, "progress": 0.5, "current_step": "half"},
        expect=200,
    )
    h.post(
        f"/api/tasks/{ok['id']}/complete",
        {"agent_id": aid, "attempt": 1, "result": {"records_processed": 10}},
        expect=200,
    )
    h.post(
        f"/api/tasks/{bad['id']}/fail",
        {
            "agent_id": aid,
            "attempt": 1,
            "error": {"code": "DATA_PROCESSING_ERROR", "message": "invalid format", "details": {"line": 150}},
        },
        expect=200,
    )
    h.post(
        f"/api/tasks/{cancel['id']}/cancel",
        {"reason": "manual_cancellation", "cancelled_by": "user-123"},
        expect=200,
    )
    h.request("DELETE", f"/api/agents/{aid}")

    evs = h.events()
    seen = Counter(e["type"] for e in evs)
    spec_types = {
        "agent_created",
        "agent_status_changed",
        "agent_performance_updated",
        "agent_removed",
        "task_created",
        "task_assigned",
        "task_started",
        "task_progress",
        "task_completed",
        "task_failed",
        "task_cancelled",
    }
    assert spec_types <= set(seen), seen
    required: dict[str, set[str]] = {
        "agent_status_changed": {"agent_id", "old_status", "new_status", "reason", "timestamp"},
        "agent_performance_updated": {"agent_id", "metrics", "timestamp"},
        "agent_removed": {"agent_id", "reason", "cleanup_summary", "timestamp"},
        "task_created": {"task", "matching_agents", "timestamp"},
        "task_assigned": {"task_id", "agent_id", "assignment_reason", "estimated_completion", "timestamp"},
        "task_started": {"task_id", "agent_id", "attempt_number", "timestamp"},
        "task_progress": {
            "task_id",
            "agent_id",
            "progress",
            "current_step",
            "estimated_completion",
            "timestamp",
        },
        "task_completed": {"task_id", "agent_id", "execution_time_ms", "result", "timestamp"},
        "task_failed": {
            "task_id",
            "agent_id",
            "attempt_number",
            "error",
            "retry_scheduled",
            "next_retry_at",
            "timestamp",
        },
        "task_cancelled": {"task_id", "reason", "cancelled_by", "timestamp"},
        "agent_created": {"agent", "timestamp"},
    }
    for i, e in enumerate(evs, 1):
        assert set(e) == ENVELOPE, e
        assert e["sequence"] == i
        assert ISO_Z.match(e["timestamp"]), e["timestamp"]
        assert isinstance(e["message_id"], str) and e["message_id"]
        assert isinstance(e["data"], dict)
        assert ISO_Z.match(e["data"]["timestamp"]), e
        missing = required.get(e["type"], set()) - set(e["data"])
        assert not missing, (e["type"], missing)
    assert len({e["message_id"] for e in evs}) == len(evs)

    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in evs:
        by_type.setdefault(e["type"], []).append(e["data"])
    ag = by_type["agent_created"][0]["agent"]
    assert {"id", "name", "type", "capabilities", "created_at"} <= set(ag)
    assert ag["capabilities"][0] == {
        "name": "data_processing",
        "proficiency": 0.85,
        "learning_rate": 0.1,
        "declared_proficiency": 0.85,
    }
    assert ISO_Z.match(ag["created_at"])
    tc = by_type["task_created"][0]
    assert {"id", "description", "type", "priority", "status", "required_capabilities", "created_at"} <= set(
        tc["task"]
    )
    assert tc["task"]["status"] == "pending" and tc["matching_agents"] == 1
    sc = by_type["agent_status_changed"][0]
    assert (sc["old_status"], sc["new_status"], sc["reason"]) == ("idle", "active", "task_assigned")
    perf = by_type["agent_performance_updated"][0]["metrics"]
    assert {"tasks_completed", "success_rate", "average_response_time_ms", "capability_improvements"} <= set(
        perf
    )
    rm = by_type["agent_removed"][0]["cleanup_summary"]
    assert {"tasks_reassigned", "data_removed"} <= set(rm)
    fail = by_type["task_failed"][0]
    assert fail["error"]["code"] == "DATA_PROCESSING_ERROR" and fail["retry_scheduled"] is False
    assert {"code", "message", "details"} <= set(fail["error"])
    done = by_type["task_completed"][0]
    assert done["result"] == {"records_processed": 10} and done["execution_time_ms"] >= 0
    prog = by_type["task_progress"][0]
    assert prog["progress"] == 0.5 and prog["current_step"] == "half"


def test_hive_status_agrees_with_task_and_agent_lists(hub_factory: Any) -> None:
    h = long_hub(hub_factory)
    w1 = agent(h, "w1", {"gpu": 0.9}, max_concurrent_tasks=3)
    agent(h, "w2", {"cpu": 0.9}, max_concurrent_tasks=2)
    agent(h, "idle", {"tpu": 0.9})
    gpu = [task(h, required_capabilities=req(gpu=0.5)) for _ in range(3)]
    task(h, required_capabilities=req(cpu=0.5))
    pending = [task(h, required_capabilities=req(nobody=0.5)) for _ in range(4)]
    aid = w1["id"]
    h.post(f"/api/tasks/{gpu[0]['id']}/start", {"agent_id": aid, "attempt": 1}, expect=200)
    h.post(f"/api/tasks/{gpu[1]['id']}/complete", {"agent_id": aid, "attempt": 1, "result": 1}, expect=200)
    h.post(f"/api/tasks/{gpu[2]['id']}/fail", {"agent_id": aid, "attempt": 1, "retryable": False}, expect=200)
    h.post(f"/api/tasks/{pending[0]['id']}/cancel", {}, expect=200)

    def all_of(path: str, key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = h.get(path + "?limit=3" + (f"&cursor={cursor}" if cursor else ""))
            out += page[key]
            cursor = page["next_cursor"]
            if cursor is None:
                return out

    def consistent() -> tuple[Counter[str], Counter[str], dict[str, Any]] | None:
        """Lists and status read with no event in between (background work may still run)."""
        before = h.get("/api/hive/status")
        tasks = Counter(t["status"] for t in all_of("/api/tasks", "tasks"))
        agents = Counter(a["status"] for a in all_of("/api/agents", "agents"))
        after = h.get("/api/hive/status")
        return (tasks, agents, after) if before["sequence"] == after["sequence"] else None

    tasks, agents, st = wait_for(consistent, what="a quiet moment to compare lists and status")
    m = st["metrics"]
    assert tasks == {"pending": 3, "running": 1, "completed": 1, "failed": 1, "cancelled": 1, "assigned": 1}
    assert m["total_tasks"] == sum(tasks.values())
    for s in ("pending", "assigned", "running", "completed", "failed", "cancelled"):
        assert m[f"{s}_tasks"] == tasks[s], s
    assert m["completed_tasks_today"] == 1 and m["failed_tasks_today"] == 1
    assert m["total_agents"] == sum(agents.values()) == 3
    assert m["active_agents"] == agents["active"]
    assert m["idle_agents"] == agents["idle"]
    assert m["offline_agents"] == agents["offline"] == 0
    assert m["online_agents"] == agents["idle"] + agents["active"] + agents["learning"] == 3
    assert 0.0 <= m["system_load"] <= 1.0
    assert st["status"] == "healthy"
    assert st["sequence"] == st["published_sequence"]
    last = h.get(f"/api/events?since={st['sequence'] - 1}&limit=1")["events"]
    assert [e["sequence"] for e in last] == [st["sequence"]]
