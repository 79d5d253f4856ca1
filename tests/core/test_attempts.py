"""A task's attempts folded from its own events (``core/attempts.py``): one row per
attempt, with the agent, the times and how it ended, agreeing with the task itself."""

from __future__ import annotations

from hivehub.core import events as ev
from hivehub.core.attempts import fold_attempts

from ._harness import at
from .test_hive import busy_history
from .test_retention import events_of


def attempts_of(s, task_id: str):  # type: ignore[no-untyped-def]
    stored = [ev.decode_event(b) for b in s.wire]
    return fold_attempts(e.data for e in events_of(stored, task_id))


def test_each_task_has_as_many_attempts_as_it_made_and_the_last_one_matches_it() -> None:
    s = busy_history()
    for task_id, t in s.hive.tasks.items():
        rows = attempts_of(s, task_id)
        assert [r.attempt for r in rows] == list(range(1, t.attempt + 1)), task_id
        if rows:
            last = rows[-1]
            if t.status == "completed":
                assert last.outcome == "completed" and last.agent_id == t.assigned_agent_id
            if t.status == "failed" and t.error is not None and last.error is not None:
                assert last.outcome == "failed" and last.error.code == t.error.code
            assert all(r.ended_at is not None for r in rows[:-1]), (task_id, rows)


def test_failure_timeouts_release_and_the_open_attempt_of_a_flaky_task() -> None:
    s = busy_history()  # flaky: fails on a at 6, times out on b at 20 and on c at 45, released at 50
    rows = attempts_of(s, "flaky")
    assert [(r.attempt, r.agent_id, r.outcome, r.reason) for r in rows] == [
        (1, "a", "failed", "reported"),
        (2, "b", "failed", "timeout"),
        (3, "c", "failed", "timeout"),
        (4, "c", "released", "agent_shutdown"),
        (5, "c", "running", "retry"),
    ]
    assert rows[0].retry_scheduled is True and rows[0].error is not None
    assert (rows[0].assigned_at, rows[0].ended_at) == (at(5), at(6))
    assert rows[2].ended_at == at(45) and rows[4].ended_at is None
    assert s.task("flaky").attempt == 5 and s.task("flaky").assigned_agent_id == "c"


def test_a_task_never_assigned_has_no_attempts_and_a_dependency_failure_is_none() -> None:
    s = busy_history()
    assert s.hive.tasks["late"].status == "failed"
    assert attempts_of(s, "late") == []
