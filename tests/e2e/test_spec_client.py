"""The spec's own Python client (``shared/spec/websocket-api.md``, "Python Client"),
copied verbatim below as the contract, against the real hub: connected with only
the URL changed, its handlers must receive ``agent_created`` and ``task_created``
with the spec's fields."""

# ruff: noqa: I001, F401
# (the spec's imports are kept exactly as the spec writes them, `time` included, which
# only its usage example needs)

# ---- verbatim from the spec: begin -------------------------------------------------
import websocket
import json
import threading
import time


class HiveWebSocketClient:
    def __init__(self, url="ws://localhost:3001/ws"):
        self.url = url
        self.ws = None
        self.running = False
        self.message_handlers = {}

    def connect(self):
        try:
            self.ws = websocket.WebSocket()
            self.ws.connect(self.url)
            self.running = True
            print("‚úÖ Connected to Hive WebSocket")

            # Start message handling thread
            threading.Thread(target=self._message_loop, daemon=True).start()

        except Exception as e:
            print(f"‚ùå Failed to connect: {e}")

    def _message_loop(self):
        while self.running:
            try:
                message = self.ws.recv()
                if message:
                    self._handle_message(json.loads(message))
            except Exception as e:
                print(f"‚ùå Message handling error: {e}")
                break

    def _handle_message(self, message):
        message_type = message.get("type")
        handler = self.message_handlers.get(message_type)

        if handler:
            handler(message.get("data", {}))
        else:
            print(f"‚ùì Unknown message type: {message_type}")

    def on(self, event_type, handler):
        self.message_handlers[event_type] = handler

    def disconnect(self):
        self.running = False
        if self.ws:
            self.ws.close()


# ---- verbatim from the spec: end ---------------------------------------------------

from typing import Any  # noqa: E402

from tests.conftest import TIME_SCALE  # noqa: E402
from tests.hubproc import Hub, wait_for  # noqa: E402

ISO_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


def test_spec_python_client_receives_spec_events(hub_factory: Any) -> None:
    import re

    h: Hub = hub_factory("--heartbeat-timeout", "120").start()
    received: dict[str, list[dict[str, Any]]] = {"agent_created": [], "task_created": []}

    client = HiveWebSocketClient(h.ws_url + "/ws")
    client.on("agent_created", lambda data: received["agent_created"].append(data))
    client.on("task_created", lambda data: received["task_created"].append(data))
    client.connect()
    try:
        assert client.running and client.ws is not None and client.ws.connected
        # wait until the hub has registered the subscriber, so no event is missed
        wait_for(lambda: h.get("/api/hive/status")["subscribers"] == 1, what="the client to be subscribed")

        caps = [{"name": "data_processing", "proficiency": 0.85, "learning_rate": 0.1}]
        agent = h.post(
            "/api/agents", {"name": "DataProcessor-1", "type": "specialist", "capabilities": caps}, expect=201
        )
        task = h.post(
            "/api/tasks",
            {
                "description": "Process customer data",
                "type": "data_processing",
                "priority": 2,
                "required_capabilities": [{"name": "data_processing", "min_proficiency": 0.7}],
            },
            expect=201,
        )
        wait_for(
            lambda: received["agent_created"] and received["task_created"],
            10 * TIME_SCALE,
            what="the handlers to fire",
        )
    finally:
        client.disconnect()

    [a] = received["agent_created"]
    assert {"id", "name", "type", "capabilities", "created_at"} <= set(a["agent"])
    assert a["agent"]["id"] == agent["id"]
    assert a["agent"]["name"] == "DataProcessor-1"
    assert a["agent"]["type"] == "specialist"
    assert a["agent"]["capabilities"] == [{**caps[0], "declared_proficiency": 0.85}]
    assert re.match(ISO_Z, a["agent"]["created_at"])
    assert re.match(ISO_Z, a["timestamp"])

    [t] = received["task_created"]
    assert {"id", "description", "type", "priority", "status", "required_capabilities", "created_at"} <= set(
        t["task"]
    )
    assert t["task"]["id"] == task["id"]
    assert t["task"]["description"] == "Process customer data"
    assert t["task"]["type"] == "data_processing"
    assert t["task"]["priority"] == 2
    assert t["task"]["status"] == "pending"
    assert t["task"]["required_capabilities"] == [{"name": "data_processing", "min_proficiency": 0.7}]
    assert re.match(ISO_Z, t["task"]["created_at"])
    assert t["matching_agents"] == 1
    assert not client.running
