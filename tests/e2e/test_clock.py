"""A step of the system clock changes no decision of a running hub (issue 11, item 4).

The hub runs under libfaketime (``scripts/system-deps.sh`` installs it): its wall
clock is read from ``FAKETIME_TIMESTAMP_FILE`` on every call (``FAKETIME_NO_CACHE``)
and the test steps it by rewriting the file, while the monotonic clock stays real
(``FAKETIME_DONT_FAKE_MONOTONIC``). The agents run on the real clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_agents import online, submit, task_ends, task_events
from tests.hubproc import Hub, wait_for

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
H = "tests.e2e.handlers"


@pytest.fixture
def stepped_hub(tmp_path: Path) -> Iterator[tuple[Hub, Path]]:
    if not LIBFAKETIME.exists():
        pytest.fail("libfaketime is missing: run scripts/system-deps.sh")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    h = Hub(tmp_path / "hive.db", "--heartbeat-timeout", "3", env=env).start()
    try:
        yield h, offset
    finally:
        h.stop()


def offline_reasons(hub: Hub, agent_id: str) -> list[str]:
    return [
        e["data"]["reason"]
        for e in hub.events(types="agent_status_changed")
        if e["data"]["agent_id"] == agent_id and e["data"]["new_status"] == "offline"
    ]


def test_wall_clock_step_forward_marks_no_agent_offline_and_runs_the_task_once(
    stepped_hub: tuple[Hub, Path], agents: Any, tmp_path: Path
) -> None:
    hub, offset = stepped_hub
    agents(hub, "A", ["x:0.9"], f"{H}:gate")
    agents(hub, "B", ["y:0.9"], f"{H}:echo")
    a, b = online(hub, "A"), online(hub, "B")
    release, started = tmp_path / "release", tmp_path / "started"
    t = submit(
        hub,
        type="x",
        required_capabilities=[{"name": "x"}],
        timeout_seconds=60,
        input={"release": str(release), "started": str(started)},
    )
    wait_for(started.exists, 20, what="the task to start on A")
    before = hub.get(f"/api/tasks/{t['id']}")
    assert (before["status"], before["attempt"]) == ("running", 1)

    offset.write_text("+120\n")  # the system clock jumps two minutes ahead

    # Witness that the hub has decided on the stepped clock for a while: an agent
    # registered after the step that never heartbeats goes offline after one
    # heartbeat timeout (3 s of real time). The ticker runs at least every 0.25 s,
    # so a wall-clock rule would long have timed out A, B and the task by then.
    silent = hub.post("/api/agents", {"name": "silent"}, expect=201)
    created_at = hub.get(f"/api/agents/{silent['id']}")["created_at"]
    assert created_at[:16] > before["started_at"][:16], "the hub runs on the stepped wall clock"
    wait_for(lambda: offline_reasons(hub, silent["id"]), 20, what="the silent agent to go offline")

    assert offline_reasons(hub, a["id"]) == [] and offline_reasons(hub, b["id"]) == []
    assert {
        x["status"] for x in hub.get("/api/agents?limit=100")["agents"] if x["id"] in (a["id"], b["id"])
    } <= {"idle", "active"}
    mid = hub.get(f"/api/tasks/{t['id']}")
    assert (mid["status"], mid["attempt"], mid["failures"]) == ("running", 1, 0)

    release.write_text("go")
    done = task_ends(hub, t["id"])
    assert (done["status"], done["attempt"], done["result"]["agent"]) == ("completed", 1, "A")
    history = [e["type"] for e in task_events(hub, t["id"])]
    assert history.count("task_assigned") == 1 and history.count("task_started") == 1
    assert "task_failed" not in history
    # the execution time is measured on the monotonic clock: no 120 s in it
    (completed,) = [e["data"] for e in task_events(hub, t["id"]) if e["type"] == "task_completed"]
    assert completed["execution_time_ms"] < 60_000
