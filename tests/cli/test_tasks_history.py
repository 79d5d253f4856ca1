"""``hive tasks list --all``: the history from the log, paged, as real subprocesses
against a real hub process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TIME_SCALE
from tests.hubproc import ROOT, Hub


def hive(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HIVE_URL", "HIVE_TOKEN")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "hivehub", *args, "--url", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30 * TIME_SCALE,
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(Path(tmp_path_factory.mktemp("hist")) / "hive.db").start()
    try:
        for i in range(7):
            h.post(
                "/api/tasks",
                {
                    "id": f"h{i}",
                    "type": "etl" if i % 2 else "report",
                    "description": f"Compute primes up to {i}000",
                    "required_capabilities": [{"name": "nobody"}],
                },
            )
        h.post("/api/tasks/h3/cancel", {})
        yield h
    finally:
        h.stop()


def test_all_pages_through_the_log_with_a_cursor_hint(hub: Hub) -> None:
    r = hive("tasks", "list", "--all", "--limit", "3", url=hub.url)
    assert r.returncode == 0, r.stderr
    assert "3 of 7 task(s) from the log" in r.stdout
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("h")]
    assert [ln.split()[0] for ln in lines] == ["h6", "h5", "h4"]
    assert "next page: hive tasks list --all --cursor " in r.stderr
    cursor = r.stderr.split("--cursor ")[1].split()[0]
    r = hive("tasks", "list", "--cursor", cursor, "--limit", "3", "--json", url=hub.url)
    assert r.returncode == 0, r.stderr
    page = json.loads(r.stdout)
    assert [t["id"] for t in page["tasks"]] == ["h3", "h2", "h1"] and page["next_cursor"]


def test_search_owner_status_and_time_filters(hub: Hub) -> None:
    def ids(*args: str) -> list[str]:
        r = hive("tasks", "list", *args, "--json", url=hub.url)
        assert r.returncode == 0, r.stderr
        return [t["id"] for t in json.loads(r.stdout)["tasks"]]

    assert ids("--search", "up to 5000") == ["h5"]
    assert ids("--all", "--status", "cancelled") == ["h3"]
    assert ids("--all", "--type", "etl") == ["h5", "h3", "h1"]
    assert ids("--owner", "anonymous") == [f"h{i}" for i in range(6, -1, -1)]
    assert ids("--owner", "someone") == []
    assert ids("--since", "2000-01-01", "--until", "2000-01-02") == []
    assert len(ids("--since", "2000-01-01T00:00:00Z")) == 7


def test_bad_values_are_clear_errors(hub: Hub) -> None:
    r = hive("tasks", "list", "--since", "yesterday", url=hub.url)
    assert r.returncode != 0 and "from" in r.stderr and "Traceback" not in r.stderr
    r = hive("tasks", "list", "--all", "--priority", "high", url=hub.url)
    assert r.returncode == 2 and "--priority" in r.stderr
    r = hive("tasks", "list", "--all", "--limit", "501", url=hub.url)
    assert r.returncode == 2 and "500" in r.stderr


def test_without_all_the_list_is_the_memory_one(hub: Hub) -> None:
    r = hive("tasks", "list", "--limit", "2", url=hub.url)
    assert r.returncode == 0, r.stderr
    assert "2 task(s), newest first" in r.stdout and "from the log" not in r.stdout
    assert "next page" not in r.stderr
