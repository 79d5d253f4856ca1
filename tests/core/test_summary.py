"""The history tables' changes (``core/summary.py``) agree with the task fold and the log."""

from __future__ import annotations

from hivehub.core import events as ev
from hivehub.core.model import TaskStatus
from hivehub.core.summary import (
    SeriesRow,
    TaskSummary,
    apply_change,
    bucket_plan,
    fold_series,
    history_of,
    percentile,
    unix,
)
from hivehub.core.tasklog import fold_task

from .test_hive import busy_history
from .test_retention import events_of


def fold_summaries(events: list[ev.Event]) -> dict[str, TaskSummary]:
    rows: dict[str, TaskSummary] = {}
    for e in events:
        change, _ = history_of(e)
        if change is not None:
            apply_change(rows, change)
    return rows


class TestSummary:
    def test_every_task_summary_agrees_with_its_fold(self) -> None:
        s = busy_history()
        stored = [ev.decode_event(b) for b in s.wire]  # as the backfill reads them
        rows = fold_summaries(stored)
        assert set(rows) == set(s.hive.tasks)
        for task_id, row in rows.items():
            t = fold_task(events_of(stored, task_id))
            assert t is not None
            assert row.status == t.status.value, task_id
            assert row.type == t.type and row.description == t.description and row.priority == t.priority
            assert row.owner == t.owner
            assert row.created_sequence == t.created_sequence
            assert row.created_at == unix(t.created_at) and row.updated_at == unix(t.updated_at)
            assert row.attempts == t.attempt and row.failures == t.failures, task_id
            assert row.error_code == (t.error.code if t.error else None), task_id
            if t.assigned_agent_id is not None:
                assert row.agent_id == t.assigned_agent_id
            final = t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
            assert (row.finished_at is not None) == final, task_id
            if final:
                assert row.finished_at == unix(t.completed_at)  # type: ignore[arg-type]
            if t.started_at is not None:
                assert row.started_at == unix(t.started_at)
            assert row.tokens == (t.usage.total_tokens if t.usage else 0)

    def test_live_events_and_decoded_ones_give_the_same_changes(self) -> None:
        s = busy_history()
        decoded = [ev.decode_event(b) for b in s.wire]
        assert [history_of(e) for e in s.log] == [history_of(e) for e in decoded]

    def test_proficiency_points_come_from_registration_updates_and_learning(self) -> None:
        s = busy_history()
        points = [p for e in s.log for p in history_of(e)[1]]
        assert {p.agent_id for p in points} >= {"a", "b", "c"}
        b = [(p.capability, p.proficiency) for p in points if p.agent_id == "b" and p.capability]
        assert b[:1] == [("x", 0.6)] and ("z", 0.5) in b  # registered, then patched
        assert all(p.at > 0 and p.sequence > 0 for p in points)
        seqs = [p.sequence for p in points]
        assert seqs == sorted(seqs)

    def test_a_change_of_a_task_without_its_created_is_ignored(self) -> None:
        s = busy_history()
        rows = fold_summaries([e for e in s.log if not isinstance(e.data, ev.TaskCreated)])
        assert rows == {}


def row(status: str, created: float, started: float | None, finished: float | None, **kw: float) -> SeriesRow:
    return SeriesRow(
        status,
        created,
        started,
        finished,
        kw.get("retried"),
        kw.get("latency"),
        int(kw.get("tokens", 0)),
        0.0,
    )


class TestSeries:
    def test_bucket_plan_caps_the_buckets_and_aligns_them(self) -> None:
        start, n, step = bucket_plan(300, None, now=1000.5)
        assert (n, step) == (300, 1) and start == 701
        start, n, step = bucket_plan(86400, None, now=100_000)
        assert n <= 300 and step == 300 and start % step == 0 and start + n * step > 100_000
        assert bucket_plan(3600, 1, now=0)[2] == 12  # a step asked too small gives at most 300 buckets

    def test_counts_latency_and_states_per_bucket(self) -> None:
        rows = [
            row("completed", 0, 5, 15, latency=100),  # pending [0,5), running [5,15), then completed
            row("completed", 1, 2, 25, latency=300),
            row("failed", 12, 13, 18, retried=14),
            row("pending", 21, None, None),
            row("running", 22, 23, None),
            row("cancelled", 3, None, 4),  # cancelled while pending
        ]
        out = fold_series(rows, start=0, n=3, step=10, finished_before={"completed": 7})
        assert out["t"] == [0, 10, 20]
        assert out["created"] == [3, 1, 2]
        assert out["completed"] == [0, 1, 1] and out["failed"] == [0, 1, 0] and out["cancelled"] == [1, 0, 0]
        assert out["retried"] == [0, 1, 0]
        assert out["latency_p50_ms"] == [None, 100, 300]
        st = out["by_state"]
        assert st["completed"] == [7, 8, 9]
        assert st["cancelled"] == [1, 1, 1]
        assert st["pending"] == [0, 0, 1]  # both early ones started by 10; at 30: the pending one
        assert st["running"] == [2, 1, 1]
        assert st["failed"] == [0, 1, 1]

    def test_percentiles_by_nearest_rank(self) -> None:
        vals = [float(v) for v in range(1, 101)]
        assert percentile(vals, 50) == 50 and percentile(vals, 95) == 95 and percentile(vals, 99) == 99
        assert percentile([], 50) is None and percentile([7.0], 99) == 7


def test_combined_changes_have_the_effect_of_both() -> None:
    from hivehub.core.summary import SummaryChange, combine

    s = busy_history()
    for task_id in s.hive.tasks:
        changes = [c for e in s.log if (c := history_of(e)[0]) is not None and c.task_id == task_id]
        create, rest = changes[0], changes[1:]
        one: dict[str, TaskSummary] = {}
        apply_change(one, create)
        for c in rest:
            apply_change(one, c)
        both: dict[str, TaskSummary] = {}
        apply_change(both, create)
        if rest:
            acc = rest[0]
            for c in rest[1:]:
                acc = combine(acc, c)
            apply_change(both, acc)
        assert both == one, task_id
    reset = SummaryChange("t", set={"failures": 0}, add_failures=0)
    assert combine(SummaryChange("t", add_failures=1), reset).add_failures == 0
