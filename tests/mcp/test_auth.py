"""The hub's tokens and roles at ``/mcp``: opening it needs a token once auth is on;
each tool then acts with the caller's own token, so a viewer reads and is refused
every write tool with the hub's ``forbidden``, and an operator runs tasks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from tests.hubproc import Hub, wait_for
from tests.mcp.support import error, gate, http_client, ok

Secured = tuple[Hub, Path, dict[str, str]]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_no_valid_token_cannot_open_mcp(secured: Secured, token: str | None) -> None:
    hub, _, _ = secured
    with pytest.raises(BaseException) as refused:  # noqa: B017 - the SDK wraps it in task groups
        async with http_client(hub.url, token) as c:
            await c.list_tools()
    assert any(isinstance(e, MCPError) for e in _leaves(refused.value)), refused.value
    # what the SDK client was answered: the hub's own 401 and error body
    status, body = hub.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert status == 401 and body["error"]["code"] == "unauthorized"


WRITES: list[tuple[str, dict[str, Any]]] = [
    ("submit_task", {"type": "gate"}),
    ("cancel_task", {"task_id": "{tid}"}),
    ("retry_task", {"task_id": "{tid}"}),
    ("approve_task", {"task_id": "{tid}"}),
    ("reject_task", {"task_id": "{tid}"}),
    ("answer_task", {"task_id": "{tid}", "answer": "yes"}),
]


async def test_viewer_reads_and_is_refused_every_write_tool(secured: Secured) -> None:
    hub, d, tokens = secured
    async with http_client(hub.url, tokens["operator"]) as op:
        tid = ok(await op.call_tool("submit_task", gate(d, "viewer-sees", released=False)))["task_id"]
    async with http_client(hub.url, tokens["viewer"]) as viewer:
        assert ok(await viewer.call_tool("get_task", {"task_id": tid}))["task"]["id"] == tid
        assert tid in {t["id"] for t in ok(await viewer.call_tool("list_tasks", {}))["tasks"]}
        assert ok(await viewer.call_tool("list_agents", {}))["agents"]
        ok(await viewer.call_tool("hive_status", {}))
        ok(await viewer.call_tool("inbox", {}))
        assert (await viewer.read_resource(f"hive://tasks/{tid}")).contents
        for tool, args in WRITES:
            args = {k: (v.format(tid=tid) if isinstance(v, str) else v) for k, v in args.items()}
            err = error(await viewer.call_tool(tool, args))
            assert err["code"] == "forbidden", (tool, err)
            assert err["details"]["needs_role"] == "operator" and "operator role" in err["message"], err
    # the viewer changed nothing: the task still waits for its release
    async with http_client(hub.url, tokens["operator"]) as op:
        assert ok(await op.call_tool("get_task", {"task_id": tid}))["task"]["status"] in (
            "assigned",
            "running",
        )
        (d / "viewer-sees.release").write_text("go")
        assert (
            ok(await op.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}))["status"]
            == "completed"
        )


async def test_operator_submits_waits_and_cancels(secured: Secured) -> None:
    hub, d, tokens = secured
    async with http_client(hub.url, tokens["operator"]) as op:
        sub = ok(await op.call_tool("submit_task", gate(d, "op-run")))
        assert sub["task"]["created_by"] != "admin:anonymous"  # the caller's identity, not the hub's
        assert ok(await op.call_tool("wait_for_task", {"task_id": sub["task_id"]}))["status"] == "completed"
        tid = ok(await op.call_tool("submit_task", gate(d, "op-cancel", released=False)))["task_id"]
        await asyncio.to_thread(wait_for, lambda: (d / "op-cancel.started").exists(), 20)
        assert ok(await op.call_tool("cancel_task", {"task_id": tid}))["task"]["status"] == "cancelled"
