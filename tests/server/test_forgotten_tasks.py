"""Tasks the core has forgotten (``HiveConfig.remember_evicted``) keep every rule:
the hub reads their final status from the log when a command names one.

With ``retain_finished=1`` and ``remember_evicted=1`` a finished task leaves memory
after one more finishes and is forgotten after a third: the core then holds no
trace of it, and only the store (the memory store here) knows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hivehub.store import open_store

from .conftest import HiveConfig, Hub, HubFactory, MemoryStore

TINY = HiveConfig(retain_finished=1, remember_evicted=1, heartbeat_timeout=120)


async def run(hub: Hub, task_id: str, **spec: Any) -> dict[str, Any]:
    """Submit a task the pull agent ``a1`` claims and completes."""
    await hub.submit(id=task_id, required_capabilities=[{"name": "code"}], **spec)
    r = await hub.post("/api/agents/a1/claim?wait=0")
    assert r.status == 200 and r.body["task"]["id"] == task_id, r
    done = await hub.post(f"/api/tasks/{task_id}/complete", {"agent_id": "a1", "attempt": r.body["attempt"]})
    assert done.status == 200, done
    return done.body  # type: ignore[no-any-return]


async def forgetting_hub(hub_factory: HubFactory) -> Hub:
    hub = await hub_factory(db="memory", hive=TINY)
    await hub.register("w1", ["code"], id="a1")
    await run(hub, "done", description="long ago")
    await hub.submit(id="failed", required_capabilities=[{"name": "nobody"}])
    r = await hub.post("/api/tasks/failed/cancel", {"reason": "no longer needed"})
    assert r.status == 200, r
    for i in range(4):  # enough finished tasks after them that both are forgotten
        await run(hub, f"filler{i}")
    listed = [t["id"] for t in (await hub.get("/api/tasks")).body["tasks"]]
    assert "done" not in listed and "failed" not in listed
    return hub


async def test_a_forgotten_task_is_read_from_the_log(hub_factory: HubFactory) -> None:
    hub = await forgetting_hub(hub_factory)
    r = await hub.get("/api/tasks/done")
    assert r.status == 200, r
    assert (r.body["status"], r.body["description"], r.body["assigned_agent_id"]) == (
        "completed",
        "long ago",
        "a1",
    )
    missing = await hub.get("/api/tasks/never")
    assert (missing.status, missing.code) == (404, "task_not_found")
    status = (await hub.get("/api/hive/status")).body
    assert status["metrics"]["total_tasks"] == 6  # every task counts, forgotten or not


async def test_the_id_of_a_forgotten_task_is_still_taken(hub_factory: HubFactory) -> None:
    hub = await forgetting_hub(hub_factory)
    again = await hub.post("/api/tasks", {"id": "done"})
    assert (again.status, again.code) == (409, "task_exists"), again
    batch = await hub.post("/api/tasks/batch", {"tasks": [{"id": "fresh"}, {"id": "failed"}]})
    assert (batch.status, batch.code) == (409, "task_exists"), batch
    assert (await hub.get("/api/tasks/fresh")).status == 404  # the batch is all or nothing
    ok = await hub.post("/api/tasks", {"id": "fresh"})
    assert ok.status == 201, ok


async def test_dependencies_on_forgotten_tasks(hub_factory: HubFactory) -> None:
    hub = await forgetting_hub(hub_factory)
    child = await run(hub, "child", depends_on=["done"])  # a completed dependency: it runs
    assert child["status"] == "completed"
    orphan = await hub.post("/api/tasks", {"id": "orphan", "depends_on": ["failed"]})
    assert orphan.status == 201, orphan
    assert (orphan.body["status"], orphan.body["error"]["code"]) == ("failed", "DEPENDENCY_FAILED")
    unknown = await hub.post("/api/tasks", {"id": "x", "depends_on": ["never"]})
    assert (unknown.status, unknown.code) == (422, "dependency_not_found"), unknown


async def test_a_forgotten_task_can_no_longer_change(hub_factory: HubFactory) -> None:
    hub = await forgetting_hub(hub_factory)
    retried = await hub.post("/api/tasks/failed/retry", {})
    assert (retried.status, retried.code) == (409, "task_evicted"), retried
    assert retried.body["error"]["details"]["status"] == "cancelled"
    cancelled = await hub.post("/api/tasks/done/cancel", {})
    assert (cancelled.status, cancelled.code) == (409, "task_evicted"), cancelled
    stale = await hub.post("/api/tasks/done/complete", {"agent_id": "a1", "attempt": 1})
    assert (stale.status, stale.code) == (409, "not_task_holder"), stale
    nope = await hub.post("/api/tasks/never/retry", {})
    assert (nope.status, nope.code) == (404, "task_not_found"), nope


async def test_on_sqlite_and_after_a_restart(hub_factory: HubFactory, tmp_path: Path) -> None:
    """The SQLite log answers for forgotten tasks, also to a hub that folded it at start."""
    db = str(tmp_path / "forgotten.db")
    hub = await hub_factory(store=open_store(db), hive=TINY)
    await hub.register("w1", ["code"], id="a1")
    for i in range(4):
        await run(hub, f"t{i}")
    await hub.client.close()  # stop it; a second hub folds the same log
    again = await hub_factory(store=open_store(db), hive=TINY)
    assert (await again.get("/api/tasks/t0")).body["status"] == "completed"
    dup = await again.post("/api/tasks", {"id": "t0"})
    assert (dup.status, dup.code) == (409, "task_exists"), dup
    retried = await again.post("/api/tasks/t0/retry", {})
    assert (retried.status, retried.code) == (409, "task_evicted"), retried


async def test_commands_forwarded_by_a_follower_read_the_log_too() -> None:
    """``execute_each`` (what the leader runs for a follower's forwarded commands)
    looks up forgotten ids between commands, each accepted or refused on its own."""
    from hivehub.core.commands import CancelTask, RetryTask, SubmitTask, TaskSpec
    from hivehub.core.errors import TaskEvicted, TaskExists
    from hivehub.server.service import HubService

    service = HubService(MemoryStore(), hive_config=TINY)
    await service.start()
    try:
        for i in range(4):
            await service.execute(SubmitTask(spec=TaskSpec(id=f"t{i}")))
            await service.execute(CancelTask(task_id=f"t{i}"))
        assert service.hive.forgotten == 2
        out = await service.execute_each(
            [
                SubmitTask(spec=TaskSpec(id="t0")),
                SubmitTask(spec=TaskSpec(id="fresh", depends_on=["t1"])),
                RetryTask(task_id="t1"),
            ]
        )
        assert isinstance(out[0], TaskExists) and isinstance(out[2], TaskEvicted)
        assert isinstance(out[1], list) and service.hive.tasks["fresh"].status == "failed"
    finally:
        await service.stop()
