"""SyncHiveClient: the same client for plain scripts, no asyncio in the caller."""

from __future__ import annotations

import pytest

from hivehub.client import HubUnreachable, InvalidTransition, SyncHiveClient, TaskNotFound
from tests.hubproc import Hub, free_port


def test_sync_rest_and_errors(hub: Hub, uid) -> None:
    typ = uid("sync")
    with SyncHiveClient(hub.url) as c:
        assert "metrics" in c.status()
        a = c.register_agent(uid("w"), capabilities={uid("cap"): 0.7})
        assert c.get_agent(a["id"])["name"] == a["name"]
        assert a["id"] in [x["id"] for x in c.list_agents(capability=uid("cap"))]
        t = c.submit_task(type=typ, required_capabilities={uid("nobody"): 1}, input=[1, 2])
        batch = c.submit_tasks([{"type": typ}, {"type": typ, "required_capabilities": {uid("nobody"): 1}}])
        assert len(batch) == 2
        it = c.list_tasks(type=typ, page_size=1)
        assert next(it)["id"] == batch[1]["id"]  # a lazy iterator over pages
        assert [x["id"] for x in it] == [batch[0]["id"], t["id"]]
        assert c.cancel_task(t["id"], "sync says no")["status"] == "cancelled"
        with pytest.raises(InvalidTransition):
            c.cancel_task(t["id"])
        assert c.retry_task(t["id"])["status"] == "pending"
        with pytest.raises(TaskNotFound) as ei:
            c.get_task("nope")
        assert ei.value.status == 404
        assert c.events(0, limit=1)["events"][0]["sequence"] == 1
    with SyncHiveClient(f"http://127.0.0.1:{free_port()}", timeout=5) as down, pytest.raises(HubUnreachable):
        down.health()


def test_sync_stream_is_a_blocking_iterator(hub: Hub, uid) -> None:
    typ = uid("sync-stream")
    with SyncHiveClient(hub.url) as c:
        with c.stream(types="task_created,task_cancelled") as events:
            events.wait_connected(10)
            t = c.submit_task(type=typ, required_capabilities={uid("nobody"): 1})
            c.cancel_task(t["id"])
            got = []
            for ev in events:
                if ev["data"].get("task", {}).get("id") == t["id"] or ev["data"].get("task_id") == t["id"]:
                    got.append(ev["type"])
                if ev["type"] == "task_cancelled":
                    break
            assert got == ["task_created", "task_cancelled"]
            assert events.request("ping")["type"] == "pong"
            with pytest.raises(TimeoutError):
                events.get(timeout=0.2)  # nothing more is coming for these filters
            assert events.last_sequence is not None
        done = c.wait_for_task(t["id"], timeout=5)
        assert done["status"] == "cancelled"
