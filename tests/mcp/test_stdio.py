"""``hive mcp`` over stdio, launched by the ``mcp`` package's own stdio client the way
an assistant launches it, against a real hub with auth on and a real agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.hubproc import Hub, free_port, wait_for
from tests.mcp.support import Progress, error, gate, ok, stdio_client

Secured = tuple[Hub, Path, dict[str, str]]


async def test_submit_wait_with_progress_cancel_and_list(secured: Secured) -> None:
    hub, d, tokens = secured
    progress = Progress()
    async with stdio_client(hub.url, tokens["operator"]) as c:
        assert "wait_for_task" in {t.name for t in (await c.list_tools()).tools}
        tid = ok(await c.call_tool("submit_task", gate(d, "stdio-run", released=False)))["task_id"]
        waiting = asyncio.ensure_future(
            c.call_tool("wait_for_task", {"task_id": tid, "timeout_s": 60}, progress_callback=progress)
        )
        await asyncio.to_thread(wait_for, lambda: (d / "stdio-run.started").exists(), 20)
        # release only once the wait is following the task (its replay has begun),
        # else the task could end before the call arrives and nothing would be streamed
        await asyncio.to_thread(wait_for, lambda: progress.seen, 20)
        (d / "stdio-run.release").write_text("go")
        out = ok(await waiting)
        assert out["status"] == "completed" and out["result"]["released"] is True
        assert "progress 25%: waiting for release" in progress.messages
        assert progress.messages[-1] == "completed"

        cid = ok(await c.call_tool("submit_task", gate(d, "stdio-cancel", released=False)))["task_id"]
        await asyncio.to_thread(wait_for, lambda: (d / "stdio-cancel.started").exists(), 20)
        assert ok(await c.call_tool("cancel_task", {"task_id": cid}))["task"]["status"] == "cancelled"
        listed = ok(await c.call_tool("list_tasks", {"type": "gate", "limit": 1000}))["tasks"]
        assert {tid, cid} <= {t["id"] for t in listed}
        assert error(await c.call_tool("get_task", {}))["code"] == "invalid_input"
    wait_for(lambda: (d / "stdio-cancel.cancelled").exists(), 10, what="the handler to see the cancellation")


async def test_the_token_given_is_the_role_used(secured: Secured) -> None:
    hub, _, tokens = secured
    async with stdio_client(hub.url, tokens["viewer"]) as c:
        ok(await c.call_tool("list_tasks", {}))
        assert error(await c.call_tool("submit_task", {"type": "gate"}))["code"] == "forbidden"
    async with stdio_client(hub.url) as c:  # no token on a hub with auth on
        assert error(await c.call_tool("list_tasks", {}))["code"] == "unauthorized"


async def test_a_hub_that_is_not_there_is_hub_unreachable() -> None:
    async with stdio_client(f"http://127.0.0.1:{free_port()}") as c:
        err = error(await c.call_tool("hive_status", {}))
    assert err["code"] == "hub_unreachable" and "cannot reach the hub" in err["message"]
