"""One task folded from its own events (``core/tasklog.py``) equals the live projection."""

from __future__ import annotations

import msgspec

from hivehub.core import events as ev
from hivehub.core.tasklog import fold_task

from ._harness import of
from .test_hive import busy_history
from .test_retention import events_of, finish, retaining


class TestFoldTask:
    def test_every_task_folds_from_its_own_events_to_its_live_projection(self) -> None:
        s = busy_history()
        assert len(s.hive.tasks) >= 7
        for task_id, t in s.hive.tasks.items():
            stored = [ev.decode_event(b) for b in s.wire]
            assert fold_task(events_of(stored, task_id)) == t, task_id

    def test_an_evicted_task_folds_to_what_it_was_before_eviction(self) -> None:
        s = retaining(1)
        s.submit("t1", t=1)
        s.progress("t1", 0.5, "a", t=2, current_step="half")
        s.complete("t1", "a", t=3, result={"n": 1})
        before = msgspec.json.encode(s.hive.tasks["t1"])
        finish(s, "t2", 4)
        assert "t1" in s.hive.evicted
        stored = [ev.decode_event(b) for b in s.wire]
        assert msgspec.json.encode(fold_task(events_of(stored, "t1"))) == before

    def test_events_of_other_tasks_are_ignored_and_no_created_is_none(self) -> None:
        s = retaining(5)
        finish(s, "t1", 1)
        finish(s, "t2", 2)
        assert fold_task(s.log) == s.hive.tasks["t1"]  # the first task_created names the task
        assert fold_task([e for e in s.log if not isinstance(e.data, ev.TaskCreated)]) is None
        assert of(s.log, ev.TaskCreated)[0].task.created_sequence == 0  # the event is not mutated
