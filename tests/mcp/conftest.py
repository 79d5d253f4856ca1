"""A real hub (``hive serve``) with a real agent (``hive agent`` running
``tests.mcp.handlers:run``) for the MCP tests, shared by the tests of a module."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.agentproc import AgentProc
from tests.hubproc import ROOT, Hub, wait_for

CAPABILITY = "mcp_gate"


def start_agent(hub: Hub, log_dir: Path, name: str = "mcp-agent", token: str | None = None) -> AgentProc:
    env = {"HIVE_TOKEN": token} if token else None
    agent = AgentProc(
        hub.ws_url,
        name,
        [f"{CAPABILITY}:0.9"],
        "tests.mcp.handlers:run",
        log_dir=log_dir,
        max_concurrent=4,
        env=env,
    )
    headers = {"Authorization": f"Bearer {token}"} if token else None

    def online() -> bool:
        status, body = hub.request("GET", "/api/agents", headers=headers)
        return status == 200 and any(a["name"] == name and a["status"] != "offline" for a in body["agents"])

    try:
        wait_for(online, 20, what=f"agent {name} to register")
    except BaseException:
        agent.stop()
        raise
    return agent


@pytest.fixture(scope="module")
def hive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    """A hub with auth off and one agent offering ``mcp_gate``; ``(hub, a scratch dir)``."""
    d = tmp_path_factory.mktemp("mcp")
    hub = Hub(d / "hive.db").start()
    agent: AgentProc | None = None
    try:
        agent = start_agent(hub, d)
        yield hub, d
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()


def make_token(db: Path, role: str) -> str:
    args = [sys.executable, "-m", "hivehub", "token", "create", "--role", role, "--db", str(db)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path, dict[str, str]]]:
    """A hub with auth on (viewer and operator tokens) and one agent (with the
    operator token); ``(hub, a scratch dir, {role: token})``."""
    d = tmp_path_factory.mktemp("mcp-auth")
    tokens = {r: make_token(d / "hive.db", r) for r in ("viewer", "operator")}
    hub = Hub(d / "hive.db").start()
    agent: AgentProc | None = None
    try:
        agent = start_agent(hub, d, token=tokens["operator"])
        yield hub, d, tokens
    finally:
        if agent is not None:
            agent.stop()
        hub.stop()
