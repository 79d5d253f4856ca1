"""Batch frames (docs/agent-protocol.md 3.1): to a hub that announces ``max_batch``
the agent sends every report ready at once in one frame; to one that does not,
one report per frame."""

from __future__ import annotations

from typing import Any

from hivehub.agent import TaskContext

from .conftest import make_agent
from .fakehub import FakeWsHub, make_task


async def _run_three(hub: FakeWsHub, running: Any) -> list[dict[str, Any]]:
    agent = make_agent(hub, capabilities={"data_processing": 0.9}, max_concurrent_tasks=1)

    @agent.handler("data_processing")
    async def noop(ctx: TaskContext) -> dict[str, int]:
        return {"n": ctx.input["n"]}

    hub.assign_on_register.extend((make_task(f"t{i}", input={"n": i}), 1) for i in range(3))
    await running(agent)
    for i in range(3):
        await hub.wait("task_completed", task_id=f"t{i}")
    await hub.wait_until(lambda: agent.pending_reports == 0)  # every report acked, each on its own
    return [m for m in hub.received if m["type"].startswith("task_")]


async def test_a_fast_tasks_start_and_completion_go_in_one_frame(hub: FakeWsHub, running: Any) -> None:
    hub.extra_registered = {"max_batch": 16}
    reports = await _run_three(hub, running)
    # every report still arrives whole, in order, with its own message_id
    assert [(m["type"], m["data"]["task_id"]) for m in reports] == [
        (kind, f"t{i}") for i in range(3) for kind in ("task_started", "task_completed")
    ]
    assert len({m["message_id"] for m in reports}) == 6
    assert reports[1]["data"] == {"task_id": "t0", "attempt": 1, "result": {"n": 0}}
    frames = {m["frame"] for m in reports}
    for i in range(3):  # the handler returns at once: no frame between its start and its end
        started, done = reports[2 * i], reports[2 * i + 1]
        assert started["frame"] == done["frame"], reports
    assert len(frames) <= 3


async def test_a_batch_holds_at_most_max_batch_reports(hub: FakeWsHub, running: Any) -> None:
    hub.extra_registered = {"max_batch": 1}
    reports = await _run_three(hub, running)
    assert len({m["frame"] for m in reports}) == 6


async def test_a_hub_without_max_batch_gets_one_report_per_frame(hub: FakeWsHub, running: Any) -> None:
    reports = await _run_three(hub, running)
    assert len(reports) == 6
    assert len({m["frame"] for m in reports}) == 6
