"""``hive serve`` with its demo shows the hive at work within a minute: tasks that run
for a second or more with progress, real failures and a retry that succeeds on
another agent, a learning cycle and a rebalance. A real hub process, its own demo
agents and workload, observed through the REST event log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.hubproc import Hub, wait_for


@pytest.fixture
def demo_hub(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub(tmp_path / "hive.db", "--demo").start()
    try:
        yield hub
    finally:
        hub.stop()


def _at(e: dict[str, Any]) -> float:
    return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()


class Seen:
    """What the event log shows so far."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        by_type: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by_type.setdefault(e["type"], []).append(e)
        self.of = lambda t: by_type.get(t, [])

    def long_tasks_with_progress(self) -> list[str]:
        """Attempts that ran >= 1 s (started -> completed) with progress in between."""
        started = {
            (e["data"]["task_id"], e["data"]["attempt_number"]): _at(e) for e in self.of("task_started")
        }
        progressed = {e["data"]["task_id"] for e in self.of("task_progress") if 0 < e["data"]["progress"] < 1}
        out = []
        for e in self.of("task_completed"):
            d = e["data"]
            t0 = started.get((d["task_id"], d["attempt_number"]))
            if t0 is not None and _at(e) - t0 >= 1.0 and d["task_id"] in progressed:
                out.append(d["task_id"])
        return out

    def retried_and_completed_elsewhere(self) -> list[str]:
        failed = {
            e["data"]["task_id"]: e["data"]["agent_id"]
            for e in self.of("task_failed")
            if e["data"]["retry_scheduled"]
        }
        return [
            e["data"]["task_id"]
            for e in self.of("task_completed")
            if e["data"]["task_id"] in failed and e["data"]["agent_id"] != failed[e["data"]["task_id"]]
        ]

    def failure_codes(self) -> set[str]:
        return {e["data"]["error"]["code"] for e in self.of("task_failed")}

    def rebalanced(self) -> list[dict[str, Any]]:
        """Waiting work that moved to another agent: recalled from its holder
        (``task_recalled``), handed back (``task_released``, ``recalled``) and assigned
        elsewhere; each move's data gains ``previous_agent_id``, the holder."""
        recalled = {e["data"]["task_id"] for e in self.of("task_recalled")}
        released = {
            e["data"]["task_id"]: e["data"]["agent_id"]
            for e in self.of("task_released")
            if e["data"]["reason"] == "recalled" and e["data"]["task_id"] in recalled
        }
        moves = []
        for e in self.of("task_assigned"):
            holder = released.get(e["data"]["task_id"])
            if holder is not None and e["data"]["agent_id"] != holder:
                moves.append({**e, "data": {**e["data"], "previous_agent_id": holder}})
        return moves

    def everything(self) -> bool:
        return bool(
            self.long_tasks_with_progress()
            and self.retried_and_completed_elsewhere()
            and {"DATA_QUALITY", "FACTORIZATION_BUDGET_EXCEEDED", "TIME_BUDGET_EXCEEDED"}
            <= self.failure_codes()
            and self.of("learning_cycle_completed")
            and self.rebalanced()
        )


def test_the_demo_shows_the_hive_working_within_a_minute(demo_hub: Hub) -> None:
    seen: list[Seen] = []

    def look() -> bool:
        s = Seen(demo_hub.events())
        seen[:] = [s]
        return s.everything()

    try:
        wait_for(
            look, 70, interval=2.0, what="the demo's long tasks, failures, retry, learning and rebalance"
        )
    except AssertionError:
        s = seen[0] if seen else Seen([])
        raise AssertionError(
            f"after 70 s: long tasks {len(s.long_tasks_with_progress())}, "
            f"retried elsewhere {s.retried_and_completed_elsewhere()}, failures {s.failure_codes()}, "
            f"learning {len(s.of('learning_cycle_completed'))}, rebalanced {len(s.rebalanced())}"
        ) from None
    s = seen[0]
    first = _at(s.events[0])
    # the story is the opening minute's, not a lucky later one
    assert _at(s.of("learning_cycle_completed")[0]) - first < 60
    assert _at(s.rebalanced()[0]) - first < 60
    moved = s.rebalanced()[0]["data"]
    assert (
        moved["previous_agent_id"] == "demo-dataprocessor-1"
        and moved["agent_id"] != moved["previous_agent_id"]
    )
    cycle = s.of("learning_cycle_completed")[0]["data"]
    assert cycle["agent_id"].startswith("demo-")
    descriptions = [e["data"]["task"]["description"] for e in s.of("task_created")]
    assert descriptions and all(
        re.search(r"\d", d) and not re.search(r"\b(to|of|up|for)$", d) for d in descriptions
    ), descriptions
