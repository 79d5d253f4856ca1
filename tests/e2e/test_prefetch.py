"""Prefetch with real processes: ``hive agent`` as the CLI starts it (one slot, the
default prefetch) against a real hub. Every task records each run of its handler
as a file (``handlers.counted``), so "ran exactly once, there" is read from disk,
not from what the hub believes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.test_agents import online, submit, task_ends
from tests.hubproc import Hub, wait_for

H = "tests.e2e.handlers:counted"


def runs_of(runs: Path, tid: str) -> list[str]:
    """The agents that ran ``tid``, one entry per run."""
    return sorted(p.name.split(".")[1] for p in runs.glob(f"{tid}.*"))


def task(hub: Hub, runs: Path, release: Path | None = None) -> str:
    body: dict[str, Any] = {"runs": str(runs)}
    if release is not None:
        body["release"] = str(release)
    return str(submit(hub, type="x", required_capabilities=[{"name": "x"}], input=body)["id"])


def assigned_to(hub: Hub, tid: str, agent_id: str) -> bool:
    t = hub.get(f"/api/tasks/{tid}")
    return bool(t["status"] == "assigned" and t["assigned_agent_id"] == agent_id)


def warm_up(hub: Hub, runs: Path, n: int = 3) -> None:
    """Fast tasks first, so the hub has measured the task time and uses the full depth."""
    for tid in [task(hub, runs) for _ in range(n)]:
        task_ends(hub, tid)


def prefetched(hub: Hub, tid: str) -> bool:
    events = [e["data"] for e in hub.events(types="task_assigned") if e["data"]["task_id"] == tid]
    return bool(events and events[-1].get("prefetched"))


def three_prefetched_behind_a_blocker(
    hub: Hub, runs: Path, release: Path, agent_id: str
) -> tuple[str, list[str]]:
    """After a warm-up (so the hub sizes the depth from measured task times), one task
    that runs until ``release`` exists and three behind it, all assigned to ``agent_id``."""
    warm_up(hub, runs)
    blocker = task(hub, runs, release)
    waiting = [task(hub, runs) for _ in range(3)]
    wait_for(
        lambda: all(assigned_to(hub, t, agent_id) for t in waiting), 20, what="three tasks prefetched by A"
    )
    return blocker, waiting


def test_a_cancelled_prefetched_task_never_runs(hub: Hub, agents, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    agents(hub, "A", ["x:0.9"], H)
    a = online(hub, "A")
    release = tmp_path / "release"
    blocker = task(hub, runs, release)
    victim = task(hub, runs)
    wait_for(lambda: assigned_to(hub, victim, a["id"]), 20, what="the second task prefetched by A")
    assert prefetched(hub, victim)
    hub.post(f"/api/tasks/{victim}/cancel", {"reason": "not needed"}, expect=200)
    release.touch()
    task_ends(hub, blocker)
    after = task(hub, runs)  # A's queue has moved past where the cancelled task was
    task_ends(hub, after)
    task_ends(hub, victim, "cancelled")
    assert runs_of(runs, victim) == []
    assert runs_of(runs, blocker) == runs_of(runs, after) == ["A"]


def test_prefetched_work_moves_to_an_idle_agent_and_runs_once(hub: Hub, agents, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    agents(hub, "A", ["x:0.9"], H)
    a = online(hub, "A")
    release = tmp_path / "release"
    blocker, waiting = three_prefetched_behind_a_blocker(hub, runs, release, a["id"])
    agents(hub, "B", ["x:0.5"], H)  # a slot free, nothing queued: A's waiting work is recalled for it
    for t in waiting:
        assert task_ends(hub, t)["result"]["agent"] == "B"
        assert runs_of(runs, t) == ["B"]
    recalled = {e["data"]["task_id"] for e in hub.events(types="task_recalled")}
    released = {
        e["data"]["task_id"] for e in hub.events(types="task_released") if e["data"]["reason"] == "recalled"
    }
    assert set(waiting) <= recalled and set(waiting) <= released
    assert hub.get(f"/api/tasks/{blocker}")["status"] == "running"
    release.touch()
    task_ends(hub, blocker)
    assert runs_of(runs, blocker) == ["A"]


def test_an_agent_killed_with_prefetched_work(hub: Hub, agents, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = agents(hub, "A", ["x:0.9"], H)
    a = online(hub, "A")
    release = tmp_path / "release"
    blocker, waiting = three_prefetched_behind_a_blocker(hub, runs, release, a["id"])
    proc.kill()  # kill -9 with one task running and three queued
    release.touch()
    agents(hub, "B", ["x:0.5"], H)
    for t in [blocker, *waiting]:
        assert task_ends(hub, t, timeout=40)["result"]["agent"] == "B"
    for t in waiting:
        assert runs_of(runs, t) == ["B"]  # never started on A, run once on B
    assert runs_of(runs, blocker) == ["A", "B"]  # it had started on A: at least once, finished on B


def test_a_hub_restart_with_prefetched_work(hub_factory, agents, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    flags = ("--heartbeat-timeout", "5", "--retry-base", "0.05", "--retry-cap", "0.2")
    hub = hub_factory(*flags).start()
    agents(hub, "A", ["x:0.9"], H)
    a = online(hub, "A")
    release = tmp_path / "release"
    blocker, waiting = three_prefetched_behind_a_blocker(hub, runs, release, a["id"])
    hub.kill()
    hub2 = hub_factory(*flags, port=hub.port).start()
    online(hub2, "A")  # it reconnects and resumes the running task; the hub sends its queue again
    release.touch()
    for t in [blocker, *waiting]:
        assert task_ends(hub2, t)["result"]["agent"] == "A"
        assert runs_of(runs, t) == ["A"]  # nothing ran twice, nothing was lost
