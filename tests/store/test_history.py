"""The history tables (task summary, agent points): one contract over every backend."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from typing import Any

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import CancelTask, RetryTask
from hivehub.core.events import encode_event
from hivehub.core.model import Task, TaskStatus
from hivehub.core.summary import (
    FINAL,
    SERIES_STATES,
    SeriesRow,
    TaskSummary,
    fold_series,
    history_of,
    percentile,
    state_bucket,
    unix,
)
from hivehub.core.tasklog import task_id_of
from hivehub.store import open_store
from hivehub.store.base import EventStore, NewEvent, TaskQuery

from ..core._harness import NO_HEARTBEAT_EXPIRY, T0, Sim
from .test_contract import PG, store  # noqa: F401 (the fixture over every backend)


def rows_of(s: Sim) -> list[NewEvent]:
    return [NewEvent(e.sequence, e.type, encode_event(e), task_id_of(e.data), *history_of(e)) for e in s.log]


def scenario() -> Sim:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    s.register("a", {"x": 0.8}, t=0, max_tasks=50)
    for i in range(30):
        s.submit(
            f"t{i:02d}", t=1 + i, type="etl" if i % 3 == 0 else "report", description=f"Compute primes {i}"
        )
    for i in range(0, 30, 2):
        s.complete(f"t{i:02d}", t=40 + i)
    s.fail("t01", t=50, retryable=False, code="BOOM_ERROR")
    s.do(CancelTask(task_id="t03", cancelled_by="u"), 51)
    s.do(RetryTask(task_id="t03"), 52)
    s.start("t05", t=53)
    return s


async def test_the_summary_follows_the_log_and_pages_newest_first(store: EventStore) -> None:  # noqa: F811
    s = scenario()
    rows = rows_of(s)
    await store.append(rows[: len(rows) // 2])
    await store.append(rows[len(rows) // 2 :])
    page = await store.history_tasks(TaskQuery(limit=10))
    assert page.total == 30
    assert [t.id for t in page.tasks] == [f"t{i:02d}" for i in range(29, 19, -1)]
    seen = [t.id for t in page.tasks]
    while page.next_before is not None:
        page = await store.history_tasks(TaskQuery(limit=10, before=page.next_before))
        seen += [t.id for t in page.tasks]
    assert seen == [f"t{i:02d}" for i in range(29, -1, -1)]
    by_id = {t.id: t for t in (await store.history_tasks(TaskQuery(limit=100))).tasks}
    for task_id, t in s.hive.tasks.items():
        row = by_id[task_id]
        assert row.status == t.status.value and row.attempts == t.attempt and row.failures == t.failures
        assert row.created_sequence == t.created_sequence and row.owner == t.owner
        assert row.updated_at == pytest.approx(unix(t.updated_at))
    assert by_id["t01"].error_code == "BOOM_ERROR" and by_id["t01"].finished_at is not None
    assert by_id["t03"].status == "assigned" and by_id["t03"].retried_at is not None
    assert by_id["t05"].status == "running" and by_id["t05"].agent_id == "a"


async def test_filters_and_search(store: EventStore) -> None:  # noqa: F811
    await store.append(rows_of(scenario()))

    async def ids(**kw: object) -> list[str]:
        return [t.id for t in (await store.history_tasks(TaskQuery(limit=100, **kw))).tasks]  # type: ignore[arg-type]

    done = [f"t{i:02d}" for i in range(28, -1, -2)]
    assert await ids(statuses=("completed",)) == done
    both = await ids(statuses=("completed", "failed"))
    assert both == sorted([*done, "t01"], reverse=True)
    page = await store.history_tasks(TaskQuery(statuses=("completed", "failed"), limit=4))
    assert [t.id for t in page.tasks] == both[:4] and page.total == 16
    page = await store.history_tasks(
        TaskQuery(statuses=("completed", "failed"), limit=4, before=page.next_before)
    )
    assert [t.id for t in page.tasks] == both[4:8]
    assert await ids(type="etl") == [f"t{i:02d}" for i in range(27, -1, -3)]
    assert await ids(agent_id="a", statuses=("running",)) == ["t05"]
    assert await ids(owner="anonymous") == await ids()
    assert await ids(owner="nobody") == []
    t0 = unix(T0)
    assert await ids(created_from=t0 + 10, created_to=t0 + 13) == ["t11", "t10", "t09"]
    assert await ids(text="primes 2") == [
        "t29",
        "t28",
        "t27",
        "t26",
        "t25",
        "t24",
        "t23",
        "t22",
        "t21",
        "t20",
        "t02",
    ]
    assert await ids(text="PRIMES 17") == ["t17"]
    assert await ids(text="boom_err") == ["t01"]  # the error code ("_" is no wildcard)
    assert await ids(text="t1") == [f"t{i:02d}" for i in range(19, 9, -1)]  # shorter than a trigram
    assert await ids(text="%") == [] and await ids(text='"') == []
    assert await ids(text="primes 1", type="etl") == ["t18", "t15", "t12"]
    page = await store.history_tasks(TaskQuery(text="primes", limit=5, with_total=False))
    assert len(page.tasks) == 5 and page.next_before is not None


async def test_series_rows_fold_into_counts_and_states(store: EventStore) -> None:  # noqa: F811
    await store.append(rows_of(scenario()))
    t0 = unix(T0)
    rows, before = await store.series_rows(t0 + 45, t0 + 65)
    out = fold_series(rows, t0 + 45, 2, 10, before)
    assert sum(before.values()) == 3  # t00, t02, t04 completed at 40, 42, 44
    assert out["completed"] == [5, 5] and out["failed"] == [1, 0]
    # t03 was cancelled, then retried: it counts as it stands now (not finished)
    assert out["cancelled"] == [0, 0] and out["retried"] == [1, 0]
    assert out["by_state"]["completed"] == [8, 13] and out["by_state"]["failed"] == [1, 1]
    rows, before = await store.series_rows(t0 + 45, t0 + 65, agent_id="a")
    assert len([r for r in rows if r.status == "completed"]) == 12 and before == {"completed": 3}


async def test_agent_points_keep_each_proficiency_reading(store: EventStore) -> None:  # noqa: F811
    await store.append(rows_of(scenario()))
    points = await store.agent_points("a")
    assert [(p.capability, p.proficiency) for p in points if p.capability][:1] == [("x", 0.8)]
    assert await store.agent_points("nobody") == []
    later = await store.agent_points("a", since=unix(T0) + 10_000)
    assert later and all(p.capability is not None for p in later)  # every proficiency reading, no report
    assert len(points) > len(later)  # (the performance reports of the completions)


async def test_a_duplicate_id_replaces_its_row(store: EventStore) -> None:  # noqa: F811
    s = Sim(NO_HEARTBEAT_EXPIRY)
    s.submit("dup", t=1, description="first")
    rows = rows_of(s)
    created = next(e for e in s.log if isinstance(e.data, ev.TaskCreated))
    assert isinstance(created.data, ev.TaskCreated)
    again = ev.TaskCreated(
        task=Task(**{**_fields(created.data.task), "description": "second"}),
        matching_agents=0,
        timestamp=created.data.timestamp + timedelta(seconds=1),
    )
    e2 = ev.Event(again.TYPE, again, again.timestamp, "m2", rows[-1].sequence + 1)
    await store.append(rows)
    await store.append([NewEvent(e2.sequence, e2.type, encode_event(e2), "dup", *history_of(e2))])
    page = await store.history_tasks(TaskQuery(limit=10))
    assert [(t.id, t.description) for t in page.tasks] == [("dup", "second")] and page.total == 1
    assert [t.id for t in (await store.history_tasks(TaskQuery(text="first"))).tasks] == []


def _fields(t: Task) -> dict[str, object]:
    return {f: getattr(t, f) for f in t.__struct_fields__}


async def test_a_sqlite_log_written_before_the_history_is_backfilled(tmp_path) -> None:
    path = str(tmp_path / "v2.db")
    s = open_store(path)
    await s.open()
    await s.close()
    c = sqlite3.connect(path)  # make it a log of schema 2: no history tables, events only
    for stmt in ("DROP TABLE task_fts", "DROP TABLE task_summary", "DROP TABLE agent_points"):
        c.execute(stmt)
    c.execute("DELETE FROM meta WHERE key = 'history_sequence'")
    c.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    sim = scenario()
    c.executemany(
        "INSERT INTO events(sequence, type, body, task_id) VALUES (?, ?, ?, ?)",
        [(r.sequence, r.type, r.body, r.task_id) for r in rows_of(sim)],
    )
    c.commit()
    c.close()
    import hivehub.store.base as base

    old, base.BACKFILL_BATCH = base.BACKFILL_BATCH, 7  # several batches
    try:
        import hivehub.store.sqlite as sq

        sq.BACKFILL_BATCH = 7
        s = open_store(path)
        await s.open()
    finally:
        base.BACKFILL_BATCH = old
        sq.BACKFILL_BATCH = old
    try:
        page = await s.history_tasks(TaskQuery(limit=100))
        assert page.total == 30 and {t.id: t.status for t in page.tasks} == {
            i: t.status.value for i, t in sim.hive.tasks.items()
        }
        assert [t.id for t in (await s.history_tasks(TaskQuery(text="primes 17"))).tasks] == ["t17"]
        assert await s.agent_points("a")
    finally:
        await s.close()


async def test_a_postgres_log_written_before_the_history_is_backfilled() -> None:
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = f"{PG}?schema={schema}"
    s = open_store(url)
    await s.open()
    await s.close()
    sim = scenario()
    c = await asyncpg.connect(PG)
    try:
        await c.execute(f'SET search_path TO "{schema}"')
        await c.execute("DROP TABLE task_summary, agent_points, history_state")
        await c.execute("DELETE FROM schema_migrations WHERE version = 4")
        await c.executemany(
            "INSERT INTO events(sequence, type, body, task_id) VALUES ($1, $2, $3, $4)",
            [(r.sequence, r.type, r.body, r.task_id) for r in rows_of(sim)],
        )
        s = open_store(url)
        await s.open()
        try:
            page = await s.history_tasks(TaskQuery(limit=100))
            assert page.total == 30
            assert {t.id: t.status for t in page.tasks} == {
                i: t.status.value for i, t in sim.hive.tasks.items()
            }
            assert [t.id for t in (await s.history_tasks(TaskQuery(text="primes 17"))).tasks] == ["t17"]
        finally:
            await s.close()
    finally:
        await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await c.close()


def test_summary_rows_are_plain_values() -> None:
    assert TaskSummary.__struct_fields__[0] == "id"
    assert TaskStatus.COMPLETED.value == "completed"


async def test_one_batch_or_one_event_at_a_time_give_the_same_rows(store: EventStore, tmp_path) -> None:  # noqa: F811
    # a batch writes each task's row once (changes combined: store/history_sql.plan)
    rows = rows_of(scenario())
    await store.append(rows)
    one = open_store("memory")
    for r in rows:
        await one.append([r])
    want = await one.history_tasks(TaskQuery(limit=100))
    got = await store.history_tasks(TaskQuery(limit=100))
    assert [(t.id, t.status, t.failures, t.attempts, t.error_code, t.finished_at) for t in got.tasks] == [
        (t.id, t.status, t.failures, t.attempts, t.error_code, t.finished_at) for t in want.tasks
    ]
    assert got.tasks == want.tasks


async def test_total_is_counted_up_to_the_cap(store: EventStore) -> None:  # noqa: F811
    from hivehub.core.summary import SummaryChange
    from hivehub.store.base import TOTAL_CAP

    n = TOTAL_CAP + 5
    rows = []
    for i in range(1, n + 1):
        row = TaskSummary(
            id=f"c{i}",
            type="big" if i <= TOTAL_CAP + 1 else "small",
            description=f"capped {i}",
            status="pending",
            priority=2,
            owner="o",
            created_at=float(i),
            updated_at=float(i),
            created_sequence=i,
        )
        rows.append(NewEvent(i, "task_created", b"{}", row.id, SummaryChange(row.id, create=row)))
    await store.append(rows)
    assert (await store.history_tasks(TaskQuery(limit=1))).total == n  # every task: exact
    page = await store.history_tasks(TaskQuery(type="big", limit=2))
    assert page.total is None and [t.id for t in page.tasks] == [f"c{TOTAL_CAP + 1}", f"c{TOTAL_CAP}"]
    assert (await store.history_tasks(TaskQuery(type="small"))).total == 4
    assert (await store.history_tasks(TaskQuery(text="capped 1000"))).total == 7  # 1000, 10000..10005


def _text_index_ok(path: str) -> None:
    c = sqlite3.connect(path)
    try:  # FTS5 checks its index against the rows' text (external content)
        c.execute("INSERT INTO task_fts(task_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        c.close()


async def test_sqlite_text_index_follows_each_error_change_flush_by_flush(tmp_path) -> None:
    s = Sim(NO_HEARTBEAT_EXPIRY)
    s.register("a", {"x": 0.8}, t=0, max_tasks=5)
    s.submit("r1", t=1, description="retried then fine", max_retries=2)
    s.submit("f1", t=1, description="fails for good", max_retries=0)
    s.fail("r1", t=2, code="DISK_FULL")  # retried: the error text stays until the retry ends
    s.fail("f1", t=2, code="DISK_FULL", retryable=False)
    s.tick(60)  # the retry is due and assigned again
    s.complete("r1", t=61)  # clears the error
    path = str(tmp_path / "h.db")
    st = open_store(path)
    await st.open()
    seen = []
    try:
        for r in rows_of(s):  # a read after each event: each a flush of its own
            await st.append([r])
            seen.append({t.id for t in (await st.history_tasks(TaskQuery(text="disk_full"))).tasks})
        assert {"r1", "f1"} in seen and seen[-1] == {"f1"}
        assert [t.id for t in (await st.history_tasks(TaskQuery(text="then fine"))).tasks] == ["r1"]
    finally:
        await st.close()
    _text_index_ok(path)


_CRASH = """
import asyncio, os, pickle, sys
from hivehub.store import open_store
async def main():
    s = open_store(sys.argv[1])
    await s.open()
    await s.append(pickle.loads(sys.stdin.buffer.read()))
    os._exit(0)  # the events are committed; the history write still waits for its flush
asyncio.run(main())
"""


async def test_sqlite_history_not_yet_written_at_a_crash_is_rebuilt_on_open(tmp_path) -> None:
    import pickle
    import subprocess
    import sys

    path = str(tmp_path / "h.db")
    sim = scenario()
    rows = rows_of(sim)
    subprocess.run([sys.executable, "-c", _CRASH, path], input=pickle.dumps(rows), check=True, timeout=60)
    c = sqlite3.connect(path)
    assert c.execute("SELECT COUNT(*) FROM events").fetchone()[0] == len(rows)
    assert c.execute("SELECT COUNT(*) FROM task_summary").fetchone()[0] == 0  # (what the crash lost)
    c.close()
    st = open_store(path)
    await st.open()
    try:
        page = await st.history_tasks(TaskQuery(limit=100))
        assert {t.id: t.status for t in page.tasks} == {i: t.status.value for i, t in sim.hive.tasks.items()}
        assert [t.id for t in (await st.history_tasks(TaskQuery(text="primes 17"))).tasks] == ["t17"]
    finally:
        await st.close()
    _text_index_ok(path)


def busy_log() -> Sim:
    """A real core's log with every way a task goes: completed (with latencies and
    tokens), failed and retried, failed for good, cancelled, still running, still
    pending, on three agents, over 15 minutes."""
    from hivehub.core.model import UsageReport

    s = Sim(NO_HEARTBEAT_EXPIRY)
    for a in ("a", "b", "c"):
        s.register(a, {"x": 0.8}, t=0, max_tasks=40)
    for i in range(240):
        tid, t = f"k{i:03d}", 1 + i * 3.7
        s.submit(tid, t=t, description=f"task {i}", max_retries=1)
        if i % 11 == 5:
            continue  # still pending or assigned
        s.start(tid, t=t + 0.5 + (i % 7))
        if i % 13 == 7:
            continue  # still running
        done = t + 2 + (i * 37 % 50) / 3
        if i % 9 == 4:
            s.fail(tid, t=done, code="FLAKY")  # retried later
        elif i % 17 == 3:
            s.fail(tid, t=done, code="BROKEN", retryable=False)
        elif i % 19 == 2:
            s.do(CancelTask(task_id=tid, cancelled_by="u"), done)
        else:
            s.complete(tid, t=done, usage=UsageReport(model="m", prompt_tokens=i, completion_tokens=3))
        if i % 40 == 39:
            s.tick(done + 30)  # due retries are assigned again
    return s


def reference_fold(
    rows: list[SeriesRow], start: float, n: int, step: float, finished_before: dict[str, int]
) -> dict[str, Any]:
    """core.summary.fold_series as first written: each rule spelled out, row by row."""
    end = start + n * step
    names = ("created", "completed", "failed", "cancelled", "retried", "tokens", "cost_usd")
    counts: dict[str, list[float]] = {k: [0] * n for k in names}
    latencies: list[list[float]] = [[] for _ in range(n)]
    # state deltas: +1 at the bucket where a state is entered, -1 where it is left;
    # a time before the window enters at index 0, after it is never reached
    delta = {k: [0] * (n + 1) for k in SERIES_STATES}
    for k, v in finished_before.items():
        if k in delta:
            delta[k][0] += v

    def idx(at: float) -> int:
        return int((at - start) // step)

    def enter(state: str, at: float | None, sign: int) -> None:
        if at is None or at >= end:
            return
        delta[state][max(0, idx(at))] += sign

    for r in rows:
        if r.created_at >= end or (r.finished_at is not None and r.finished_at < start):
            continue
        if r.created_at >= start:
            counts["created"][idx(r.created_at)] += 1
        if r.retried_at is not None and start <= r.retried_at < end:
            counts["retried"][idx(r.retried_at)] += 1
        final = r.finished_at is not None and r.status in FINAL
        if final and r.finished_at is not None and r.finished_at >= start:
            i = idx(r.finished_at)
            if i < n:
                if r.status in counts:
                    counts[r.status][i] += 1
                counts["tokens"][i] += r.tokens
                counts["cost_usd"][i] += r.cost_usd
                if r.status == TaskStatus.COMPLETED.value and r.latency_ms is not None:
                    latencies[i].append(r.latency_ms)
        # pending from created; running from started; final from finished
        started = r.started_at if r.started_at is not None and r.started_at >= r.created_at else None
        stop_pending = started if started is not None else (r.finished_at if final else None)
        if not final and state_bucket(r.status) == "pending":
            started = None  # re-queued: pending again now (its last start was cleared)
            stop_pending = None
        enter("pending", r.created_at, 1)
        enter("pending", stop_pending, -1)
        if started is not None:
            enter("running", started, 1)
            if final:
                enter("running", r.finished_at, -1)
        if final:
            enter(r.status, r.finished_at, 1)
    by_state: dict[str, list[int]] = {}
    for k, d in delta.items():
        acc, out = 0, []
        for i in range(n):
            acc += d[i]
            out.append(acc)
        by_state[k] = out
    p50, p95, p99 = [], [], []
    for vals in latencies:
        vals.sort()
        p50.append(percentile(vals, 50))
        p95.append(percentile(vals, 95))
        p99.append(percentile(vals, 99))
    return {
        "window": round(n * step),  # (the caller may report the window it was asked)
        "step": round(step),
        "t": [round(start + i * step) for i in range(n)],
        "created": counts["created"],
        "completed": counts["completed"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "retried": counts["retried"],
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "tokens": counts["tokens"],
        "cost_usd": [round(c, 9) for c in counts["cost_usd"]],
        "by_state": by_state,
    }


async def test_the_fast_fold_equals_the_reference_fold_on_a_real_log(store: EventStore) -> None:  # noqa: F811
    await store.append(rows_of(busy_log()))
    t0 = unix(T0)
    windows = [
        (t0 - 100, 60, 20.0),
        (t0 + 100, 50, 5.0),
        (t0 + 400, 37, 15.0),
        (t0 + 950, 10, 60.0),
        (t0 - 10, 2, 600.0),
    ]
    for start, n, step in windows:
        for agent in (None, "a", "nobody"):
            rows, before = await store.series_rows(start, start + n * step, agent)
            got = fold_series(rows, start, n, step, before)
            assert got == reference_fold(rows, start, n, step, before), (start, n, step, agent)
    rows, before = await store.series_rows(t0, t0 + 1000)
    busy = fold_series(rows, t0, 100, 10.0, before)
    assert sum(busy["completed"]) > 100 and sum(busy["failed"]) and sum(busy["retried"])
    assert any(v is not None for v in busy["latency_p99_ms"]) and sum(busy["tokens"]) > 0
    assert busy["by_state"]["running"][-1] > 0 and busy["by_state"]["pending"][-1] > 0
