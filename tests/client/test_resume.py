"""The stream resumes on its own across a hub killed with -9 and restarted on the
same log and port, and across 1013 slow-consumer cut-offs: every sequence is
delivered exactly once, with no gap."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from hivehub.client import CLOSE_SLOW, HiveClient
from tests.client.conftest import Collector, task_ids
from tests.hubproc import Hub


def _tcp_max(name: str) -> int:
    """The kernel's ceiling for a TCP socket buffer (the third of /proc/sys/net/ipv4/<name>)."""
    p = Path("/proc/sys/net/ipv4") / name
    return int(p.read_text().split()[2]) if p.exists() else 8 << 20


def assert_gapless(items: list[dict], upto: int) -> None:
    seqs = [e["sequence"] for e in items if e.get("sequence")]
    assert seqs == list(range(1, upto + 1)), f"not exactly once in order: {seqs}"


async def test_resume_after_hub_kill_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    first = Hub(db, "--heartbeat-timeout", "120").start()
    second: Hub | None = None
    states: list[str] = []
    try:
        async with HiveClient(first.url, timeout=10) as c:
            await c.register_agent("idle-worker", capabilities={"unused": 0.5})
            stream = c.stream(
                since=0, backoff_base=0.05, backoff_cap=0.5, on_state=lambda s, _: states.append(s)
            )
            col = Collector(stream)
            before = [(await c.submit_task(type="resume", id=f"before-{i}"))["id"] for i in range(5)]
            await col.until(lambda xs: set(before) <= set(task_ids(xs)), what="the tasks before the kill")
            read_before = len(col.items)

            await asyncio.to_thread(first.kill)
            second = Hub(db, "--heartbeat-timeout", "120", port=first.port)
            await asyncio.to_thread(second.start)
            after = [(await c.submit_task(type="resume", id=f"after-{i}"))["id"] for i in range(5)]
            await col.until(lambda xs: set(after) <= set(task_ids(xs)), what="the tasks after the restart")

            assert stream.reconnects >= 1 and "disconnected" in states
            assert read_before < len(col.items)
            top = max(e["sequence"] for e in col.items)
            assert_gapless(col.items, top)
            # and it is the log: same events, same order
            log = [e async for e in c.iter_events(0)]
            assert [e["message_id"] for e in col.items] == [e["message_id"] for e in log[:top]]
            assert task_ids(col.items) == before + after
            assert stream.last_sequence == top
            await col.stop()
    finally:
        if second is not None:
            second.stop()
        first.stop()


async def test_slow_consumer_cut_off_resumes_from_the_reason(tmp_path: Path) -> None:
    """A tiny hub-side buffer and a consumer that does not read: the hub closes the
    stream with 1013 "resume with since=N", and the client, once read, resumes."""
    hub = Hub(tmp_path / "hive.db", "--subscriber-buffer", "2").start()
    try:
        async with HiveClient(hub.url, timeout=10) as c:
            stream = c.stream(since=0, types="task_created", backoff_base=0.05, backoff_cap=0.2, max_queue=1)
            await stream.wait_connected(10)
            # Nobody consumes yet: the stream stops reading at its one-message queue,
            # the kernel's socket buffers fill, then the hub's transport buffer, and
            # the hub queues for this subscriber: past 2 messages it is cut off (it
            # leaves the fan-out at once). A subscriber that keeps up is written to
            # directly and never queues, so it has to fall behind for real.
            # ~40 KB events (an input of base64 of random bytes, which deflate cannot
            # shrink much): the flood is bounded by the socket buffers' ceilings.
            ceiling = sum(_tcp_max(k) for k in ("tcp_wmem", "tcp_rmem")) + (4 << 20)
            submitted: list[str] = []
            cut = False
            for burst in range(ceiling // (10 * 30_000) + 2):
                specs = [
                    {
                        "type": "burst",
                        "id": f"b{burst}-{i}",
                        "input": {"blob": base64.b64encode(os.urandom(30_000)).decode()},
                    }
                    for i in range(10)
                ]
                submitted += [t["id"] for t in await c.submit_tasks(specs)]
                status = await c.status()
                if status["subscribers"] == 0:
                    cut = True
                    break
            assert cut, f"still subscribed after {len(submitted)} events of ~40 KB"
            col = Collector(stream)
            await col.until(
                lambda xs: any(code == CLOSE_SLOW for code, _ in stream.disconnects),
                timeout=20,
                what="the 1013",
            )
            assert any(code == CLOSE_SLOW and "since=" in reason for code, reason in stream.disconnects), (
                stream.disconnects
            )
            await col.until(
                lambda xs: len(task_ids(xs)) >= len(submitted), timeout=20, what="every task_created"
            )
            got = task_ids(col.items)
            assert sorted(got) == sorted(submitted) and len(got) == len(set(got))  # each exactly once
            seqs = [e["sequence"] for e in col.items]
            assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
            created = [e async for e in c.iter_events(0, types="task_created")]
            assert [e["sequence"] for e in created] == seqs  # all of them, in log order
            await col.stop()
    finally:
        hub.stop()
