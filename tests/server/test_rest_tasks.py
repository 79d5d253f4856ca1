"""REST: tasks (submit, batch, list, get, cancel, retry), the event log over HTTP,
and the error answers every JSON body shares (malformed, wrong media type, too
large, too deep, invalid)."""

from __future__ import annotations

import asyncio

import pytest

from .conftest import HiveConfig, Hub, HubFactory, increasing, recv_until

JSON = {"Content-Type": "application/json"}


def types_of(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


# ------------------------------------------------------------------ submit


async def test_submit_answers_201_with_the_task_and_logs_task_created(hub: Hub) -> None:
    r = await hub.post(
        "/api/tasks",
        {
            "id": "t1",
            "description": "sum",
            "type": "math",
            "priority": "high",
            "input": {"x": [1, 2]},
            "max_retries": 1,
        },
    )
    assert r.status == 201, r
    t = r.body
    assert (t["id"], t["description"], t["type"], t["priority"], t["status"]) == (
        "t1",
        "sum",
        "math",
        3,
        "pending",
    )
    assert t["input"] == {"x": [1, 2]} and t["max_retries"] == 1 and t["attempt"] == 0
    got = await hub.get("/api/tasks/t1")
    assert got.status == 200 and got.body == t
    events = await hub.events()
    assert types_of(events) == ["task_created"]
    assert events[0]["data"]["task"]["id"] == "t1"
    assert t["created_sequence"] == events[0]["sequence"] >= 1


async def test_submit_without_id_gets_a_fresh_id_and_an_empty_body_means_defaults(hub: Hub) -> None:
    r = await hub.request("POST", "/api/tasks", data=b"", headers=JSON)
    assert r.status == 201, r
    assert (
        r.body["id"]
        and r.body["type"] == "general"
        and r.body["priority"] == 2
        and r.body["max_retries"] == 3
    )
    r2 = await hub.post("/api/tasks", {})
    assert r2.status == 201 and r2.body["id"] != r.body["id"]


async def test_an_integral_float_is_accepted_where_an_integer_is_expected(hub: Hub) -> None:
    r = await hub.post("/api/tasks", {"max_retries": 2.0, "priority": 4.0})
    assert r.status == 201, r
    assert r.body["max_retries"] == 2 and r.body["priority"] == 4
    bad = await hub.post("/api/tasks", {"max_retries": 2.5})
    assert (bad.status, bad.code) == (422, "invalid_input")


async def test_submit_with_a_taken_id_is_409_task_exists_and_changes_nothing(hub: Hub) -> None:
    await hub.submit(id="t1", description="first")
    r = await hub.post("/api/tasks", {"id": "t1", "description": "second"})
    assert (r.status, r.code) == (409, "task_exists")
    assert r.body["error"]["details"] == {"task_id": "t1"}
    assert (await hub.get("/api/tasks/t1")).body["description"] == "first"
    assert types_of(await hub.events()) == ["task_created"]


async def test_concurrent_submits_of_one_id_create_it_once(hub: Hub) -> None:
    replies = await asyncio.gather(
        *(hub.post("/api/tasks", {"id": "same", "description": str(i)}) for i in range(5))
    )
    assert sorted(r.status for r in replies) == [201, 409, 409, 409, 409], replies
    assert {r.code for r in replies if r.status == 409} == {"task_exists"}
    winner = next(r for r in replies if r.status == 201)
    assert (await hub.get("/api/tasks/same")).body["description"] == winner.body["description"]
    assert types_of(await hub.events()) == ["task_created"]


async def test_submit_with_an_unknown_dependency_is_422_dependency_not_found(hub: Hub) -> None:
    r = await hub.post("/api/tasks", {"id": "t2", "depends_on": ["nope"]})
    assert (r.status, r.code) == (422, "dependency_not_found")
    assert (await hub.get("/api/tasks/t2")).status == 404
    assert await hub.events() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": 9}, "priority"),
        ({"priority": "urgent"}, "priority"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_retries": -1}, "max_retries"),
        ({"type": ""}, "type"),
        ({"required_capabilities": [{"name": "x", "min_proficiency": 2}]}, "min_proficiency"),
        ({"bogus": 1}, "bogus"),
        ({"description": 7}, "description"),
    ],
)
async def test_an_invalid_task_spec_is_422_invalid_input_naming_the_field(
    hub: Hub, body: dict, field: str
) -> None:
    r = await hub.post("/api/tasks", body)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert field in r.body["error"]["message"]
    assert await hub.events() == []


@pytest.mark.parametrize("raw", [b"{bad", b'{"a": 1', b"\xff\xfe{}", b'{"description": "\xff"}'])
async def test_malformed_json_or_not_utf8_is_400_malformed_json(hub: Hub, raw: bytes) -> None:
    r = await hub.request("POST", "/api/tasks", data=raw, headers=JSON)
    assert (r.status, r.code) == (400, "malformed_json"), r
    assert set(r.body["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"3", b"null"])
async def test_a_body_that_is_not_an_object_is_422(hub: Hub, body: bytes) -> None:
    r = await hub.request("POST", "/api/tasks", data=body, headers=JSON)
    assert (r.status, r.code) == (422, "invalid_input"), r


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
async def test_a_body_not_sent_as_json_is_415_unsupported_media_type(hub: Hub, ctype: str) -> None:
    r = await hub.request("POST", "/api/tasks", data=b'{"id": "t1"}', headers={"Content-Type": ctype})
    assert (r.status, r.code) == (415, "unsupported_media_type"), r
    assert r.body["error"]["details"]["content_type"] == ctype
    assert (await hub.get("/api/tasks/t1")).status == 404


async def test_a_json_suffix_media_type_is_accepted(hub: Hub) -> None:
    r = await hub.request(
        "POST", "/api/tasks", data=b'{"id": "t1"}', headers={"Content-Type": "application/merge-patch+json"}
    )
    assert r.status == 201, r


async def test_a_body_over_max_body_bytes_is_413_payload_too_large(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", max_body_bytes=2048)
    r = await hub.post("/api/tasks", {"description": "x" * 4000})
    assert (r.status, r.code) == (413, "payload_too_large"), r
    assert r.body["error"]["details"] == {"limit": 2048}
    ok = await hub.post("/api/tasks", {"description": "x" * 1000})
    assert ok.status == 201


async def test_json_nested_deeper_than_the_limit_is_413(hub: Hub) -> None:
    deep = b'{"input": ' + b"[" * 70 + b"]" * 70 + b"}"
    r = await hub.request("POST", "/api/tasks", data=deep, headers=JSON)
    assert (r.status, r.code) == (413, "payload_too_large"), r
    assert r.body["error"]["details"] == {"max_depth": 64}
    very_deep = b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = await hub.request("POST", "/api/tasks", data=very_deep, headers=JSON)
    assert (r.status, r.code) == (413, "payload_too_large"), r
    shallow = b'{"input": ' + b"[" * 60 + b"]" * 60 + b"}"
    assert (await hub.request("POST", "/api/tasks", data=shallow, headers=JSON)).status == 201


async def test_a_store_that_cannot_write_answers_503_and_nothing_is_accepted(hub: Hub) -> None:
    await hub.submit(id="t1")
    alerts = await hub.ws(params={"types": "system_alert"})
    hub.store.fail_writes = True
    r = await hub.post("/api/tasks", {"id": "t2"})
    assert (r.status, r.code) == (503, "store_unavailable"), r
    health = await hub.get("/health")
    assert health.body["modules"]["persistence"]["status"] == "degraded"
    # reads keep working while writes fail
    assert (await hub.get("/api/tasks/t1")).status == 200
    hub.store.fail_writes = False
    # the hub notices the store is back (and logs the outage) on its own
    cleared, _ = await recv_until(alerts, lambda m: m["data"].get("state") == "cleared")
    assert cleared["data"]["alert_key"] == "store_unavailable"
    # nothing unlogged is visible: t2 was not created, and the id is still free
    assert (await hub.get("/api/tasks/t2")).status == 404
    assert [t["id"] for t in (await hub.get("/api/tasks")).body["tasks"]] == ["t1"]
    assert (await hub.post("/api/tasks", {"id": "t2"})).status == 201
    assert types_of(await hub.events()) == ["task_created", "task_created"]


# ------------------------------------------------------------------ batch


async def test_batch_creates_every_task_in_order_with_dependencies_inside_the_batch(hub: Hub) -> None:
    r = await hub.post(
        "/api/tasks/batch", {"tasks": [{"id": "a"}, {"id": "b", "depends_on": ["a"]}, {"description": "c"}]}
    )
    assert r.status == 201, r
    tasks = r.body["tasks"]
    assert [t["id"] for t in tasks[:2]] == ["a", "b"] and tasks[2]["description"] == "c"
    assert tasks[1]["depends_on"] == ["a"]
    events = await hub.events()
    assert types_of(events) == ["task_created"] * 3
    assert increasing([e["sequence"] for e in events])
    assert [e["data"]["task"]["id"] for e in events[:2]] == ["a", "b"]


@pytest.mark.parametrize(
    ("tasks", "status", "code"),
    [
        ([{"id": "x"}, {"id": "x"}], 422, "invalid_input"),
        ([{"id": "x"}, {"id": "y", "depends_on": ["nope"]}], 422, "dependency_not_found"),
        ([{"id": "x"}, {"id": "taken"}], 409, "task_exists"),
        ([{"id": "x"}, {"priority": 0}], 422, "invalid_input"),
        ([], 422, "invalid_input"),
    ],
)
async def test_a_bad_batch_is_refused_whole(hub: Hub, tasks: list, status: int, code: str) -> None:
    await hub.submit(id="taken")
    r = await hub.post("/api/tasks/batch", {"tasks": tasks})
    assert (r.status, r.code) == (status, code), r
    assert (await hub.get("/api/tasks/x")).status == 404
    assert types_of(await hub.events()) == ["task_created"]


async def test_batch_over_1000_tasks_is_422(hub_factory: HubFactory) -> None:
    hub = await hub_factory(db="memory", max_body_bytes=1 << 20)
    r = await hub.post("/api/tasks/batch", {"tasks": [{} for _ in range(1001)]})
    assert (r.status, r.code) == (422, "invalid_input"), r


# ------------------------------------------------------------------ list and get


async def test_list_is_newest_first_and_filters_by_status_type_and_priority(hub: Hub) -> None:
    await hub.submit(id="t1", type="a", priority=1)
    await hub.submit(id="t2", type="b", priority="critical")
    await hub.submit(id="t3", type="a", priority=3)
    await hub.post("/api/tasks/t3/cancel", {})

    async def ids(query: str) -> list[str]:
        r = await hub.get("/api/tasks" + query)
        assert r.status == 200, r
        return [t["id"] for t in r.body["tasks"]]

    assert await ids("") == ["t3", "t2", "t1"]
    assert await ids("?order=asc") == ["t1", "t2", "t3"]
    assert await ids("?type=a") == ["t3", "t1"]
    assert await ids("?status=cancelled") == ["t3"]
    assert await ids("?status=pending&type=a") == ["t1"]
    assert await ids("?priority=4") == ["t2"]
    assert await ids("?priority=low") == ["t1"]
    assert await ids("?agent_id=nobody") == []


async def test_list_pages_with_next_cursor_until_it_is_null(hub: Hub) -> None:
    for i in range(5):
        await hub.submit(id=f"t{i}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        r = await hub.get(
            "/api/tasks", params={"limit": "2", "order": "asc", **({"cursor": cursor} if cursor else {})}
        )
        assert r.status == 200, r
        seen += [t["id"] for t in r.body["tasks"]]
        cursor = r.body["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == [f"t{i}" for i in range(5)] and pages == 3


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=x",
        "status=bogus",
        "order=up",
        "priority=9",
        "priority=urgent",
        "cursor=bm9wZQ",
    ],
)
async def test_list_with_a_bad_query_parameter_is_422(hub: Hub, query: str) -> None:
    await hub.submit(id="t1")
    r = await hub.get("/api/tasks?" + query)
    assert (r.status, r.code) == (422, "invalid_input"), r


async def test_get_an_unknown_task_is_404_task_not_found(hub: Hub) -> None:
    r = await hub.get("/api/tasks/nope")
    assert (r.status, r.code) == (404, "task_not_found")
    assert r.body["error"]["details"] == {"task_id": "nope"}


async def test_a_task_id_with_a_slash_is_one_path_segment(hub: Hub) -> None:
    await hub.submit(id="a/b")
    r = await hub.get("/api/tasks/a%2Fb")
    assert r.status == 200 and r.body["id"] == "a/b"


async def test_a_finished_task_evicted_from_memory_is_still_read_from_the_log(
    hub_factory: HubFactory,
) -> None:
    hub = await hub_factory(db="memory", hive=HiveConfig(retain_finished=1))
    await hub.submit(id="old", description="kept in the log")
    await hub.post("/api/tasks/old/cancel", {"reason": "r1"})
    await hub.submit(id="new")
    await hub.post("/api/tasks/new/cancel", {})
    listed = [t["id"] for t in (await hub.get("/api/tasks")).body["tasks"]]
    assert listed == ["new"]
    r = await hub.get("/api/tasks/old")
    assert r.status == 200, r
    assert (r.body["status"], r.body["description"]) == ("cancelled", "kept in the log")
    retried = await hub.post("/api/tasks/old/retry", {})
    assert (retried.status, retried.code) == (409, "task_evicted"), retried


# ------------------------------------------------------------------ cancel and retry


async def test_cancel_a_pending_task_then_retry_it(hub: Hub) -> None:
    await hub.submit(id="t1")
    r = await hub.post("/api/tasks/t1/cancel", {"reason": "not needed", "cancelled_by": "ops"})
    assert r.status == 200, r
    assert (r.body["status"], r.body["cancelled_by"]) == ("cancelled", "ops")
    again = await hub.post("/api/tasks/t1/cancel", {})
    assert (again.status, again.code) == (409, "invalid_transition")
    r = await hub.post("/api/tasks/t1/retry", {"requested_by": "ops"})
    assert r.status == 200 and r.body["status"] == "pending"
    events = await hub.events()
    assert types_of(events) == ["task_created", "task_cancelled", "task_retried"]
    assert events[1]["data"]["reason"] == "not needed"
    assert increasing([e["sequence"] for e in events])


async def test_cancel_with_an_empty_body_uses_the_default_reason(hub: Hub) -> None:
    await hub.submit(id="t1")
    r = await hub.request("POST", "/api/tasks/t1/cancel")
    assert r.status == 200 and r.body["status"] == "cancelled"
    (e,) = await hub.events(types="task_cancelled")
    assert e["data"]["reason"] == "manual_cancellation"


async def test_retry_of_a_pending_task_is_409_invalid_transition(hub: Hub) -> None:
    await hub.submit(id="t1")
    r = await hub.post("/api/tasks/t1/retry", {})
    assert (r.status, r.code) == (409, "invalid_transition")


@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_cancel_or_retry_an_unknown_task_is_404(hub: Hub, action: str) -> None:
    r = await hub.post(f"/api/tasks/nope/{action}", {})
    assert (r.status, r.code) == (404, "task_not_found")


async def test_cancel_with_an_unknown_field_or_an_overlong_reason_is_422(hub: Hub) -> None:
    await hub.submit(id="t1")
    assert (await hub.post("/api/tasks/t1/cancel", {"why": "x"})).code == "invalid_input"
    r = await hub.post("/api/tasks/t1/cancel", {"reason": "x" * 1001})
    assert (r.status, r.code) == (422, "invalid_input")
    assert (await hub.get("/api/tasks/t1")).body["status"] == "pending"


# ------------------------------------------------------------------ events over HTTP


async def test_events_since_types_and_limit(hub: Hub) -> None:
    for i in range(4):
        await hub.submit(id=f"t{i}")
    await hub.post("/api/tasks/t0/cancel", {})
    every = [e["sequence"] for e in await hub.events(everything=True)]
    assert len(every) >= 5 and increasing(every)
    r = await hub.get("/api/events", params={"since": str(every[1]), "limit": "2"})
    assert r.status == 200, r
    assert [e["sequence"] for e in r.body["events"]] == every[2:4]
    assert r.body["next_since"] == every[3]
    rest = await hub.get("/api/events", params={"since": str(r.body["next_since"])})
    assert [e["sequence"] for e in rest.body["events"]] == every[4:]
    assert rest.body["next_since"] == every[-1]
    cancelled = await hub.events(types="task_cancelled")
    assert [(e["type"], e["data"]["task_id"]) for e in cancelled] == [("task_cancelled", "t0")]
    head = await hub.get("/api/events", params={"since": str(every[-1])})
    assert head.body == {"events": [], "next_since": every[-1]}


async def test_every_event_has_the_envelope_fields(hub: Hub) -> None:
    await hub.submit(id="t1")
    (e,) = await hub.events()
    assert set(e) >= {"type", "data", "timestamp", "message_id", "sequence"}
    assert e["data"]["caused_by"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("since=99", 400, "cursor_out_of_range"),
        ("since=-1", 422, "invalid_input"),
        ("since=abc", 422, "invalid_input"),
        ("types=bogus", 422, "invalid_input"),
        ("limit=0", 422, "invalid_input"),
        ("limit=10001", 422, "invalid_input"),
    ],
)
async def test_events_with_a_bad_query_is_refused(hub: Hub, query: str, status: int, code: str) -> None:
    await hub.submit(id="t1")
    head = await hub.head()
    r = await hub.get("/api/events?" + query)
    assert (r.status, r.code) == (status, code), r
    if code == "cursor_out_of_range":
        assert r.body["error"]["details"]["since"] == 99 and head <= r.body["error"]["details"]["head"] < 99


# ------------------------------------------------------------------ routing


async def test_an_unknown_path_is_404_not_found_in_the_error_shape(hub: Hub) -> None:
    r = await hub.get("/api/nothing")
    assert (r.status, r.code) == (404, "not_found")
    assert set(r.body["error"]) == {"code", "message", "details"}


async def test_a_wrong_method_is_405_naming_the_allowed_ones(hub: Hub) -> None:
    r = await hub.delete("/api/tasks")
    assert (r.status, r.code) == (405, "method_not_allowed")
    assert set(r.headers["Allow"].split(",")) == {"GET", "POST"}


# ------------------------------------------------------------------ traceability


async def test_events_name_the_request_that_caused_them(hub: Hub) -> None:
    r = await hub.post(
        "/api/tasks", {"id": "t1"}, headers={"Content-Type": "application/json", "X-Request-Id": "req-42"}
    )
    assert r.status == 201
    r = await hub.post(
        "/api/tasks/batch",
        {"tasks": [{"id": "b1"}, {"id": "b2"}]},
        headers={"Content-Type": "application/json", "X-Request-Id": "batch-7"},
    )
    assert r.status == 201
    assert [e["data"]["caused_by"] for e in await hub.events()] == ["req-42", "batch-7#0", "batch-7#1"]


# ------------------------------------------------------------------ known defects


async def test_a_unicode_digit_priority_is_422_not_a_server_error(hub: Hub) -> None:
    r = await hub.get("/api/tasks", params={"priority": "\u00b2"})
    assert (r.status, r.code) == (422, "invalid_input"), r


async def test_a_batch_with_a_forward_dependency_is_all_or_nothing(hub: Hub) -> None:
    r = await hub.post(
        "/api/tasks/batch", {"tasks": [{"id": "x"}, {"id": "a", "depends_on": ["b"]}, {"id": "b"}]}
    )
    found = [(await hub.get(f"/api/tasks/{t}")).status for t in ("x", "a", "b")]
    if r.status == 201:  # a fix may accept a dependency on a later entry: then every entry exists
        assert found == [200, 200, 200], r
    else:  # or refuse the whole batch: then none does
        assert found == [404, 404, 404], r
        assert await hub.events() == []


# ------------------------------------------------------------------ every JSON body, every route

BODY_ROUTES = [
    ("POST", "/api/tasks"),
    ("POST", "/api/tasks/batch"),
    ("POST", "/api/tasks/t1/cancel"),
    ("POST", "/api/tasks/t1/retry"),
    ("POST", "/api/tasks/t1/start"),
    ("POST", "/api/tasks/t1/progress"),
    ("POST", "/api/tasks/t1/complete"),
    ("POST", "/api/tasks/t1/fail"),
    ("POST", "/api/tasks/t1/release"),
    ("POST", "/api/agents"),
    ("PATCH", "/api/agents/a1"),
    ("POST", "/api/agents/a1/reset-learning"),
    ("PATCH", "/api/resources"),
]


@pytest.fixture
async def populated(hub: Hub) -> Hub:
    await hub.register("w1", ["code"], id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    return hub


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
@pytest.mark.parametrize(
    ("body", "ctype", "status", "code"),
    [
        (b'{"oops', "application/json", 400, "malformed_json"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
        (b'{"x": ' + b"[" * 70 + b"]" * 70 + b"}", "application/json", 413, "payload_too_large"),
        (b'{"no_such_field": 1}', "application/json", 422, "invalid_input"),
    ],
    ids=["malformed", "media-type", "too-deep", "unknown-field"],
)
async def test_every_json_body_route_refuses_bad_bodies_with_the_same_codes(
    populated: Hub, method: str, path: str, body: bytes, ctype: str, status: int, code: str
) -> None:
    hub = populated
    before = await hub.events(everything=True)
    r = await hub.request(method, path, data=body, headers={"Content-Type": ctype})
    assert (r.status, r.code) == (status, code), r
    after = await hub.events(everything=True)
    assert [e for e in after if e["type"].startswith(("task_", "agent_"))] == [
        e for e in before if e["type"].startswith(("task_", "agent_"))
    ]


@pytest.mark.parametrize(
    ("frame", "route_body", "fields"),
    [
        ("task_started", "AgentReport", {}),
        ("task_progress", "ProgressReport", {"progress": 0.5, "current_step": "s"}),
        ("task_completed", "CompleteReport", {"result": {"x": 1}, "quality": 0.9}),
        ("task_failed", "FailReport", {"error": {"code": "E", "message": "m"}, "retryable": False}),
        ("task_failed", "FailReport", {}),
        ("task_released", "ReleaseReport", {}),
        ("task_released", "ReleaseReport", {"reason": "draining"}),
    ],
)
def test_a_rest_report_is_the_same_command_as_its_agent_frame(
    frame: str, route_body: str, fields: dict[str, object]
) -> None:
    import msgspec

    from hivehub.protocol import codec, messages

    ws = codec.agent_command("a1", frame, {"task_id": "t1", "attempt": 2, **fields}, "m1")
    body = msgspec.convert({"agent_id": "a1", "attempt": 2, **fields}, getattr(messages, route_body))
    rest = codec.report_command(body, rid="agent:a1:m1", task_id="t1", agent_id="a1")
    assert rest == ws
