"""The operator CLI (``python -m hivehub status|agents|tasks|watch``) as real
subprocesses against a real hub, with a real ``hive agent`` process doing the work."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TIME_SCALE
from tests.e2e.agentproc import AgentProc
from tests.hubproc import ROOT, Hub, free_port, wait_for


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HIVE_URL", "HIVE_TOKEN")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def hive(
    *args: str, url: str | None = None, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hivehub", *args] + (["--url", url] if url else [])
    return subprocess.run(
        cmd, cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout * TIME_SCALE
    )


@contextmanager
def popen(*args: str, url: str) -> Iterator[subprocess.Popen[str]]:
    """A running ``hive`` command; killed if the test leaves it running, pipes closed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hivehub", *args, "--url", url],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Lines:
    """A subprocess's stdout lines, read in a thread so a test can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stdout: Any) -> None:
        try:
            for line in iter(stdout.readline, ""):
                self.q.put(line)
        except (OSError, ValueError):  # closed under us at the end of the test
            pass
        finally:
            self.q.put(None)

    def next(self, timeout: float = 15.0) -> str:
        line = self.q.get(timeout=timeout * TIME_SCALE)
        assert line is not None, "the process closed its output"
        return line


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, AgentProc]]:
    tmp = tmp_path_factory.mktemp("cli")
    hub = Hub(tmp / "hive.db", "--heartbeat-timeout", "120").start()
    agent = AgentProc(hub.ws_url, "cli-echo", ["x:0.9"], "tests.e2e.handlers:echo", log_dir=tmp)
    try:
        wait_for(
            lambda: any(
                a["name"] == "cli-echo" and a["status"] == "idle" for a in hub.get("/api/agents")["agents"]
            ),
            20,
            what="the echo agent to register",
        )
        yield hub, agent
    finally:
        agent.stop()
        hub.stop()


def test_submit_and_wait_for_completion(env: tuple[Hub, AgentProc], tmp_path: Path) -> None:
    hub, _ = env
    r = hive(
        "tasks",
        "submit",
        "--type",
        "x",
        "--require",
        "x:0.5",
        "--priority",
        "high",
        "--input",
        '{"n": 1}',
        "--description",
        "from the cli",
        "--wait",
        url=hub.url,
    )
    assert r.returncode == 0, r.stderr
    assert "completed" in r.stdout and '"n": 1' in r.stdout
    assert "100%" in r.stderr  # the progress bar, on stderr
    f = tmp_path / "input.json"
    f.write_text(json.dumps({"from": "file"}))
    r = hive(
        "tasks",
        "submit",
        "--type",
        "x",
        "--require",
        "x:0.5",
        "x:0.1",
        "--priority",
        "4",
        "--input-file",
        str(f),
        "--timeout",
        "30",
        "--max-retries",
        "0",
        "--wait",
        "--json",
        url=hub.url,
    )
    assert r.returncode == 0, r.stderr
    task = json.loads(r.stdout)
    assert task["status"] == "completed" and task["result"]["echo"] == {"from": "file"}
    assert (task["priority"], task["timeout_seconds"], task["max_retries"]) == (4, 30.0, 0)
    assert [c["name"] for c in task["required_capabilities"]] == ["x", "x"]


def test_cancelled_wait_exits_1_then_retry_show_list(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    tid = f"cli-{uuid.uuid4().hex[:8]}"
    with popen(
        "tasks",
        "submit",
        "--type",
        "never",
        "--require",
        "nobody:1",
        "--id",
        tid,
        "--wait",
        "--json",
        url=hub.url,
    ) as waiting:
        wait_for(lambda: hub.request("GET", f"/api/tasks/{tid}")[0] == 200, 15, what="the task to exist")
        r = hive("tasks", "cancel", tid, "--reason", "operator said so", "--json", url=hub.url)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "cancelled"
        out, err = waiting.communicate(timeout=20 * TIME_SCALE)
    assert waiting.returncode == 1, err
    assert json.loads(out)["status"] == "cancelled"

    r = hive("tasks", "retry", tid, url=hub.url)
    assert r.returncode == 0 and "re-queued" in r.stdout and "pending" in r.stdout, r.stderr
    shown = json.loads(hive("tasks", "show", tid, "--json", url=hub.url).stdout)
    assert shown["status"] == "pending" and shown["id"] == tid
    r = hive("tasks", "show", tid, url=hub.url)
    assert r.returncode == 0 and tid in r.stdout and "nobody:1" in r.stdout
    listed = json.loads(
        hive("tasks", "list", "--status", "pending", "--type", "never", "--json", url=hub.url).stdout
    )
    assert tid in [t["id"] for t in listed]
    r = hive("tasks", "list", "--limit", "5", url=hub.url)
    assert r.returncode == 0 and tid in r.stdout
    hive("tasks", "cancel", tid, url=hub.url)


def test_agents_and_status(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    made = hub.post(
        "/api/agents",
        {"name": "cli-temp", "capabilities": [{"name": "temp", "proficiency": 0.4}]},
        expect=201,
    )
    agents = json.loads(hive("agents", "list", "--json", url=hub.url).stdout)
    assert {"cli-echo", "cli-temp"} <= {a["name"] for a in agents}
    r = hive("agents", "list", "--capability", "temp", url=hub.url)
    assert r.returncode == 0 and made["id"] in r.stdout and "cli-echo" not in r.stdout
    r = hive("agents", "show", made["id"], url=hub.url)
    assert r.returncode == 0 and "cli-temp" in r.stdout and "temp" in r.stdout
    r = hive("agents", "remove", made["id"], "--json", url=hub.url)
    assert r.returncode == 0 and json.loads(r.stdout)["agent_id"] == made["id"]
    r = hive("agents", "show", made["id"], url=hub.url)
    assert r.returncode == 2 and "agent_not_found" in r.stderr

    st = json.loads(hive("status", "--json", url=hub.url).stdout)
    assert st["metrics"]["total_agents"] >= 1 and isinstance(st["alerts"], list)
    r = hive("status", env=_env(HIVE_URL=hub.url))  # the address from the environment
    assert r.returncode == 0 and "Modules" in r.stdout and "healthy" in r.stdout


def test_watch_json_since_0_then_live(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    log = hub.events(0)
    n = min(5, len(log))
    with popen("watch", "--json", "--since", "0", url=hub.url) as watch:
        lines = Lines(watch)
        got = [json.loads(lines.next()) for _ in range(n)]
        assert [e["sequence"] for e in got] == list(range(1, n + 1))
        assert [e["message_id"] for e in got] == [e["message_id"] for e in log[:n]]
        # then live: a task submitted now shows up
        t = hub.post(
            "/api/tasks",
            {"type": "watched", "required_capabilities": [{"name": "nobody", "min_proficiency": 1}]},
            expect=201,
        )
        while True:
            e = json.loads(lines.next())
            if e["type"] == "task_created" and e["data"]["task"]["id"] == t["id"]:
                break
        watch.send_signal(signal.SIGINT)  # Ctrl-C
        assert watch.wait(15 * TIME_SCALE) == 0
    hub.post(f"/api/tasks/{t['id']}/cancel", {})

    with popen("watch", "--since", "0", "--types", "agent_created", url=hub.url) as human:
        line = Lines(human).next()
        assert "agent_created" in line and "cli-echo" in line
        human.send_signal(signal.SIGTERM)
        assert human.wait(15 * TIME_SCALE) == 0


def test_errors_and_exit_codes(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    r = hive("tasks", "show", "no-such-task", url=hub.url)
    assert r.returncode == 2 and "task_not_found" in r.stderr and "no-such-task" in r.stderr
    t = hub.post(
        "/api/tasks",
        {"type": "never", "required_capabilities": [{"name": "nobody", "min_proficiency": 1}]},
        expect=201,
    )
    hub.post(f"/api/tasks/{t['id']}/cancel", {}, expect=200)
    r = hive("tasks", "cancel", t["id"], url=hub.url)  # already cancelled: 409
    assert r.returncode == 2 and "invalid_transition" in r.stderr
    r = hive("tasks", "submit", "--type", "x", "--input", "{not json", url=hub.url)
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    r = hive("tasks", "submit", "--type", "x", "--priority", "9", url=hub.url)
    assert r.returncode == 2 and "priority" in r.stderr
    r = hive("tasks", "submit", "--type", "x", "--depends-on", "ghost", url=hub.url)
    assert r.returncode == 2 and "dependency_not_found" in r.stderr
    r = hive("watch", "--types", "not_an_event", url=hub.url)
    assert r.returncode == 2 and "invalid_input" in r.stderr


def test_unreachable_hub_exits_3() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    r = hive("status", url=dead)
    assert r.returncode == 3 and "hub_unreachable" in r.stderr
    r = hive("tasks", "list", env=_env(HIVE_URL=dead))
    assert r.returncode == 3 and "hub_unreachable" in r.stderr


@pytest.mark.parametrize(
    ("flag", "value"), [("--port", "70000"), ("--max-body", "-1"), ("--heartbeat-timeout", "-5")]
)
def test_serve_with_a_bad_number_exits_2_before_starting(tmp_path: Path, flag: str, value: str) -> None:
    db = tmp_path / "never.db"
    r = hive("serve", "--db", str(db), "--no-demo", flag, value, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert f"argument {flag}: must be" in r.stderr, r.stderr
    assert not db.exists()  # nothing started


def test_serve_on_a_port_in_use_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "never.db"
        r = hive("serve", "--db", str(db), "--no-demo", "--port", str(port), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip().splitlines()[-1] == f"error: port {port} is in use; try --port or HIVE_PORT"
    assert "Traceback" not in r.stderr
    assert not db.exists()  # the database was not opened


def test_global_options_before_the_command(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    r = subprocess.run(
        [sys.executable, "-m", "hivehub", "--url", hub.url, "status", "--json"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30 * TIME_SCALE,
    )
    assert r.returncode == 0, r.stderr
    assert "agents" in json.loads(r.stdout) or "metrics" in json.loads(r.stdout)


def test_tasks_show_prints_the_attempts_from_the_log(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    tid = f"cli-{uuid.uuid4().hex[:8]}"
    r = hive("tasks", "submit", "--type", "echo", "--require", "x", "--id", tid, "--wait", url=hub.url)
    assert r.returncode == 0, r.stderr
    body = hub.get(f"/api/tasks/{tid}/attempts")
    agent_id = hub.get(f"/api/tasks/{tid}")["assigned_agent_id"]
    assert body["task_id"] == tid and len(body["attempts"]) == 1
    a = body["attempts"][0]
    assert (a["attempt"], a["agent_id"], a["outcome"]) == (1, agent_id, "completed")
    assert a["started_at"] and a["ended_at"] and a["execution_time_ms"] >= 0
    shown = hive("tasks", "show", tid, url=hub.url)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "attempts" in text and agent_id in text and "completed" in text
    js = json.loads(hive("tasks", "show", tid, "--json", url=hub.url).stdout)
    assert js["attempts"] == body["attempts"]
    status, err = hub.request("GET", "/api/tasks/no-such-task/attempts")
    assert status == 404 and err["error"]["code"] == "task_not_found"


def test_unique_id_prefixes_stand_for_the_whole_id(env: tuple[Hub, AgentProc]) -> None:
    hub, _ = env
    tag = uuid.uuid4().hex[:6]
    for suffix in ("1", "2"):
        r = hive(
            "tasks", "submit", "--type", "echo", "--require", "x", "--id", f"{tag}-twin-{suffix}", url=hub.url
        )
        assert r.returncode == 0, r.stderr
    r = hive("tasks", "submit", "--type", "echo", "--require", "x", "--id", f"{tag}-only-one", url=hub.url)
    assert r.returncode == 0, r.stderr
    shown = json.loads(hive("tasks", "show", f"{tag}-only", "--json", url=hub.url).stdout)
    assert shown["id"] == f"{tag}-only-one"
    r = hive("tasks", "show", f"{tag}-twin", url=hub.url)
    assert r.returncode == 2 and "ambiguous" in r.stderr
    assert f"{tag}-twin-1" in r.stderr and f"{tag}-twin-2" in r.stderr
    exact = json.loads(hive("tasks", "show", f"{tag}-twin-1", "--json", url=hub.url).stdout)
    assert exact["id"] == f"{tag}-twin-1"
    r = hive("tasks", "show", f"{tag}-none", url=hub.url)
    assert r.returncode == 2 and "task_not_found" in r.stderr
    agent_id = hub.get("/api/agents")["agents"][0]["id"]
    shown = json.loads(hive("agents", "show", agent_id[:6], "--json", url=hub.url).stdout)
    assert shown["id"] == agent_id


def test_an_id_prefix_finds_a_task_evicted_from_memory(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hive.db", "--retain-finished", "1").start()
    agent = AgentProc(hub.ws_url, "evict-echo", ["x:0.9"], "tests.e2e.handlers:echo", log_dir=tmp_path)
    try:
        tag = uuid.uuid4().hex[:8]
        for n in ("old", "new1", "new2"):
            r = hive(
                "tasks",
                "submit",
                "--type",
                "echo",
                "--require",
                "x",
                "--id",
                f"{tag}-{n}",
                "--wait",
                url=hub.url,
            )
            assert r.returncode == 0, r.stderr
        in_memory = {t["id"] for t in hub.get("/api/tasks")["tasks"]}
        assert f"{tag}-old" not in in_memory  # evicted: only the log has it
        shown = json.loads(hive("tasks", "show", f"{tag}-ol", "--json", url=hub.url).stdout)
        assert shown["id"] == f"{tag}-old" and shown["status"] == "completed"
    finally:
        agent.stop()
        hub.stop()
