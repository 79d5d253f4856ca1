"""Persistence across restarts of the real hub process: kill -9 and SIGTERM.

Everything acknowledged (every 201) survives; tasks come back identical; the
log continues gapless from the old last sequence, the restart adding only
``agent_status_changed`` (reason ``hub_restarted``) for agents that were online;
a /ws subscriber resumes with ``since`` and misses nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType

from tests.conftest import TIME_SCALE
from tests.hubproc import Hub, wait_for

#: agents stay online (and tasks held) for the whole test unless the hub restarts
LONG = ("--heartbeat-timeout", "120")
#: events the hive logs about itself on its own schedule
BACKGROUND = frozenset(
    {
        "hive_status_update",
        "system_alert",
        "resource_alert",
        "module_status_changed",
        "coordination_event",
        "inter_module_message",
        "learning_cycle_started",
        "learning_cycle_completed",
    }
)
#: agent fields that legitimately change across a restart (liveness is volatile)
VOLATILE_AGENT = ("status", "last_seen_at")


def all_pages(h: Hub, path: str, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = h.get(f"{path}?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        out += page[key]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def populate(h: Hub) -> tuple[list[str], list[str], list[str]]:
    """Agents, tasks in every state, cancellations; returns the acknowledged agent
    ids, task ids, and the ids of the agents left online."""
    agents = [
        h.post(
            "/api/agents",
            {
                "name": f"w{i}",
                "capabilities": [{"name": "gpu", "proficiency": 0.5 + i / 10}],
                "max_concurrent_tasks": 2,
            },
            expect=201,
        )["id"]
        for i in range(4)
    ]
    removed = agents.pop()
    h.request("DELETE", f"/api/agents/{removed}")
    tasks: list[str] = []
    batch = h.post(
        "/api/tasks/batch",
        {
            "tasks": [
                {
                    "description": f"b{i}",
                    "priority": ["low", "high"][i % 2],
                    "required_capabilities": [{"name": "gpu", "min_proficiency": 0.5}],
                }
                for i in range(8)
            ]
        },
        expect=201,
    )
    tasks += [t["id"] for t in batch["tasks"]]
    held = [t for t in batch["tasks"] if t["assigned_agent_id"]]
    assert len(held) == 6  # 3 agents x 2 slots
    h.post(
        f"/api/tasks/{held[0]['id']}/start",
        {"agent_id": held[0]["assigned_agent_id"], "attempt": held[0]["attempt"]},
        expect=200,
    )
    h.post(
        f"/api/tasks/{held[1]['id']}/complete",
        {"agent_id": held[1]["assigned_agent_id"], "attempt": held[1]["attempt"], "result": {"n": 1}},
        expect=200,
    )
    h.post(
        f"/api/tasks/{held[2]['id']}/fail",
        {"agent_id": held[2]["assigned_agent_id"], "attempt": held[2]["attempt"], "retryable": False},
        expect=200,
    )
    h.post(
        f"/api/tasks/{held[3]['id']}/progress",
        {
            "agent_id": held[3]["assigned_agent_id"],
            "attempt": held[3]["attempt"],
            "progress": 0.4,
            "current_step": "s",
        },
        expect=200,
    )
    for i in range(10):
        tasks.append(
            h.post(
                "/api/tasks",
                {
                    "description": f"t{i}",
                    "type": "etl",
                    "priority": "critical",
                    "input": {"i": i},
                    "required_capabilities": [{"name": "nobody"}],
                },
                expect=201,
            )["id"]
        )
    for tid in tasks[8:12]:
        h.post(f"/api/tasks/{tid}/cancel", {"reason": "not needed", "cancelled_by": "op"}, expect=200)
    h.post(f"/api/tasks/{tasks[8]}/retry", {}, expect=200)
    # the last acknowledged writes: the process dies right after these 201s
    tasks.append(h.post("/api/tasks", {"description": "last-but-one"}, expect=201)["id"])
    tasks.append(h.post("/api/tasks", {"description": "last"}, expect=201)["id"])
    online = [
        a["id"]
        for a in all_pages(h, "/api/agents", "agents")
        if a["status"] in ("idle", "active", "learning")
    ]
    return agents, tasks, online


def strip(agent: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in agent.items() if k not in VOLATILE_AGENT}


def logged(task: dict[str, Any]) -> dict[str, Any]:
    """A task's fields but ``blocked_reason``, which is derived at read time from the
    agents' liveness (the agents online before the restart are offline after it)."""
    return {k: v for k, v in task.items() if k != "blocked_reason"}


def check_restarted(new: Hub, before: dict[str, Any], task_ids: list[str], online: list[str]) -> None:
    # every acknowledged task is there, identical (ids, statuses, every logged field)
    tasks_after = all_pages(new, "/api/tasks", "tasks")
    assert [t["id"] for t in tasks_after] == [t["id"] for t in before["tasks"]]
    assert set(task_ids) <= {t["id"] for t in tasks_after}
    assert [logged(t) for t in tasks_after] == [logged(t) for t in before["tasks"]]
    for tid in task_ids:
        assert logged(new.get(f"/api/tasks/{tid}")) == logged(before["by_id"][tid])

    # agents identical but for liveness; the ones that were online are now offline
    agents_after = {a["id"]: a for a in all_pages(new, "/api/agents", "agents")}
    assert {k: strip(v) for k, v in agents_after.items()} == {a["id"]: strip(a) for a in before["agents"]}
    for aid, a in agents_after.items():
        assert a["status"] == ("offline" if aid in online else before["agent_status"][aid])

    # the log: the old events as they were, then only hub_restarted status changes
    # (and whatever the hive logged about itself, also between snapshot and stop), gapless
    old_events = before["events"]
    n = old_events[-1]["sequence"]
    events = new.events()
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert events[:n] == old_events
    added = [e for e in events[n:] if e["type"] not in BACKGROUND]
    assert [e["type"] for e in added] == ["agent_status_changed"] * len(online)
    assert sorted(e["data"]["agent_id"] for e in added) == sorted(online)
    for e in added:
        assert e["data"]["reason"] == "hub_restarted" and e["data"]["new_status"] == "offline"

    # status agrees with the recovered state
    st = new.get("/api/hive/status")
    m, m0 = st["metrics"], before["status"]["metrics"]
    for k in (
        "total_tasks",
        "pending_tasks",
        "assigned_tasks",
        "running_tasks",
        "completed_tasks",
        "failed_tasks",
        "cancelled_tasks",
        "total_agents",
    ):
        assert m[k] == m0[k], k
    assert m["online_agents"] == 0 and m["offline_agents"] == len(online)
    assert st["sequence"] >= n + len(online)

    # and it keeps going: new writes continue the sequence
    t = new.post("/api/tasks", {"description": "after restart"}, expect=201)
    created = new.events(since=n, types="task_created")
    assert [e["data"]["task"]["id"] for e in created] == [t["id"]]
    assert created[0]["sequence"] > n + len(online) - 1


def snapshot(h: Hub) -> dict[str, Any]:
    tasks = all_pages(h, "/api/tasks", "tasks")
    agents = all_pages(h, "/api/agents", "agents")
    return {
        "tasks": tasks,
        "by_id": {t["id"]: t for t in tasks},
        "agents": agents,
        "agent_status": {a["id"]: a["status"] for a in agents},
        "status": h.get("/api/hive/status"),
        "events": h.events(),
    }


@pytest.mark.parametrize("how", ["kill", "sigterm"])
def test_restart_keeps_everything_acknowledged(hub_factory: Any, tmp_path: Any, how: str) -> None:
    db = tmp_path / "restart.db"
    old = hub_factory(*LONG, db=db).start()
    agents, task_ids, online = populate(old)
    assert len(online) == 3
    before = snapshot(old)
    if how == "kill":
        old.kill()
    else:
        assert old.stop() == 0
    new = hub_factory(*LONG, db=db).start()
    check_restarted(new, before, task_ids, online)


def test_kill_right_after_a_burst_loses_nothing_acknowledged(hub_factory: Any, tmp_path: Any) -> None:
    """Writers hammer the hub from threads; it is killed mid-burst. Every task whose
    201 arrived is in the restarted hub, identical."""
    db = tmp_path / "burst.db"
    old = hub_factory(*LONG, db=db).start()
    acked: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                status, body = old.request(
                    "POST", "/api/tasks", {"description": f"w{k}-{i}", "priority": (i % 4) + 1}
                )
            except Exception:  # noqa: BLE001 - the hub is being killed under us
                return
            if status == 201:
                with lock:
                    acked[body["id"]] = body
            i += 1

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 200, 20, what="200 acknowledged tasks")
    old.kill()
    stop.set()
    for t in threads:
        t.join(10)
    with lock:
        acked_now = dict(acked)
    new = hub_factory(*LONG, db=db).start()
    recovered = {t["id"]: t for t in all_pages(new, "/api/tasks", "tasks")}
    missing = set(acked_now) - set(recovered)
    assert not missing, f"{len(missing)} acknowledged tasks lost"
    for tid, t in acked_now.items():
        assert recovered[tid] == t
    events = new.events()
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))


async def test_since_resume_across_a_kill(hub_factory: Any, tmp_path: Any) -> None:
    db = tmp_path / "resume.db"
    old = hub_factory(*LONG, db=db).start()
    port = old.port
    await asyncio.to_thread(
        old.post, "/api/agents", {"name": "a", "capabilities": [{"name": "x", "proficiency": 0.9}]}, 201
    )
    received: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{old.ws_url}/ws?since=0") as ws:

            def burst() -> None:
                for i in range(60):
                    old.post("/api/tasks", {"description": f"before-{i}"}, expect=201)

            writer = asyncio.create_task(asyncio.to_thread(burst))
            # read some, then the hub dies under the subscriber while events are in flight
            while len(received) < 20:
                msg = await ws.receive(timeout=10 * TIME_SCALE)
                assert msg.type == WSMsgType.TEXT, msg
                received.append(json.loads(msg.data))
            await writer
            await asyncio.to_thread(old.kill)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                received.append(json.loads(msg.data))
    last = received[-1]["sequence"]
    assert [e["sequence"] for e in received] == list(range(1, last + 1))

    # restart on the same port and db; more happens before the subscriber is back
    new = hub_factory(*LONG, db=db, port=port).start()
    await asyncio.to_thread(new.post, "/api/tasks", {"description": "after restart"}, 201)
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{new.ws_url}/ws?since={last}") as ws:
            await asyncio.to_thread(new.post, "/api/tasks", {"description": "live after resume"}, 201)
            await ws.send_json({"type": "ping", "message_id": "end"})
            resumed: list[dict[str, Any]] = []
            while True:
                msg = await ws.receive(timeout=10 * TIME_SCALE)
                assert msg.type == WSMsgType.TEXT, msg
                m = json.loads(msg.data)
                if m["type"] == "pong":
                    break
                resumed.append(m)
    log = new.events()
    assert [e["sequence"] for e in resumed] == list(range(last + 1, resumed[-1]["sequence"] + 1))
    assert received + resumed == log[: resumed[-1]["sequence"]]
    created = [e["data"]["task"]["description"] for e in received + resumed if e["type"] == "task_created"]
    assert created == [f"before-{i}" for i in range(60)] + ["after restart", "live after resume"]
    assert any(
        e["type"] == "agent_status_changed" and e["data"]["reason"] == "hub_restarted" for e in resumed
    )


async def test_sigterm_closes_subscribers_with_1001(hub_factory: Any) -> None:
    h = hub_factory().start()
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{h.ws_url}/ws?types=task_created") as ws:
        # keep receiving while the hub stops, so the client answers its close handshake
        stopping = asyncio.create_task(asyncio.to_thread(h.stop))
        msg = await ws.receive(timeout=10 * TIME_SCALE)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), msg
        assert ws.close_code == 1001
        assert await stopping == 0
