"""HiveClient REST round trips and typed errors against a real hub process."""

from __future__ import annotations

import pytest

from hivehub.client import (
    AgentNotFound,
    DependencyNotFound,
    HiveClient,
    HiveError,
    HubUnreachable,
    InvalidInput,
    InvalidTransition,
    NotFound,
    TaskNotFound,
)
from hivehub.client.errors import from_error_body
from hivehub.core import errors as core_errors
from tests.hubproc import Hub, free_port


async def test_hub_info(hub: Hub) -> None:
    async with HiveClient(hub.ws_url + "/ws") as c:  # any form of the address works
        assert c.url == hub.url
        health = await c.health()
        assert health["status"] in ("healthy", "degraded", "unhealthy")
        st = await c.status()
        assert isinstance(st["published_sequence"], int) and "metrics" in st
        assert (await c.api_info())["endpoints"]["stream"] == "/ws"
        assert "/api/tasks" in (await c.openapi())["paths"]
        assert "modules" in await c.modules()
        assert isinstance(await c.alerts(), list)


async def test_agents_round_trip(hub: Hub, uid) -> None:
    cap = uid("cap")
    async with HiveClient(hub.url) as c:
        made = [
            await c.register_agent(
                f"w{i}", type="specialist", capabilities={cap: 0.5 + i / 10}, max_concurrent_tasks=2
            )
            for i in range(5)
        ]
        assert made[0]["capabilities"] == [
            {"name": cap, "proficiency": 0.5, "learning_rate": 0.1, "declared_proficiency": 0.5}
        ]
        # pages of 2, walked through next_cursor, in registration order
        listed = [a async for a in c.list_agents(capability=cap, page_size=2)]
        assert [a["id"] for a in listed] == [a["id"] for a in made]
        assert len(await c.agents(capability=cap, limit=3, page_size=2)) == 3
        assert {a["id"] for a in await c.agents(capability=cap, type="specialist")} == {a["id"] for a in made}
        one = await c.get_agent(made[0]["id"])
        assert one["name"] == "w0"
        changed = await c.update_agent(
            made[0]["id"], name="renamed", capabilities=[f"{cap}:0.95"], max_concurrent_tasks=3
        )
        assert (changed["name"], changed["max_concurrent_tasks"]) == ("renamed", 3)
        assert changed["capabilities"][0]["proficiency"] == 0.95
        removed = await c.remove_agent(made[0]["id"])
        assert removed["agent_id"] == made[0]["id"] and "cleanup_summary" in removed
        with pytest.raises(AgentNotFound) as ei:
            await c.get_agent(made[0]["id"])
        assert ei.value.status == 404 and ei.value.code == "agent_not_found"
        # registering again with a known id updates that agent (a restarted pull agent)
        again = await c.register_agent("w1-again", id=made[1]["id"], capabilities={cap: 0.8})
        assert (again["id"], again["name"]) == (made[1]["id"], "w1-again")
        assert (await c.get_agent(made[1]["id"]))["name"] == "w1-again"
        reset = await c.reset_learning(made[1]["id"])
        assert reset["capabilities"][0]["proficiency"] == reset["capabilities"][0]["declared_proficiency"]


async def test_tasks_round_trip(hub: Hub, uid) -> None:
    typ = uid("type")
    async with HiveClient(hub.url) as c:
        t = await c.submit_task(
            type=typ,
            description="d",
            priority="high",
            required_capabilities={uid("nobody"): 0.5},
            input={"n": 1},
            timeout_seconds=30,
            max_retries=1,
        )
        assert (t["type"], t["priority"], t["status"], t["input"]) == (typ, 3, "pending", {"n": 1})
        assert (await c.get_task(t["id"]))["id"] == t["id"]
        batch = await c.submit_tasks(
            [
                {"type": typ, "id": uid("b1"), "required_capabilities": {uid("nobody"): 0.1}},
                {"type": typ, "id": uid("b2"), "depends_on": [uid("b1")], "priority": 4},
            ]
        )
        assert [b["id"] for b in batch] == [uid("b1"), uid("b2")]
        listed = await c.tasks(type=typ)
        assert [x["id"] for x in listed] == [uid("b2"), uid("b1"), t["id"]]  # newest first
        assert [x["id"] for x in await c.tasks(type=typ, order="asc", page_size=1)] == [
            t["id"],
            uid("b1"),
            uid("b2"),
        ]
        assert [x["id"] for x in await c.tasks(type=typ, priority="critical")] == [uid("b2")]
        assert len(await c.tasks(type=typ, limit=2)) == 2
        cancelled = await c.cancel_task(t["id"], reason="not needed")
        assert cancelled["status"] == "cancelled"
        assert [x["id"] for x in await c.tasks(type=typ, status="cancelled")] == [t["id"]]
        again = await c.retry_task(t["id"])
        assert again["status"] == "pending"


async def test_typed_errors(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c:
        with pytest.raises(TaskNotFound) as nf:
            await c.get_task("no-such-task")
        e = nf.value
        assert type(e) is core_errors.TaskNotFound and isinstance(e, NotFound) and isinstance(e, HiveError)
        assert (e.status, e.code, e.details) == (404, "task_not_found", {"task_id": "no-such-task"})
        assert "no-such-task" in e.message

        t = await c.submit_task(type=uid("t"), required_capabilities={uid("nobody"): 1})
        await c.cancel_task(t["id"])
        with pytest.raises(InvalidTransition) as it:
            await c.cancel_task(t["id"])
        assert (it.value.status, it.value.code) == (409, "invalid_transition")

        with pytest.raises(InvalidInput) as ii:
            await c.submit_task(type="x", priority="urgent")
        assert (ii.value.status, ii.value.code) == (422, "invalid_input")
        with pytest.raises(DependencyNotFound) as dn:
            await c.submit_task(type="x", depends_on=["missing-dependency"])
        assert (dn.value.status, dn.value.details) == (422, {"dependency": "missing-dependency"})
        with pytest.raises(InvalidInput) as bad_types:
            await c.events(types="no_such_event")
        assert bad_types.value.status == 422
        # a code the core does not define still gets a useful class and the exact code
        with pytest.raises(InvalidInput) as mj:
            await _malformed(c)
        assert (mj.value.code, mj.value.status) == ("malformed_json", 400)


async def _malformed(c: HiveClient) -> None:
    """The client never sends malformed JSON itself: post raw bytes, map the answer."""
    async with c._http().post(
        c.url + "/api/tasks", data=b"{oops", headers={"Content-Type": "application/json"}
    ) as r:
        body = await r.json()
    raise from_error_body(body, r.status)


async def test_events_catch_up(hub: Hub, uid) -> None:
    async with HiveClient(hub.url) as c:
        t = await c.submit_task(type=uid("ev"), required_capabilities={uid("nobody"): 1})
        for _ in range(4):  # at least five events, whatever else the hub logged
            await c.submit_task(type=uid("ev"))
        page = await c.events(since=0, limit=5)
        assert [e["sequence"] for e in page["events"]] == list(range(1, 6))
        assert page["next_since"] == 5
        everything = [e async for e in c.iter_events(0)]
        seqs = [e["sequence"] for e in everything]
        assert seqs == list(range(1, len(seqs) + 1))
        created = [e async for e in c.iter_events(0, types=["task_created"])]
        assert t["id"] in [e["data"]["task"]["id"] for e in created]


async def test_unreachable() -> None:
    port = free_port()
    async with HiveClient(f"http://127.0.0.1:{port}", timeout=5) as c:
        with pytest.raises(HubUnreachable) as ei:
            await c.status()
        assert ei.value.code == "hub_unreachable" and ei.value.status is None
        assert isinstance(ei.value, HiveError)
        # the stream gives up after max_attempts consecutive failures
        s = c.stream(backoff_base=0.01, backoff_cap=0.02, max_attempts=3)
        with pytest.raises(HubUnreachable):
            await s.next(10)
        assert s.connects == 0
