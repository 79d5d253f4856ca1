"""``hive a2a-bridge`` end to end: real A2A agents (``a2a-sdk``'s server classes, in
this process: ``bridge_agents.py``), the real hub and the real bridge command, each a
process of its own. Tasks are submitted over REST and followed through the hub's log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hivehub.a2a.bridge import agent_id_for
from tests.a2a.bridge_agents import A2AAgent
from tests.hubproc import ROOT, Hub, free_port, wait_for

BRIDGE_TIMEOUT = 2.0  # the bridge's --timeout: how long a hanging agent is given


class Bridge:
    def __init__(self, hub: Hub, cards: list[str], log: Path, *extra: str) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        args = [sys.executable, "-m", "hivehub", "a2a-bridge", "--url", hub.ws_url, *extra]
        for c in cards:
            args += ["--card", c]
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class World:
    def __init__(
        self, hub: Hub, alpha: A2AAgent, beta: A2AAgent, bridge: Bridge, down: str, bad: str
    ) -> None:
        self.hub, self.alpha, self.beta, self.bridge, self.down, self.bad = (
            hub,
            alpha,
            beta,
            bridge,
            down,
            bad,
        )

    def submit(self, capability: str, text: Any, **extra: Any) -> str:
        body = {"type": capability, "input": text, "required_capabilities": [{"name": capability}], **extra}
        out = self.hub.post("/api/tasks", body, expect=201)
        return str(out["id"])

    def task(self, task_id: str) -> dict[str, Any]:
        return dict(self.hub.get(f"/api/tasks/{task_id}"))

    def wait_status(self, task_id: str, *statuses: str, timeout: float = 15) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (t := self.task(task_id))["status"] in statuses and t,
                timeout,
                what=f"task {task_id} to be {statuses} (bridge log: {self.bridge.logs()[-1500:]})",
            )
        )

    def task_events(self, task_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.hub.events(types=kind) if e["data"].get("task_id") == task_id]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("a2a-bridge")
    alpha = A2AAgent("alpha", ["summarize", "translate"], streaming=True).start()
    beta = A2AAgent("beta", ["translate", "digest", "bad skill"], streaming=False).start()
    hub = Hub(tmp / "hive.db", "--heartbeat-timeout", "3", "--retry-base", "0.05", "--retry-cap", "0.2")
    bridge = None
    try:
        hub.start()
        down = f"http://127.0.0.1:{free_port()}"
        bad = f"{alpha.url}/not-a-card.json"
        cards = [alpha.url, beta.url, down, bad]
        bridge = Bridge(
            hub, cards, tmp / "bridge.log", "--timeout", str(BRIDGE_TIMEOUT), "--card-timeout", "2"
        )
        w = World(hub, alpha, beta, bridge, down, bad)

        def both_online() -> bool:
            ids = {a["id"]: a for a in hub.get("/api/agents")["agents"]}
            return all(ids.get(agent_id_for(u), {}).get("status") == "idle" for u in (alpha.url, beta.url))

        wait_for(both_online, 20, what=f"both A2A agents online (bridge log: {bridge.logs()[-2000:]})")
        yield w
        assert bridge.stop() == 0, bridge.logs()[-2000:]  # SIGTERM: a clean stop
    finally:
        if bridge is not None:
            bridge.stop()
        hub.stop()
        alpha.stop()
        beta.stop()


def test_each_card_is_one_hive_agent_with_one_capability_per_skill(world: World) -> None:
    agents = {a["id"]: a for a in world.hub.get("/api/agents")["agents"]}
    a, b = agents[agent_id_for(world.alpha.url)], agents[agent_id_for(world.beta.url)]
    assert a["id"].startswith("a2a-") and a["name"] == "alpha" and b["name"] == "beta"
    assert [(c["name"], c["proficiency"]) for c in a["capabilities"]] == [
        ("summarize", 0.5),
        ("translate", 0.5),
    ]
    # "bad skill" is not a capability name: skipped with a log line, the others kept
    assert [c["name"] for c in b["capabilities"]] == ["translate", "digest"]
    assert b["metadata"]["a2a"]["skills_skipped"] == ["bad skill"]
    logs = world.bridge.logs()
    assert "skill id 'bad skill' is not a valid capability name" in logs
    # a card that is down is tried again; one that is not a card is skipped; neither crashes the bridge
    assert f"{world.down}: A2A_UNAVAILABLE" in logs and "trying again" in logs
    assert f"skipping {world.bad}: A2A_BAD_RESPONSE" in logs
    assert world.bridge.proc.poll() is None
    assert len([x for x in agents if x.startswith("a2a-")]) == 2


def test_streamed_result(world: World) -> None:
    tid = world.submit("summarize", "hello")
    t = world.wait_status(tid, "completed", "failed")
    assert t["status"] == "completed", t
    assert t["result"]["text"] == "alpha says hello"
    assert t["result"]["artifacts"][0]["name"] == "answer"
    assert t["result"]["a2a"]["task_id"] == world.alpha.seen[-1]["task_id"]
    # the artifact chunks came as task_progress with output_delta, concatenating to the output
    deltas = [e["data"].get("output_delta") or "" for e in world.task_events(tid, "task_progress")]
    assert "".join(deltas) == "alpha says hello" and t["output"] == "alpha says hello"
    # the working status became a progress step; the message carried the hive task
    assert world.alpha.seen[-1]["metadata"]["hive"]["task_id"] == tid
    assert world.alpha.seen[-1]["metadata"]["hive"]["skill"] == "summarize"


def test_non_streaming_agent_with_json_input(world: World) -> None:
    tid = world.submit("digest", {"rows": [1, 2, 3]})
    t = world.wait_status(tid, "completed", "failed")
    assert t["status"] == "completed", t
    assert t["result"]["text"].startswith("beta says ")
    assert t["assigned_agent_id"] == agent_id_for(world.beta.url)


def test_rejection_is_retried_on_another_agent(world: World) -> None:
    tid = world.submit("translate", "reject-once please", max_retries=2)
    t = world.wait_status(tid, "completed", "failed")
    assert t["status"] == "completed", t
    failed = world.task_events(tid, "task_failed")
    assert [e["data"]["error"]["code"] for e in failed] == ["A2A_REJECTED"]
    assert failed[0]["data"]["error"]["message"] == "not my kind of task"
    refuser = failed[0]["data"]["agent_id"]
    assert t["assigned_agent_id"] != refuser and t["attempt"] == 2
    assert {refuser, t["assigned_agent_id"]} == {agent_id_for(world.alpha.url), agent_id_for(world.beta.url)}


def test_failure_is_retried_then_succeeds(world: World) -> None:
    tid = world.submit("translate", "fail-once please", max_retries=2)
    t = world.wait_status(tid, "completed", "failed")
    assert t["status"] == "completed", t
    assert [e["data"]["error"]["code"] for e in world.task_events(tid, "task_failed")] == ["A2A_FAILED"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("fail", "A2A_FAILED"),
        ("reject", "A2A_REJECTED"),
        ("auth", "A2A_AUTH_REQUIRED"),
        ("drop", "A2A_UNAVAILABLE"),  # the HTTP connection is cut mid-stream
        ("hang", "A2A_TIMEOUT"),  # no event at all: the bridge's --timeout
    ],
)
def test_a2a_endings_become_stable_codes(world: World, text: str, code: str) -> None:
    tid = world.submit("summarize", text, max_retries=0)
    t = world.wait_status(tid, "failed", "completed", timeout=15 + BRIDGE_TIMEOUT)
    assert t["status"] == "failed" and t["error"]["code"] == code, t
    if text in ("hang", "drop"):
        # the A2A task was not left running: the bridge cancelled it
        a2a_id = next(s["task_id"] for s in reversed(world.alpha.seen) if s["text"] == text)
        wait_for(lambda: a2a_id in world.alpha.cancelled, 10, what=f"the cancel of {a2a_id}")
    assert world.bridge.proc.poll() is None


def test_hub_cancellation_reaches_the_a2a_agent(world: World) -> None:
    world.alpha.waiting.clear()
    tid = world.submit("summarize", "wait", max_retries=0, timeout_seconds=60)
    world.wait_status(tid, "running")
    assert world.alpha.waiting.wait(10)
    a2a_id = world.alpha.seen[-1]["task_id"]
    world.hub.post(f"/api/tasks/{tid}/cancel", {"reason": "test"})
    wait_for(lambda: a2a_id in world.alpha.cancelled, 10, what="the A2A agent to see the cancel")
    assert world.task(tid)["status"] == "cancelled"


def test_input_required_goes_through_the_hub(world: World) -> None:
    tid = world.submit("summarize", "ask", timeout_seconds=60)
    t = world.wait_status(tid, "input_required")
    assert t["pending_input"]["question"] == "which colour?"
    world.hub.post(f"/api/tasks/{tid}/input", {"answer": "blue"})
    t = world.wait_status(tid, "completed", "failed")
    assert t["status"] == "completed" and t["result"]["text"] == "you said blue", t
    assert world.alpha.answers[-1] == "blue"


def test_bridge_reconnects_after_the_hub_restarts(world: World) -> None:
    # last in this module: the hub goes away and comes back on the same port and database
    world.hub.stop()
    world.hub.start()
    alpha_id = agent_id_for(world.alpha.url)
    wait_for(
        lambda: any(
            a["id"] == alpha_id and a["status"] == "idle" for a in world.hub.get("/api/agents")["agents"]
        ),
        20,
        what="the bridge's agent back on the restarted hub",
    )
    t = world.wait_status(world.submit("summarize", "again"), "completed", "failed")
    assert t["status"] == "completed" and t["result"]["text"] == "alpha says again"
