"""Nothing lost: a hub killed under load, silent agents, a failing store."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import websocket

from tests.e2e.test_agents import online, submit, task_ends
from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers"


class Subscriber(threading.Thread):
    """A /ws subscriber that resumes with ``since`` after every disconnect and
    records every sequence it receives."""

    def __init__(self, hub_ref: list[Hub]) -> None:
        super().__init__(daemon=True)
        self.hub_ref = hub_ref
        self.seqs: list[int] = []
        self.reconnects = 0
        self.stop_flag = threading.Event()

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            ws = websocket.WebSocket()
            try:
                ws.connect(f"{self.hub_ref[0].ws_url}/ws?since={self.last}", timeout=2)
                ws.settimeout(0.5)
                while not self.stop_flag.is_set():
                    try:
                        msg = ws.recv()
                    except websocket.WebSocketTimeoutException:
                        continue
                    if not msg:
                        break
                    ev = json.loads(msg)
                    if "sequence" in ev:
                        self.seqs.append(ev["sequence"])
            except (OSError, websocket.WebSocketException):
                pass
            finally:
                ws.shutdown()
            if not self.stop_flag.is_set():
                self.reconnects += 1
                time.sleep(0.05)


def test_kill_9_under_load_loses_nothing(hub_factory, agents, tmp_path: Path) -> None:
    flags = ("--heartbeat-timeout", "3", "--retry-base", "0.05", "--retry-cap", "0.2")
    hub = hub_factory(*flags).start()
    ref = [hub]
    agents(hub, "A", ["x:0.9"], f"{H}:echo", max_concurrent=4)
    agents(hub, "B", ["x:0.7"], f"{H}:echo", max_concurrent=4)
    online(hub, "A")
    online(hub, "B")
    subs = [Subscriber(ref) for _ in range(2)]
    for s in subs:
        s.start()
    accepted: list[str] = []
    stop = threading.Event()

    def submitter() -> None:
        while not stop.is_set():
            try:
                status, body = ref[0].request(
                    "POST",
                    "/api/tasks",
                    {"type": "x", "required_capabilities": [{"name": "x"}], "input": {"n": len(accepted)}},
                )
            except OSError:  # refused or reset while the hub is down: try again
                time.sleep(0.02)
                continue
            if status == 201:
                accepted.append(body["id"])

    th = threading.Thread(target=submitter, daemon=True)
    th.start()
    wait_for(lambda: len(accepted) >= 60, 30, what="load to build up")
    hub.kill()
    n_before = len(accepted)
    hub2 = hub_factory(*flags, port=hub.port).start()
    ref[0] = hub2
    wait_for(lambda: len(accepted) >= n_before + 40, 30, what="load to continue after the restart")
    stop.set()
    th.join(10)
    for tid in accepted:
        task_ends(hub2, tid, timeout=60)
    events = hub2.events()
    seqs = [e["sequence"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "the log has a gap or a duplicate"
    terminal: dict[str, int] = {}
    for e in events:
        d = e["data"]
        if e["type"] in ("task_completed", "task_cancelled") or (
            e["type"] == "task_failed" and not d["retry_scheduled"]
        ):
            terminal[d["task_id"]] = terminal.get(d["task_id"], 0) + 1
    assert all(terminal.get(t) == 1 for t in accepted), [t for t in accepted if terminal.get(t) != 1]
    last = seqs[-1]
    for s in subs:
        wait_for(lambda s=s: s.last >= last, 30, what="subscriber to catch up")
        s.stop_flag.set()
    for s in subs:
        s.join(10)
        got = [x for x in s.seqs if x <= last]
        assert got == list(range(1, last + 1)), "a resuming subscriber missed or repeated events"
        assert s.reconnects >= 1


def test_silent_agent_goes_offline_and_its_task_moves(hub: Hub, agents) -> None:
    silent = hub.post(
        "/api/agents", {"name": "silent", "capabilities": [{"name": "x", "proficiency": 0.95}]}, expect=201
    )
    t = submit(hub, type="x", required_capabilities=[{"name": "x"}], input={"v": 1})
    claim = hub.post(f"/api/agents/{silent['id']}/claim?wait=5", expect=200)
    assert claim["task"]["id"] == t["id"]
    hub.post(
        f"/api/tasks/{t['id']}/start", {"agent_id": silent["id"], "attempt": claim["attempt"]}, expect=200
    )
    agents(hub, "B", ["x:0.5"], f"{H}:echo")  # it never heartbeats again; B is there to take over
    done = task_ends(hub, t["id"], timeout=30)
    assert done["result"]["agent"] == "B"
    reasons = [
        e["data"]["reason"]
        for e in hub.events(types="agent_status_changed")
        if e["data"]["agent_id"] == silent["id"]
    ]
    assert "heartbeat_timeout" in reasons
    failed = [e["data"] for e in hub.events(types="task_failed") if e["data"]["task_id"] == t["id"]]
    assert [f["error"]["code"] for f in failed] == ["AGENT_LOST"]
    # its late report is stale and changes nothing
    status, body = hub.request(
        "POST",
        f"/api/tasks/{t['id']}/complete",
        {"agent_id": silent["id"], "attempt": claim["attempt"], "result": "late"},
    )
    assert status == 409 and body["error"]["code"] == "not_task_holder"
    assert hub.get(f"/api/tasks/{t['id']}")["result"]["agent"] == "B"


def test_store_failure_refuses_writes_keeps_reads_and_recovers(hub_factory, tmp_path: Path) -> None:
    hub = hub_factory("--store-busy-timeout", "0.3").start()
    before = submit(hub, type="x")
    transient: list[dict[str, Any]] = []
    ws = websocket.WebSocket()
    ws.connect(f"{hub.ws_url}/ws?types=system_alert,module_status_changed")
    ws.settimeout(0.2)

    def drain() -> None:
        while True:
            try:
                msg = ws.recv()
            except websocket.WebSocketTimeoutException:
                return
            transient.append(json.loads(msg))

    # another process takes the write lock: the hub's writes cannot commit
    lock = sqlite3.connect(hub.db, timeout=5, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        status, body = hub.request("POST", "/api/tasks", {"type": "x"})
        assert status == 503 and body["error"]["code"] == "store_unavailable"
        status, body = hub.request("POST", "/api/tasks", {"type": "x"})
        assert status == 503  # refused at once while the store is known bad
        assert hub.get(f"/api/tasks/{before['id']}")["status"] == "pending"  # reads still work
        health = wait_for(
            lambda: (h := hub.request("GET", "/health")[1])
            and h["modules"]["persistence"]["status"] == "degraded"
            and h,
            10,
            what="persistence degraded",
        )
        assert health["status"] == "degraded"
        alerts = wait_for(
            lambda: [a for a in hub.get("/api/alerts")["alerts"] if a["key"] == "store_unavailable"],
            10,
            what="store alert",
        )
        assert alerts[0]["level"] == "critical" and alerts[0]["title"] == "Database Connection Lost"

        def saw_alert() -> bool:
            drain()
            return any(
                m["type"] == "system_alert" and m["data"]["title"] == "Database Connection Lost"
                for m in transient
            )

        wait_for(saw_alert, 10, what="a live system_alert")
        alert = next(m for m in transient if m["type"] == "system_alert")
        assert "sequence" not in alert  # not logged: the log could not be written
        assert "persistence" in alert["data"]["details"]["affected_components"]

        def saw_module() -> bool:
            drain()
            return any(
                m["type"] == "module_status_changed"
                and m["data"]["module"] == "persistence"
                and m["data"]["new_status"] == "degraded"
                for m in transient
            )

        wait_for(saw_module, 10, what="a live module_status_changed for persistence")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # it recovers by itself
    after = wait_for(
        lambda: (r := hub.request("POST", "/api/tasks", {"type": "x"})) and r[0] == 201 and r[1],
        15,
        what="writes to work again",
    )
    assert hub.get(f"/api/tasks/{after['id']}")["status"] == "pending"
    wait_for(
        lambda: hub.get("/health")["modules"]["persistence"]["status"] == "healthy",
        10,
        what="persistence healthy",
    )
    logged = [e for e in hub.events(types="system_alert") if e["data"]["alert_key"] == "store_unavailable"]
    assert [e["data"]["state"] for e in logged] == ["active", "cleared"]
    assert logged[0]["data"]["details"]["outage_seconds"] > 0
    assert not [a for a in hub.get("/api/alerts")["alerts"] if a["key"] == "store_unavailable"]
    seqs = [e["sequence"] for e in hub.events()]
    assert seqs == list(range(1, len(seqs) + 1))
    ws.close()
