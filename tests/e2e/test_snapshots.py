"""Snapshots with the real hub process: killed with -9 while it writes snapshots,
it starts again from one (or falls back), loses nothing acknowledged, and
serves what a hub folding the whole log serves."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

from tests.hubproc import Hub, wait_for

from .test_restart import all_pages, logged

#: one snapshot per committed batch: one is being written nearly all the time
EVERY_BATCH = ("--snapshot-events", "1", "--heartbeat-timeout", "120")


def copy_db(src: Path, dst: Path) -> None:
    """The database as the killed process left it (with its WAL: committed batches)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")


def served(h: Hub) -> dict[str, Any]:
    return {
        "tasks": [logged(t) for t in all_pages(h, "/api/tasks", "tasks")],
        # (``last_seen_at`` is volatile: each hub's Recover stamps its own start)
        "agents": [
            {k: v for k, v in a.items() if k != "last_seen_at"} for a in all_pages(h, "/api/agents", "agents")
        ],
        "metrics": h.get("/api/hive/status")["metrics"],
    }


def test_killed_while_writing_snapshots_starts_from_one_and_serves_the_full_replay(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    h = Hub(db, *EVERY_BATCH, log_dir=tmp_path).start()
    acked: list[str] = []
    stop = threading.Event()
    try:
        for i in range(2):
            h.post(
                "/api/agents",
                {
                    "name": f"w{i}",
                    "capabilities": [{"name": "etl", "proficiency": 0.8}],
                    "max_concurrent_tasks": 4,
                },
                expect=201,
            )

        def submit() -> None:
            n = 0
            while not stop.is_set():
                try:
                    batch = h.post(
                        "/api/tasks/batch",
                        {"tasks": [{"type": "etl", "input": {"n": n + k}} for k in range(40)]},
                    )
                except OSError:
                    return  # the hub was killed
                if isinstance(batch, dict) and "tasks" in batch:
                    acked.extend(t["id"] for t in batch["tasks"])
                n += 40

        writer = threading.Thread(target=submit, daemon=True)
        writer.start()
        wait_for(
            lambda: len(re.findall(r"snapshot at \d+", h.logs())) >= 5, 60, what="five snapshots written"
        )
        h.kill()
        stop.set()
        writer.join(30)
    finally:
        stop.set()
        h.stop()
    assert acked

    full_db = tmp_path / "full.db"
    copy_db(db, full_db)
    c = sqlite3.connect(full_db)
    c.execute("DELETE FROM snapshots")
    c.commit()
    c.close()

    again = Hub(db, *EVERY_BATCH, log_dir=tmp_path).start()
    try:
        started = re.search(r"started from the snapshot at (\d+)", again.logs())
        assert started, again.logs()[-3000:]
        for tid in acked[:: max(1, len(acked) // 50)] + acked[-5:]:
            assert again.get(f"/api/tasks/{tid}")["id"] == tid  # nothing acknowledged is lost
        restarted = served(again)
    finally:
        again.stop()
    full = Hub(full_db, "--heartbeat-timeout", "120", log_dir=tmp_path).start()
    try:
        assert "started from the snapshot" not in full.logs()
        replayed = served(full)
    finally:
        full.stop()
    assert restarted == replayed
