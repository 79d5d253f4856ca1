"""``hive approve|reject|answer|inbox``, ``hive quotas|budgets`` and ``hive tasks watch``
as real subprocesses against a real hub. The agent is a pull agent driven over REST
(claim, start, progress with ``output_delta``, ``input-request``, complete with
``usage``), so each step happens when the test says."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TIME_SCALE
from tests.e2e.test_cli import hive, popen
from tests.hubproc import Hub, wait_for


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("people") / "hive.db", "--heartbeat-timeout", "120").start()
    try:
        yield h
    finally:
        h.stop()


def pull_agent(hub: Hub, cap: str) -> str:
    return hub.post(
        "/api/agents",
        {"name": f"pull-{cap}", "capabilities": [{"name": cap, "proficiency": 0.9}]},
        expect=201,
    )["id"]


def claimed(hub: Hub, agent_id: str, task_id: str) -> dict:
    status, claim = hub.request("POST", f"/api/agents/{agent_id}/claim?wait=10")
    assert status == 200 and claim["task"]["id"] == task_id, (status, claim)
    me = {"agent_id": agent_id, "attempt": claim["attempt"]}
    hub.post(f"/api/tasks/{task_id}/start", me, expect=200)
    return me


def test_approve_and_reject_from_the_cli(hub: Hub) -> None:
    # (a capability no agent here has: once approved it stays pending, out of the other tests' way)
    a = hub.post(
        "/api/tasks",
        {"type": "gate-a", "requires_approval": True, "required_capabilities": [{"name": "purchasing"}]},
        expect=201,
    )
    b = hub.post(
        "/api/tasks", {"type": "gate-b", "description": "too dear", "requires_approval": True}, expect=201
    )
    r = hive("inbox", "--json", url=hub.url)
    assert r.returncode == 0, r.stderr
    assert {a["id"], b["id"]} <= {t["id"] for t in json.loads(r.stdout)}
    r = hive("inbox", url=hub.url)
    assert "approval" in r.stdout and "too dear" in r.stdout
    r = hive("approve", a["id"], "--comment", "fine", url=hub.url)
    assert r.returncode == 0 and "approved" in r.stdout, r.stderr
    assert hub.get(f"/api/tasks/{a['id']}")["status"] == "pending"
    r = hive("reject", b["id"], "--reason", "no budget", url=hub.url)
    assert r.returncode == 0, r.stderr
    assert hub.get(f"/api/tasks/{b['id']}")["status"] == "cancelled"
    # approving again: the hub refuses (409) and the CLI says so with exit 2
    r = hive("approve", a["id"], url=hub.url)
    assert r.returncode == 2 and "HTTP 409" in r.stderr, (r.returncode, r.stderr)


def test_watch_a_task_stream_its_output_and_answer_its_question(hub: Hub, tmp_path: Path) -> None:
    agent = pull_agent(hub, "write")
    task = hub.post("/api/tasks", {"type": "write", "required_capabilities": [{"name": "write"}]}, expect=201)
    me = claimed(hub, agent, task["id"])
    with popen("tasks", "watch", task["id"], url=hub.url) as watch:
        err: list[str] = []
        assert watch.stderr is not None
        reader = threading.Thread(target=lambda: err.extend(iter(watch.stderr.readline, "")), daemon=True)
        reader.start()
        hub.post(
            f"/api/tasks/{task['id']}/progress", {**me, "progress": 0.2, "output_delta": "Dear "}, expect=200
        )
        question = {
            **me,
            "request_id": "q1",
            "question": "Formal?",
            "choices": ["yes", "no"],
            "timeout_seconds": 300,
        }
        hub.post(f"/api/tasks/{task['id']}/input-request", question, expect=200)
        wait_for(
            lambda: any("Formal?" in line for line in err), 15, what="the question on the watch's stderr"
        )
        r = hive("inbox", url=hub.url)
        assert "Formal?" in r.stdout and "yes | no" in r.stdout
        r = hive("answer", task["id"], "maybe", url=hub.url)  # not one of the choices
        assert r.returncode == 2, r.stderr
        r = hive("answer", task["id"], "yes", "--request-id", "q1", url=hub.url)
        assert r.returncode == 0, r.stderr
        assert hub.get(f"/api/tasks/{task['id']}")["last_input"]["answer"] == "yes"
        hub.post(
            f"/api/tasks/{task['id']}/progress", {**me, "progress": 0.8, "output_delta": "Sir,\n"}, expect=200
        )
        usage = {"model": "smol-cli", "prompt_tokens": 40, "completion_tokens": 2}
        hub.post(f"/api/tasks/{task['id']}/complete", {**me, "result": "ok", "usage": usage}, expect=200)
        try:
            watch.wait(timeout=15 * TIME_SCALE)  # (its output is small: the pipe cannot fill)
        except subprocess.TimeoutExpired:
            pytest.fail("hive tasks watch did not exit when the task completed")
        assert watch.stdout is not None
        out = watch.stdout.read()
        reader.join(5)
    assert watch.returncode == 0
    assert out == "Dear Sir,\n"  # exactly the streamed text
    text = "".join(err)
    assert "answered" in text and "smol-cli: 40 prompt + 2 completion = 42 tokens" in text


def test_quotas_and_budgets_from_the_cli(hub: Hub) -> None:
    r = hive("quotas", "set", "cli-pool", "--tpm", "6000", "--max-concurrent", "2", "--json", url=hub.url)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tokens_per_minute"] == 6000
    r = hive("quotas", "list", url=hub.url)
    assert "cli-pool" in r.stdout and "6,000" in r.stdout
    assert hive("quotas", "delete", "cli-pool", url=hub.url).returncode == 0
    r = hive("quotas", "delete", "cli-pool", url=hub.url)
    assert r.returncode == 2 and "quota_not_found" in r.stderr
    r = hive("budgets", "set", "alice", "--tokens-per-day", "1000", "--cost-per-day", "0.5", url=hub.url)
    assert r.returncode == 0, r.stderr
    r = hive("budgets", "list", "--json", url=hub.url)
    assert [b["owner"] for b in json.loads(r.stdout)] == ["alice"]
    assert hive("budgets", "delete", "alice", url=hub.url).returncode == 0
    assert hive("quotas", "set", "p", "--tpm", "0", url=hub.url).returncode == 2
