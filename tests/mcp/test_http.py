"""The MCP server at ``/mcp`` (streamable HTTP, auth off), driven by the ``mcp``
package's own client against a real hub whose real agent runs the tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from hivehub.mcp.tools import TOOLS
from tests.hubproc import Hub, wait_for
from tests.mcp.support import Progress, error, gate, http_client, ok

Hive = tuple[Hub, Path]


async def test_tools_and_resource_templates_are_listed(hive: Hive) -> None:
    hub, _ = hive
    async with http_client(hub.url) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        templates = (await c.list_resource_templates()).resource_templates
    assert (
        set(tools)
        == {t.name for t in TOOLS}
        >= {
            "submit_task",
            "get_task",
            "wait_for_task",
            "cancel_task",
            "retry_task",
            "list_tasks",
            "list_agents",
            "hive_status",
            "approve_task",
            "reject_task",
            "answer_task",
            "inbox",
        }
    )
    for t in tools.values():
        assert t.description and t.input_schema["type"] == "object"
        assert t.annotations is not None
    assert tools["submit_task"].input_schema["required"] == ["type"]
    assert tools["submit_task"].annotations.read_only_hint is False
    assert tools["list_tasks"].annotations.read_only_hint is True
    assert {t.uri_template for t in templates} == {"hive://tasks/{id}", "hive://agents/{id}"}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_submit_then_wait_with_progress(hive: Hive, mode: str) -> None:
    """Both protocol eras the SDK speaks: 2026-07-28 (``auto`` picks it) and the
    initialize handshake (``legacy``, stateless streamable HTTP)."""
    hub, d = hive
    progress = Progress()
    name = f"wait-{mode}"
    async with http_client(hub.url, mode=mode) as c:
        sub = ok(await c.call_tool("submit_task", gate(d, name, released=False)))
        assert sub["status"] in ("pending", "assigned") and sub["task"]["id"] == sub["task_id"]
        waiting = asyncio.ensure_future(
            c.call_tool(
                "wait_for_task", {"task_id": sub["task_id"], "timeout_s": 60}, progress_callback=progress
            )
        )
        await asyncio.to_thread(wait_for, lambda: (d / f"{name}.started").exists(), 20)
        # release only once the wait is following the task (its replay has begun),
        # else the task could end before the call arrives and nothing would be streamed
        await asyncio.to_thread(wait_for, lambda: progress.seen, 20)
        (d / f"{name}.release").write_text("go")
        out = ok(await waiting)
    assert out["done"] is True and out["status"] == "completed"
    assert out["result"]["released"] is True and out["task"]["attempt"] == 1
    # the task's events, its handler's own report included, arrive as MCP progress
    # notifications, in order (the SDK may fold a report made just before the end
    # into the completion, so only the first one is certain)
    m = progress.messages
    assert m[-1] == "completed" and "started" in m
    assert m.index("started") < m.index("progress 25%: waiting for release") < len(m) - 1
    values = [p for p, _, _ in progress.seen]
    assert values == sorted(set(values)), "MCP progress values must increase"


async def test_wait_is_bounded_and_says_still_running(hive: Hive) -> None:
    hub, d = hive
    async with http_client(hub.url) as c:
        tid = ok(await c.call_tool("submit_task", gate(d, "bounded", released=False)))["task_id"]
        wait_for(lambda: (d / "bounded.started").exists(), 20, what="the agent to start the task")
        out = ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 0.3}))
        assert out["done"] is False and out["status"] == "running"
        assert "still running" in out["message"] and out["task"]["id"] == tid
        (d / "bounded.release").write_text("go")
        done = ok(await c.call_tool("wait_for_task", {"task_id": tid}))
    assert done["done"] is True and done["status"] == "completed"


async def test_cancel_reaches_the_agent(hive: Hive) -> None:
    hub, d = hive
    async with http_client(hub.url) as c:
        tid = ok(await c.call_tool("submit_task", gate(d, "cancel", released=False)))["task_id"]
        wait_for(lambda: (d / "cancel.started").exists(), 20, what="the agent to start the task")
        cancelled = ok(await c.call_tool("cancel_task", {"task_id": tid, "reason": "not needed"}))
        assert cancelled["task"]["status"] == "cancelled"
        out = ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 5}))
        assert out["done"] is True and out["status"] == "cancelled"
        # cancelling twice: the hub's own refusal, with its code
        again = error(await c.call_tool("cancel_task", {"task_id": tid}))
        assert again["code"] == "invalid_transition"
        # and a cancelled task can be retried
        retried = ok(await c.call_tool("retry_task", {"task_id": tid}))
        assert retried["task"]["status"] in ("pending", "assigned", "running")
        (d / "cancel.release").write_text("go")
        assert (
            ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}))["status"] == "completed"
        )
    wait_for(lambda: (d / "cancel.cancelled").exists(), 10, what="the handler to see the cancellation")


async def test_list_tasks_filters_and_pages(hive: Hive) -> None:
    hub, d = hive
    async with http_client(hub.url) as c:
        ids = set()
        for i in range(3):
            args = gate(d, f"page{i}") | {"type": "paged", "priority": "high"}
            ids.add(ok(await c.call_tool("submit_task", args))["task_id"])
        first = ok(await c.call_tool("list_tasks", {"type": "paged", "limit": 2}))
        assert len(first["tasks"]) == 2 and first["next_cursor"]
        second = ok(
            await c.call_tool("list_tasks", {"type": "paged", "limit": 2, "cursor": first["next_cursor"]})
        )
        assert len(second["tasks"]) == 1 and second["next_cursor"] is None
        assert {t["id"] for t in first["tasks"] + second["tasks"]} == ids
        assert all(t["priority"] == 3 for t in first["tasks"])
        assert ok(await c.call_tool("list_tasks", {"type": "paged", "priority": "low"}))["tasks"] == []
        for tid in ids:
            ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}))
        done = ok(await c.call_tool("list_tasks", {"type": "paged", "status": "completed", "order": "asc"}))
        assert {t["id"] for t in done["tasks"]} == ids


async def test_agents_status_inbox_and_resources(hive: Hive) -> None:
    hub, d = hive
    async with http_client(hub.url) as c:
        agents = ok(await c.call_tool("list_agents", {"capability": "mcp_gate"}))["agents"]
        assert [a["name"] for a in agents] == ["mcp-agent"]
        status = ok(await c.call_tool("hive_status", {}))
        assert "status" in status and isinstance(status["alerts"], list)
        # a task that waits for approval shows in the inbox, and approve_task lets it run
        tid = ok(await c.call_tool("submit_task", gate(d, "approve") | {"requires_approval": True}))[
            "task_id"
        ]
        inbox = ok(await c.call_tool("inbox", {}))["tasks"]
        assert [(t["task_id"], t["waits_for"]) for t in inbox] == [(tid, "approval")]
        assert (
            ok(await c.call_tool("approve_task", {"task_id": tid}))["task"]["status"] != "awaiting_approval"
        )
        assert (
            ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}))["status"] == "completed"
        )
        rid = ok(await c.call_tool("submit_task", gate(d, "reject") | {"requires_approval": True}))["task_id"]
        assert (
            ok(await c.call_tool("reject_task", {"task_id": rid, "reason": "no"}))["task"]["status"]
            == "cancelled"
        )
        # resources: one task, one agent
        task_res = await c.read_resource(f"hive://tasks/{tid}")
        agent_res = await c.read_resource(f"hive://agents/{agents[0]['id']}")
        with pytest.raises(MCPError) as missing:
            await c.read_resource("hive://tasks/no-such-task")
        with pytest.raises(MCPError) as bad:
            await c.read_resource("hive://nothing/here")
    import json

    assert json.loads(task_res.contents[0].text)["status"] == "completed"  # type: ignore[union-attr]
    assert json.loads(agent_res.contents[0].text)["name"] == "mcp-agent"  # type: ignore[union-attr]
    assert missing.value.data["code"] == "task_not_found"
    assert bad.value.data["code"] == "invalid_input"


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("get_task", {}, "invalid_input", "'task_id' is a required property"),
    ("get_task", {"task_id": 7}, "invalid_input", "task_id"),
    ("get_task", {"task_id": "x", "extra": 1}, "invalid_input", "extra"),
    ("wait_for_task", {"task_id": "x", "timeout_s": 301}, "invalid_input", "timeout_s"),
    ("wait_for_task", {"task_id": "x", "timeout_s": 0}, "invalid_input", "timeout_s"),
    ("submit_task", {"type": ""}, "invalid_input", "type"),
    ("submit_task", {"type": "t", "priority": "urgent"}, "invalid_input", "priority"),
    (
        "submit_task",
        {"type": "t", "required_capabilities": {"nlp": 2}},
        "invalid_input",
        "required_capabilities",
    ),
    ("list_tasks", {"status": "sleeping"}, "invalid_input", "status"),
    ("list_tasks", {"limit": 0}, "invalid_input", "limit"),
    ("list_tasks", {"cursor": "garbage"}, "invalid_input", ""),  # the hub's own check of a cursor
    ("answer_task", {"task_id": "x"}, "invalid_input", "answer"),
    ("get_task", {"task_id": "no-such-task"}, "task_not_found", "no-such-task"),
    ("wait_for_task", {"task_id": "no-such-task"}, "task_not_found", "no-such-task"),
    ("approve_task", {"task_id": "no-such-task"}, "task_not_found", ""),
    ("no_such_tool", {}, "unknown_tool", "no_such_tool"),
]


@pytest.mark.parametrize(
    ("tool", "args", "code", "says"), BAD, ids=[f"{b[0]}-{b[2]}-{i}" for i, b in enumerate(BAD)]
)
async def test_bad_calls_answer_a_tool_error_with_a_stable_code(
    hive: Hive, tool: str, args: dict[str, Any], code: str, says: str
) -> None:
    hub, _ = hive
    async with http_client(hub.url) as c:
        err = error(await c.call_tool(tool, args))
    assert err["code"] == code, err
    assert says in err["message"], err


async def test_concurrent_waits(hive: Hive) -> None:
    """Several waits at once on one connection, each answered with its own task."""
    hub, d = hive
    async with http_client(hub.url) as c:
        ids = [ok(await c.call_tool("submit_task", gate(d, f"conc{i}")))["task_id"] for i in range(4)]
        outs = await asyncio.gather(
            *(c.call_tool("wait_for_task", {"task_id": t, "timeout_s": 60}) for t in ids)
        )
    assert [ok(o)["task"]["id"] for o in outs] == ids
    assert all(ok(o)["status"] == "completed" for o in outs)


async def test_a_question_shows_in_the_inbox_and_answer_task_answers_it(hive: Hive) -> None:
    hub, _ = hive
    ask = {"ask": "deploy to production?", "choices": ["yes", "no"]}
    async with http_client(hub.url) as c:
        args = {"type": "gate", "required_capabilities": {"mcp_gate": 0.5}, "input": ask}
        tid = ok(await c.call_tool("submit_task", args))["task_id"]

        async def asked() -> dict[str, Any]:
            while True:
                waiting = [t for t in ok(await c.call_tool("inbox", {}))["tasks"] if t["task_id"] == tid]
                if waiting:
                    return waiting[0]
                await asyncio.sleep(0.05)

        entry = await asyncio.wait_for(asked(), 20)
        assert entry["waits_for"] == "input" and entry["question"]["question"] == ask["ask"]
        assert entry["question"]["choices"] == ["yes", "no"]
        # an answer that is none of the choices: the hub's own refusal
        assert (
            error(await c.call_tool("answer_task", {"task_id": tid, "answer": "maybe"}))["code"]
            == "invalid_input"
        )
        ok(await c.call_tool("answer_task", {"task_id": tid, "answer": "no"}))
        out = ok(await c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}))
    assert out["status"] == "completed" and out["result"] == {"answer": "no"}
