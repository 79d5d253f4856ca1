"""Task decisions (``core/tasks.py``): the batch submission is one command, all or nothing."""

from __future__ import annotations

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import SubmitTask, SubmitTasks, TaskSpec
from hivehub.core.errors import DependencyNotFound, HiveError, InvalidInput, TaskExists
from hivehub.core.model import TaskStatus

from ._harness import Sim, at, of, reqs
from ._state import full_state

TS = TaskStatus


def ready_hive() -> Sim:
    s = Sim()
    s.register("a", {"x": 0.9}, t=0, max_tasks=2)
    s.submit("old", {"nobody": 0.1}, t=0)
    return s


@pytest.mark.parametrize(
    ("third", "error"),
    [
        (TaskSpec(id="t3", depends_on=["no-such-task"]), DependencyNotFound),
        (TaskSpec(id="t3", depends_on=["t3"]), InvalidInput),  # itself
        (TaskSpec(id="t3", depends_on=["t4"]), DependencyNotFound),  # a later task of the batch
        (TaskSpec(id="old"), TaskExists),  # an id that is taken
        (TaskSpec(id="t1"), InvalidInput),  # twice in the batch
    ],
)
def test_a_batch_whose_third_task_is_invalid_leaves_no_trace(third: TaskSpec, error: type[HiveError]) -> None:
    s = ready_hive()
    before = full_state(s.hive, volatile=True)
    specs = [TaskSpec(id="t1"), TaskSpec(id="t2", depends_on=["t1"]), third, TaskSpec(id="t4")]
    with pytest.raises(error) as exc:
        s.do(SubmitTasks(id="req", specs=specs), 1)
    assert full_state(s.hive, volatile=True) == before
    assert "t1" not in s.hive.tasks and "t2" not in s.hive.tasks
    if not isinstance(exc.value, InvalidInput) or "duplicate" not in exc.value.message:
        assert exc.value.details["index"] == 2


def test_a_batch_decides_as_the_single_submissions_it_stands_for() -> None:
    specs = [
        TaskSpec(id="t1", required_capabilities=reqs({"x": 0.5}), priority="low"),
        TaskSpec(id="t2", depends_on=["t1"]),
        TaskSpec(id="t3", required_capabilities=reqs({"x": 0.5}), priority="critical"),
        TaskSpec(id="t4", required_capabilities=reqs({"x": 0.5})),
    ]
    batch, single = ready_hive(), ready_hive()
    out = batch.do(SubmitTasks(id="req", specs=specs, created_by="u"), 1)
    one_by_one = [
        e
        for i, spec in enumerate(specs)
        for e in single.do(SubmitTask(id=f"req#{i}", spec=spec, created_by="u"), 1)
    ]

    def plain(events: list[ev.Event]) -> list[tuple[str, object]]:
        return [(e.type, msgspec.to_builtins(e.data)) for e in events]

    assert plain(out) == plain(one_by_one)
    assert [d.task.id for d in of(out, ev.TaskCreated)] == ["t1", "t2", "t3", "t4"]
    assert {d.caused_by for d in of(out, ev.TaskCreated)} == {"req#0", "req#1", "req#2", "req#3"}
    # the first two with a slot took the agent's two slots, as one at a time would have
    assert [d.task_id for d in of(out, ev.TaskAssigned)] == ["t1", "t3"]
    assert batch.task("t2").status == TS.PENDING and batch.task("t2").depends_on == ["t1"]
    assert full_state(batch.hive) == full_state(single.hive)


def test_a_batch_task_depending_on_a_failed_task_fails_at_once_and_the_rest_is_created() -> None:
    s = ready_hive()
    s.submit("dead", t=0, max_retries=0)
    s.fail("dead", t=0, retryable=False)
    out = s.do(SubmitTasks(specs=[TaskSpec(id="t1", depends_on=["dead"]), TaskSpec(id="t2")]), 1)
    assert [d.task.id for d in of(out, ev.TaskCreated)] == ["t1", "t2"]
    failed = of(out, ev.TaskFailed)
    assert [(d.task_id, d.failure_kind) for d in failed] == [("t1", "dependency_failed")]
    assert s.task("t1").status == TS.FAILED and s.task("t2").status == TS.ASSIGNED


def test_generated_ids_and_no_command_id() -> None:
    s = ready_hive()
    out = s.hive.handle(SubmitTasks(specs=[TaskSpec(), TaskSpec()]), at(1))
    created = of(out, ev.TaskCreated)
    assert len({d.task.id for d in created}) == 2
    assert all(d.caused_by is None for d in created)
