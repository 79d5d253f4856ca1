"""The README's commands, run as written against a fresh hub started as ``make run``
starts it (with the demo agents): the "in another terminal" block of the quick start
with nothing activated, and the "Running" block after its own ``source
.venv/bin/activate``. Only the address changes: the hub listens on a free port, so
``localhost:3001`` becomes it and ``HIVE_URL`` points the ``hive`` commands at it.

Each command runs in a directory of its own with ``.venv`` linked to the project's,
so a command that writes beside it (``hive token create``: ``./data/hive.db``) writes
there. A command whose comment says "Ctrl-C to stop" runs until it has shown what it
is for, then gets SIGINT and must exit 0.

The other blocks have their own tests: ``make run``/``make test`` (tests/test_makefile.py),
the LLM demo (tests/e2e/test_llm.py runs the same model and agent), several replicas
(tests/e2e/test_cluster.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TIME_SCALE
from tests.hubproc import ROOT, Hub, wait_for

README = ROOT / "README.md"


def blocks() -> dict[str, list[str]]:
    """The bash blocks that follow "in another terminal" and "## Running": their commands
    (a trailing ``\\`` joins lines)."""
    text = README.read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    for key, marker in (("terminal", "Then, in another terminal"), ("running", "## Running")):
        at = text.index(marker)
        body = re.search(r"```bash\n(.*?)```", text[at:], re.S)
        assert body, f"no bash block after {marker!r}"
        out[key] = [
            c.strip()
            for c in body.group(1).replace("\\\n", " ").splitlines()
            if c.strip() and not c.strip().startswith("#")
        ]
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("readme")
    h = Hub(tmp / "hive.db", "--demo").start()
    try:
        wait_for(lambda: len(h.get("/api/agents")["agents"]) >= 3, 30, what="the demo agents")
        yield h
    finally:
        h.stop()


def shell_env(hub: Hub) -> dict[str, str]:
    venv_bin = str(ROOT / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HIVE_TOKEN", "HIVE_DB", "PYTHONPATH")
    }
    return {**env, "PATH": path, "HIVE_URL": hub.url, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"}


def workdir(tmp: Path) -> Path:
    (tmp / ".venv").symlink_to(ROOT / ".venv")
    return tmp


def run(line: str, hub: Hub, cwd: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    cmd = line.replace("localhost:3001", f"127.0.0.1:{hub.port}")
    script = f"{prelude}\n{cmd}" if prelude else cmd
    if "Ctrl-C to stop" not in line:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=shell_env(hub),
            capture_output=True,
            text=True,
            timeout=120 * TIME_SCALE,
        )
    # a command that runs until stopped: let it show something, then Ctrl-C
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {script}" if not prelude else f"{prelude}\nexec {cmd}"],
        cwd=cwd,
        env=shell_env(hub),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        before = {a["name"] for a in hub.get("/api/agents")["agents"]}
        deadline = time.monotonic() + 20 * TIME_SCALE
        while time.monotonic() < deadline and proc.poll() is None:
            now = {a["name"] for a in hub.get("/api/agents")["agents"]}
            if cmd.split()[:2] == ["hive", "agent"] and now - before:
                break
            time.sleep(0.2)
            if cmd.split()[:2] == ["hive", "watch"] and time.monotonic() > deadline - 17 * TIME_SCALE:
                break  # the watch has had 3 s to print the log so far
        assert proc.poll() is None, f"{line!r} exited early: {proc.communicate()}"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30 * TIME_SCALE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_quick_start_commands_work_as_written_without_activating_anything(
    hub: Hub, tmp_path: Path
) -> None:
    cwd = workdir(tmp_path)
    lines = blocks()["terminal"]
    assert lines and any(line.startswith("curl") for line in lines)
    for line in lines:
        r = run(line, hub, cwd)
        assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-2000:])
        assert r.stdout.strip(), f"{line!r} printed nothing"
        if "/health" in line:
            assert '"status"' in r.stdout
        if "-XPOST" in line and "/api/tasks" in line:
            assert '"id"' in r.stdout
        if "hive watch" in line:
            assert "task_created" in r.stdout and "agent_created" in r.stdout


def test_the_running_commands_work_as_written(hub: Hub, tmp_path: Path) -> None:
    cwd = workdir(tmp_path)
    lines = blocks()["running"]
    assert lines[0] == "source .venv/bin/activate"
    prelude = lines[0]
    for line in lines[1:]:
        r = run(line, hub, cwd, prelude)
        assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-2000:])
        if line.startswith("hive serve --help"):
            assert "--port" in r.stdout and "default: 3001" in " ".join(r.stdout.split())
        if line.startswith("hive tasks submit"):
            assert "completed" in r.stdout + r.stderr
        if line.split()[:2] == ["hive", "agent"]:
            created = hub.get("/api/events?since=0&types=agent_created&limit=10000")["events"]
            assert "my-analyst" in {e["data"]["agent"]["name"] for e in created}  # it joined the hive
        if line.startswith("hive token create"):
            assert r.stdout.strip().startswith("hv_") and "authentication is now on" in r.stderr
            assert (cwd / "data" / "hive.db").exists()  # beside the command, as hive serve would
