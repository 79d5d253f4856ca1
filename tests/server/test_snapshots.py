"""Start-up from a snapshot (``server/snapshots.py``): the service writes snapshots
while it runs and at a clean stop, starts from the newest usable one and folds
only the events after it, and falls back (an older snapshot, else the whole log,
with a WARNING) when one is corrupt, of another version or other settings, or
does not match the log. Each start is compared with a full replay of a copy of
the same log, in every field."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hivehub.core.commands import AgentSpec, CompleteTask, RegisterAgent, StartTask, SubmitTask, TaskSpec
from hivehub.core.hive import HiveConfig
from hivehub.core.model import Capability
from hivehub.server.service import HubService
from hivehub.store import open_store
from hivehub.store import snapshot as S
from hivehub.store.memory import MemoryEventStore
from tests.core._state import differences, full_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = HiveConfig(heartbeat_timeout=600, retain_finished=5)


class Clock:
    """One frozen clock for every service of a test (wall = T0 + mono), so a
    restored hive and a full replay read the same times."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    def mono(self) -> float:
        return self.t


def service(store_path: Path | str, clock: Clock, **kw: object) -> HubService:
    store = MemoryEventStore() if store_path == "memory" else open_store(str(store_path))
    return HubService(
        store,
        hive_config=kw.pop("hive_config", CONFIG),  # type: ignore[arg-type]
        clock=clock.now,
        monotonic=clock.mono,
        **kw,  # type: ignore[arg-type]
    )


async def drive(svc: HubService, clock: Clock, tasks: int, start: int = 0) -> None:
    """An agent and ``tasks`` tasks, most run to the end, some left running or queued."""
    if start == 0:
        await svc.execute(
            RegisterAgent(
                id="reg",
                spec=AgentSpec(
                    name="w", id="w", capabilities=[Capability("etl", 0.9)], max_concurrent_tasks=3
                ),
            )
        )
    for i in range(start, start + tasks):
        clock.t += 0.5
        await svc.execute(SubmitTask(id=f"s{i}", spec=TaskSpec(id=f"t{i}", type="etl", timeout_seconds=900)))
        t = svc.hive.tasks[f"t{i}"]
        if t.assigned_agent_id and i % 4 != 3:
            await svc.execute(StartTask(id=f"st{i}", task_id=t.id, agent_id="w", attempt=t.attempt))
            if i % 4 != 2:
                await svc.execute(
                    CompleteTask(id=f"c{i}", task_id=t.id, agent_id="w", attempt=t.attempt, result={"i": i})
                )


async def crash(svc: HubService) -> None:
    """What kill -9 leaves: everything committed stays, no shutdown code runs
    (no final snapshot); the one in flight is let finish (see the e2e test for
    a kill in the middle of one)."""
    for t in svc._tasks:
        t.cancel()
    await asyncio.gather(*svc._tasks, return_exceptions=True)
    await svc.snapshots.wait()
    await svc.store.close()


def drop_snapshots(db: Path) -> None:
    c = sqlite3.connect(db)
    c.execute("DELETE FROM snapshots")
    c.commit()
    c.close()


async def started(db: Path, clock: Clock, **kw: object) -> HubService:
    svc = service(db, clock, **kw)
    await svc.start()
    return svc


async def assert_same_as_full_replay(svc: HubService, db: Path, tmp_path: Path, clock: Clock) -> None:
    """``svc`` (started on ``db``) holds what a hub folding a copy of the log
    without its snapshots holds, in every field (both started on the same clock)."""
    copy = tmp_path / f"full-{svc.hive.sequence}.db"
    await svc.stop()
    shutil.copy(db, copy)
    drop_snapshots(copy)
    # the first service executed Recover at its start: the copy holds it too, so a
    # full replay started now (without another Recover) must equal it
    full = service(copy, clock)
    await full.store.open()
    await full._rebuild()
    await full.store.close()
    assert full.snapshots.started_from == 0
    # the live hive drained its timers at each Tick; a replay holds them until then
    for h in (full.hive, svc.hive):
        h.drain_timers(clock.mono())
    a, b = full_state(full.hive), full_state(svc.hive)
    assert a == b, "\n".join(differences(a, b))


async def test_a_restart_folds_only_the_events_after_the_newest_snapshot(tmp_path: Path) -> None:
    db, clock = tmp_path / "hive.db", Clock()
    first = await started(db, clock, snapshot_events=25)
    await drive(first, clock, 40)
    head = first.hive.sequence
    await crash(first)
    stored = await snapshots_in(db)
    assert stored and 0 < stored[0] < head  # (a crash writes none at the head)

    again = await started(db, clock, snapshot_events=25)
    assert again.snapshots.started_from == stored[0]
    assert again.hive.tasks.keys() == {f"t{i}" for i in range(40)} - evicted(again)
    await drive(again, clock, 10, start=40)  # and goes on from there
    await assert_same_as_full_replay(again, db, tmp_path, clock)


def evicted(svc: HubService) -> set[str]:
    return set(svc.hive.evicted)


async def snapshots_in(db: Path) -> list[int]:
    store = open_store(str(db))
    await store.open()
    try:
        return [s.sequence for s in await store.snapshots()]
    finally:
        await store.close()


async def test_a_clean_stop_writes_one_at_the_head(tmp_path: Path) -> None:
    db, clock = tmp_path / "hive.db", Clock()
    first = await started(db, clock, snapshot_events=1000, snapshot_seconds=0)
    await drive(first, clock, 12)
    head = first.hive.sequence
    await first.stop()
    assert (await snapshots_in(db))[0] == head
    again = await started(db, clock)  # snapshots are read even with writing off
    assert again.snapshots.started_from == head
    await assert_same_as_full_replay(again, db, tmp_path, clock)


async def test_due_by_time_once_events_came(tmp_path: Path) -> None:
    db, clock = tmp_path / "hive.db", Clock()
    svc = await started(db, clock, snapshot_events=0, snapshot_seconds=0.05)
    await drive(svc, clock, 2)
    await asyncio.sleep(0.1)  # the interval is the injected monotonic clock's
    clock.t += 1
    await drive(svc, clock, 1, start=2)
    await svc.snapshots.wait()
    assert svc.snapshots.written >= 1
    await crash(svc)
    assert await snapshots_in(db)


async def test_a_follower_starts_from_the_snapshot(tmp_path: Path) -> None:
    db, clock = tmp_path / "hive.db", Clock()
    first = await started(db, clock, snapshot_events=10)
    await drive(first, clock, 8)
    await first.stop()
    follower = service(db, clock)
    await follower.start(follower=True)
    try:
        assert follower.role == "follower"
        assert follower.snapshots.started_from == follower.hive.sequence == first.hive.sequence
    finally:
        await follower.stop()


async def corrupt(db: Path, sequence: int | None = None, **values: object) -> None:
    """Set columns of the stored snapshots (``body``: what its pieces hold)."""
    c = sqlite3.connect(db)
    where = "" if sequence is None else f" WHERE sequence = {sequence}"
    for k, v in values.items():
        if k == "body":  # its pieces (store/sqlite_snapshots.py): one, holding v
            blobs = "SELECT blob FROM snapshot_blobs" + where
            c.execute(f"DELETE FROM snapshot_chunks WHERE blob IN ({blobs}) AND n > 0")
            c.execute(f"UPDATE snapshot_chunks SET data = ? WHERE blob IN ({blobs})", (v,))
        else:
            c.execute(f"UPDATE snapshots SET {k} = ?{where}", (v,))
    c.commit()
    c.close()


async def two_snapshots(tmp_path: Path) -> tuple[Path, Clock, list[int]]:
    db, clock = tmp_path / "hive.db", Clock()
    first = await started(db, clock, snapshot_events=20)
    for part in range(3):
        await drive(first, clock, 10, start=10 * part)
        await first.snapshots.wait()  # (one is written at a time: let each finish)
    await crash(first)
    seqs = await snapshots_in(db)
    assert len(seqs) == 2, seqs
    return db, clock, seqs


async def test_a_corrupt_snapshot_falls_back_to_the_older_one(tmp_path: Path, caplog) -> None:
    db, clock, seqs = await two_snapshots(tmp_path)
    await corrupt(db, seqs[0], body=b"\x93\x01\x02garbage")
    with caplog.at_level(logging.WARNING, "hivehub.snapshots"):
        again = await started(db, clock)
    assert again.snapshots.started_from == seqs[1]
    assert f"snapshot at {seqs[0]} not used: the snapshot does not decode" in caplog.text
    await assert_same_as_full_replay(again, db, tmp_path, clock)


async def test_truncated_snapshots_fall_back_to_a_full_replay(tmp_path: Path, caplog) -> None:
    db, clock, seqs = await two_snapshots(tmp_path)
    c = sqlite3.connect(db)
    c.execute("UPDATE snapshot_chunks SET data = substr(data, 1, length(data) / 2)")
    c.commit()
    c.close()
    with caplog.at_level(logging.WARNING, "hivehub.snapshots"):
        again = await started(db, clock)
    assert again.snapshots.started_from == 0
    assert "no usable snapshot: replaying the whole log" in caplog.text
    await assert_same_as_full_replay(again, db, tmp_path, clock)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("format", S.FORMAT - 1, "snapshot format"),
        ("schema", "an older state", "snapshot schema"),
    ],
)
async def test_an_old_version_is_not_used(
    tmp_path: Path, caplog, column: str, value: object, reason: str
) -> None:
    db, clock, _ = await two_snapshots(tmp_path)
    await corrupt(db, **{column: value})
    with caplog.at_level(logging.WARNING, "hivehub.snapshots"):
        again = await started(db, clock)
    assert again.snapshots.started_from == 0
    assert reason in caplog.text and "replaying the whole log" in caplog.text
    await assert_same_as_full_replay(again, db, tmp_path, clock)


async def test_other_retention_settings_replay_the_log(tmp_path: Path, caplog) -> None:
    """A snapshot folded with ``retain_finished=5`` holds other tasks in memory than
    a hub with ``retain_finished=2`` folds: that hub must not use it."""
    db, clock, _ = await two_snapshots(tmp_path)
    other = HiveConfig(heartbeat_timeout=600, retain_finished=2)
    with caplog.at_level(logging.WARNING, "hivehub.snapshots"):
        again = await started(db, clock, hive_config=other)
    assert again.snapshots.started_from == 0
    assert "other core settings" in caplog.text
    assert len(again.hive._finished) <= 2
    await again.stop()


async def test_a_snapshot_beyond_the_log_or_of_another_log_is_not_trusted(tmp_path: Path, caplog) -> None:
    db, clock, seqs = await two_snapshots(tmp_path)
    store = open_store(str(db))
    await store.open()
    (head,) = [e.sequence for e in await store.read(0, 100_000)][-1:]
    newest = (await store.snapshots())[0]
    # a snapshot of a longer log (the log was restored from an older backup); the
    # store keeps it and the newest of the two before
    await store.save_snapshot(newest._replace(sequence=head + 40))
    await store.close()
    await corrupt(db, seqs[0], head="0" * 32)  # the log holds another event there
    with caplog.at_level(logging.WARNING, "hivehub.snapshots"):
        again = await started(db, clock)
    assert again.snapshots.started_from == 0
    assert f"snapshot at {head + 40} not used: the log does not reach sequence {head + 40}" in caplog.text
    assert f"snapshot at {seqs[0]} not used: the log holds another event at {seqs[0]}" in caplog.text
    await assert_same_as_full_replay(again, db, tmp_path, clock)


async def test_a_restored_hive_keeps_its_deadlines_on_another_monotonic_clock(tmp_path: Path) -> None:
    """A snapshot written where the monotonic clock read 100 is used where it reads
    5,000,100 (a reboot, another machine): the service reads its clock on the
    snapshot's axis, so a held task still times out when its timeout says."""
    db, clock = tmp_path / "hive.db", Clock()
    first = await started(db, clock, snapshot_events=1)
    await drive(first, clock, 1)  # t0 is running (timeout 900 s)
    await first.stop()
    later = Clock()
    later.t = clock.t
    svc = service(db, later)
    svc._monotonic = lambda: later.t + 5_000_000.0  # the same wall clock, another monotonic one
    await svc.start()
    try:
        assert svc.snapshots.started_from > 0
        assert svc.clock().timestamp() - svc.monotonic() == pytest.approx(svc.hive.mono_offset)
        due = svc.hive.next_deadline()
        assert due is not None and 0 < due - svc.monotonic() <= 900
    finally:
        await svc.stop()
