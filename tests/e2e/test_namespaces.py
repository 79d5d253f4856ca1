"""Namespaces (``hive serve --namespace``) against the real ``hive serve``: two
namespaces and the default in one process, each its own hive (tasks, agents,
gapless sequence, log file, tokens), reached by the real client, the real ``/ws``
stream and a real ``hive agent`` under ``/ns/NAME``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hivehub.client import SyncHiveClient, TaskNotFound, Unauthorized
from hivehub.protocol.errors import UnknownNamespace
from tests.conftest import TIME_SCALE
from tests.e2e.agentproc import AgentProc
from tests.hubproc import ROOT, Hub, wait_for

NAMESPACES = ("a", "b")
#: "" is the default namespace, at today's URLs
ALL = ("", *NAMESPACES)


def _prefix(ns: str) -> str:
    return f"/ns/{ns}" if ns else ""


def _token(db: Path, ns: str, role: str = "operator") -> str:
    """A token made by the real ``hive token create`` (``--namespace`` for a namespace)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HIVE_DB", None)
    args = [sys.executable, "-m", "hivehub", "token", "create", "--role", role, "--db", str(db)]
    if ns:
        args += ["--namespace", ns]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30 * TIME_SCALE)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _start(db: Path) -> Hub:
    flags = [x for ns in NAMESPACES for x in ("--namespace", ns)]
    return Hub(db, *flags, "--auth", "on", "--heartbeat-timeout", "120").start()


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Hub, dict[str, str]]]:
    db = tmp_path / "hive.db"
    tokens = {ns: _token(db, ns) for ns in ALL}
    hub = _start(db)
    try:
        yield hub, tokens
    finally:
        hub.stop()


def _client(hub: Hub, tokens: dict[str, str], ns: str, token_of: str | None = None) -> SyncHiveClient:
    return SyncHiveClient(hub.url + _prefix(ns), tokens[ns if token_of is None else token_of])


def _created(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["task"]["id"] for e in events if e["type"] == "task_created"]


def _log(c: SyncHiveClient) -> list[dict[str, Any]]:
    return list(c.iter_events())


def test_each_namespace_is_its_own_hive(deployment: tuple[Hub, dict[str, str]], tmp_path: Path) -> None:
    hub, tokens = deployment
    clients = {ns: _client(hub, tokens, ns) for ns in ALL}
    try:
        submitted: dict[str, set[str]] = {}
        for n, ns in enumerate(ALL):  # 1, 2 and 3 tasks: the counts tell the hives apart
            submitted[ns] = {clients[ns].submit_task(type=f"t-{ns or 'default'}")["id"] for _ in range(n + 1)}
        for ns, c in clients.items():
            # REST: each lists only its own tasks
            assert {t["id"] for t in c.tasks()} == submitted[ns]
            # its own log, its own gapless sequence from 1
            log = _log(c)
            assert [e["sequence"] for e in log] == list(range(1, len(log) + 1))
            assert set(_created(log)) == submitted[ns]
            assert c.status()["namespace"] == (ns or None)
            for other in ALL:
                if other != ns:
                    with pytest.raises(TaskNotFound):
                        c.get_task(next(iter(submitted[other])))
        # each namespace's log is a file of its own beside the default's
        for ns in NAMESPACES:
            assert (tmp_path / f"hive.ns-{ns}.db").is_file()

        # /ws: a stream replayed from 0 and then live carries its namespace's events only
        streams = {ns: c.stream(since=0) for ns, c in clients.items()}
        try:
            for s in streams.values():
                s.wait_connected(10 * TIME_SCALE)
            live = {ns: clients[ns].submit_task(type="live")["id"] for ns in ALL}
            for ns, s in streams.items():
                seen: list[dict[str, Any]] = []
                while live[ns] not in _created(seen):
                    ev = s.get(10 * TIME_SCALE)
                    if "sequence" in ev:
                        seen.append(ev)
                assert set(_created(seen)) == submitted[ns] | {live[ns]}
                assert [e["sequence"] for e in seen] == list(range(1, len(seen) + 1))
        finally:
            for s in streams.values():
                s.close()
    finally:
        for c in clients.values():
            c.close()


def test_a_token_of_one_namespace_is_refused_by_another(deployment: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = deployment
    for ns in ALL:
        for owner in ALL:
            with _client(hub, tokens, ns, token_of=owner) as c:
                if owner == ns:
                    assert c.tasks() == []
                else:
                    with pytest.raises(Unauthorized):
                        c.tasks()
                    with pytest.raises(Unauthorized):
                        c.submit_task(type="x")

    async def ws_close(path: str, token: str) -> tuple[Any, str]:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"{hub.ws_url}{path}?token={token}") as ws:
            msg = await ws.receive(timeout=10 * TIME_SCALE)
            return ws.close_code, str(msg.extra or "")

    code, reason = asyncio.run(ws_close("/ns/b/ws", tokens["a"]))
    assert code == 1008 and reason.startswith("unauthorized"), (code, reason)
    code, reason = asyncio.run(ws_close("/ns/a/agents/ws", tokens["b"]))
    assert code == 1008 and reason.startswith("unauthorized"), (code, reason)


def test_an_agent_under_a_namespace_gets_only_its_tasks(
    deployment: tuple[Hub, dict[str, str]], tmp_path: Path
) -> None:
    hub, tokens = deployment
    clients = {ns: _client(hub, tokens, ns) for ns in ALL}
    agent = AgentProc(
        f"{hub.url}/ns/a",  # an http base with the prefix, as a user gives it
        "ns-a-worker",
        ["x"],
        "tests.e2e.handlers:echo",
        log_dir=tmp_path,
        env={"HIVE_TOKEN": tokens["a"]},
    )
    try:
        wait_for(lambda: clients["a"].agents(), 20, what="the agent to register in namespace a")
        assert clients["b"].agents() == [] and clients[""].agents() == []
        # the same task everywhere; only a's can be served by this agent
        ids = {
            ns: c.submit_task(type="x", required_capabilities=[{"name": "x"}])["id"]
            for ns, c in clients.items()
        }
        done = clients["a"].wait_for_task(ids["a"], timeout=30 * TIME_SCALE)
        assert done["status"] == "completed" and done["result"]["agent"] == "ns-a-worker", done
        for ns in ("", "b"):
            assert clients[ns].get_task(ids[ns])["status"] == "pending"
            assert not [e for e in _log(clients[ns]) if e["type"] == "task_assigned"]
        assert [e["data"]["task_id"] for e in _log(clients["a"]) if e["type"] == "task_assigned"] == [
            ids["a"]
        ]
    finally:
        agent.stop()
        for c in clients.values():
            c.close()


def test_an_unknown_namespace_is_a_404_with_its_code(deployment: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = deployment
    for path in ("/ns/zzz/api/tasks", "/ns/zzz/health", "/ns/zzz", "/ns/"):
        status, body = hub.request("GET", path, headers={"Authorization": f"Bearer {tokens['']}"})
        assert status == 404 and body["error"]["code"] == "unknown_namespace", (path, status, body)
    # the client raises the wire class from the code
    with SyncHiveClient(hub.url + "/ns/zzz", tokens["a"]) as c, pytest.raises(UnknownNamespace):
        c.tasks()
    # the namespaces' own health answers, as the default's does
    for ns in NAMESPACES:
        status, body = hub.request("GET", f"/ns/{ns}/health")
        assert status == 200, (ns, status, body)


def test_an_invalid_namespace_name_stops_hive_serve(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HIVE_NAMESPACES": "ok,Not_OK"}
    out = subprocess.run(
        [sys.executable, "-m", "hivehub", "serve", "--db", str(tmp_path / "h.db"), "--no-demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30 * TIME_SCALE,
    )
    assert out.returncode == 2 and "invalid namespace name 'Not_OK'" in out.stderr, out.stderr
    assert not (tmp_path / "h.db").exists()


def test_a_restart_keeps_each_namespaces_log(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    tokens = {ns: _token(db, ns) for ns in ALL}
    hub = _start(db)
    before: dict[str, list[dict[str, Any]]] = {}
    try:
        for n, ns in enumerate(ALL):
            with _client(hub, tokens, ns) as c:
                for _ in range(n + 1):
                    c.submit_task(type="keep")
                before[ns] = _log(c)
    finally:
        assert hub.stop() == 0
    hub = _start(db)
    try:
        for ns in ALL:
            with _client(hub, tokens, ns) as c:
                after = _log(c)
                assert after[: len(before[ns])] == before[ns]
                assert [e["sequence"] for e in after] == list(range(1, len(after) + 1))
                assert {t["id"] for t in c.tasks()} == set(_created(before[ns]))
    finally:
        hub.stop()


def test_expect_100_continue_is_answered_once(deployment: tuple[Hub, dict[str, str]]) -> None:
    """The default app answers ``Expect: 100-continue`` before it hands the request on
    (curl sends it for larger bodies); the namespace's app must not answer it again."""
    hub, tokens = deployment
    body = json.dumps({"type": "big", "input": {"pad": "x" * 2048}}).encode()
    head = (
        f"POST /ns/a/api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {tokens['a']}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", hub.port), timeout=10 * TIME_SCALE) as s:
        s.sendall(head.encode())
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), first
        s.sendall(body)
        rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while chunk := s.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 201 "), rest[:200]
    assert b"100 Continue" not in rest
    with _client(hub, tokens, "a") as c:
        assert [t["type"] for t in c.tasks()] == ["big"]
