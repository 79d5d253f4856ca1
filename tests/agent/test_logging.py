"""An SDK agent in a plain script logs its connection and task lifecycle at INFO on
stderr (as ``hive agent`` does), unless the script configured logging itself or
``HIVE_LOG_LEVEL`` / ``log_level=`` says otherwise. Real hub, real agent process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import ROOT, Hub, wait_for

SCRIPT = """
import logging, sys
from hivehub.agent import Agent, PullAgent

transport, setup, name = sys.argv[2], sys.argv[3], sys.argv[4]
if setup == "basicConfig":
    logging.basicConfig(level=logging.WARNING)
cls = PullAgent if transport == "pull" else Agent
kw = {"log_level": "WARNING"} if setup == "log_level" else {}
agent = cls(name, {name: 0.9}, url=sys.argv[1], **kw)

@agent.handler(name)  # a task type of its own: the module's hub has other agents
def echo(ctx):
    return {"echo": ctx.input}

agent.run_forever(grace=2)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub") / "hive.db").start()
    try:
        yield h
    finally:
        h.stop()


class AgentScript:
    """The script above as a subprocess; its stderr collected line by line."""

    def __init__(self, tmp_path: Path, hub: Hub, transport: str, setup: str, env: dict[str, str]) -> None:
        self.name = f"scripted_{transport}_{setup}_{len(env)}"
        script = tmp_path / "agent_script.py"
        script.write_text(SCRIPT)
        url = hub.ws_url if transport == "ws" else hub.url
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        full_env.pop("HIVE_LOG_LEVEL", None)  # the test's own setting only
        full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, str(script), url, transport, setup, self.name],
            cwd=tmp_path,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, needle: str, what: str) -> str:
        def found() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent script exited {self.proc.returncode}: {self.lines[-20:]}")
            return next((ln for ln in self.lines if needle in ln), None)

        return wait_for(found, 20, what=what)  # type: ignore[no-any-return]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return self.proc.returncode


def _online(hub: Hub, name: str) -> dict:
    def find() -> dict | None:
        for a in hub.get("/api/agents?limit=100")["agents"]:
            if a["name"] == name and a["status"] in ("idle", "active"):
                return a
        return None

    return wait_for(find, 20, what=f"{name} online")  # type: ignore[no-any-return]


def _run_task(hub: Hub, name: str) -> str:
    spec = {"type": name, "required_capabilities": [{"name": name}], "input": {"n": 1}}
    task = hub.post("/api/tasks", spec, expect=201)
    wait_for(
        lambda: hub.get(f"/api/tasks/{task['id']}")["status"] == "completed", 20, what="echo task completed"
    )
    return str(task["id"])


@pytest.mark.parametrize("transport", ["ws", "pull"])
def test_a_script_agent_logs_its_connection_and_tasks_at_info(
    tmp_path: Path, hub: Hub, transport: str
) -> None:
    agent = AgentScript(tmp_path, hub, transport, "plain", {})
    try:
        first = agent.wait_line(f"{agent.name}:", "the agent's first log line")
        assert f" INFO hivehub.agent: {agent.name}: " in first
        registered = agent.wait_line("registered as", "the registration line")
        agent_id = _online(hub, agent.name)["id"]
        assert agent_id in registered
        task_id = _run_task(hub, agent.name)
        agent.wait_line(f"started {task_id}#1 ({agent.name})", "the task's start line")
        agent.wait_line(f"completed {task_id}#1", "the task's completion line")
    finally:
        assert agent.stop() == 0, agent.lines[-20:]
    if transport == "ws":
        assert any(f"connecting to {hub.ws_url}/agents/ws" in ln for ln in agent.lines)


@pytest.mark.parametrize(
    ("setup", "env"),
    [
        ("plain", {"HIVE_LOG_LEVEL": "WARNING"}),
        ("log_level", {}),
        ("basicConfig", {}),  # the script's own logging configuration wins
    ],
)
def test_info_lines_can_be_turned_off(tmp_path: Path, hub: Hub, setup: str, env: dict[str, str]) -> None:
    agent = AgentScript(tmp_path, hub, "ws", setup, env)
    try:
        _online(hub, agent.name)
        _run_task(hub, agent.name)
    finally:
        assert agent.stop() == 0, agent.lines[-20:]
    assert not [ln for ln in agent.lines if "INFO" in ln], agent.lines
