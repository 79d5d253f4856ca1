"""MCP (and the A2A card) under a namespace (``/ns/NAME/mcp``): its tools call that namespace's API
(``asgi.loopback_url`` keeps the prefix), so they see and change that hive only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import Hub
from tests.mcp.support import http_client, ok


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hive.db", "--namespace", "a").start()
    try:
        yield h
    finally:
        h.stop()


async def test_the_tools_of_a_namespace_act_on_that_namespace(hub: Hub) -> None:
    async with http_client(hub.url + "/ns/a") as c:
        sub = ok(await c.call_tool("submit_task", {"type": "in-a"}))
        listed = ok(await c.call_tool("list_tasks", {}))
    tid = sub["task_id"]
    assert [t["id"] for t in hub.get("/ns/a/api/tasks")["tasks"]] == [tid]
    assert hub.get("/api/tasks")["tasks"] == []
    assert [t["id"] for t in listed["tasks"]] == [tid]
    async with http_client(hub.url) as c:  # the default namespace's MCP sees none of it
        assert ok(await c.call_tool("list_tasks", {}))["tasks"] == []


def test_the_agent_card_of_a_namespace_names_its_own_endpoint(hub: Hub) -> None:
    """A2A beside MCP: the card at ``/ns/a/.well-known/agent-card.json`` points at
    ``/ns/a/a2a``, the namespace's own A2A endpoint."""
    for prefix in ("", "/ns/a"):
        status, card = hub.request("GET", f"{prefix}/.well-known/agent-card.json")
        assert status == 200, card
        assert [i["url"] for i in card["supportedInterfaces"]] == [f"{hub.url}{prefix}/a2a"], card
