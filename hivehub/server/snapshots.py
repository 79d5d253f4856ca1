"""When the hub writes a snapshot of its folded state, and how it starts from one.

A snapshot (``store/snapshot.py``) is taken by the log writer at the moment it
takes a batch off the queue: then the hive holds exactly the events of that
batch and everything before it, no more (every event ``handle`` applies is
queued before the next ``await``), so the snapshot is of the state at the
batch's last sequence. It is stored only once that batch is committed, tagged
with that sequence and the digest of that event's body, on a background task,
so the writer goes on committing while a large one is written (SQLite writes it
in pieces, each a short transaction, then makes it current in one:
``store/sqlite_snapshots.py``). A crash at any point leaves either the previous
snapshots or the new one, each consistent with the log.

Due after ``every_events`` events or ``every_seconds`` seconds (with at least
one event) since the last one, and once more when the hub stops cleanly, so an
ordinary restart replays nothing.

At start (``restore``) the newest stored snapshot is used when the log holds
its very head event and its format, schema and core settings match; otherwise
the next older one; otherwise the whole log is replayed. Each refusal is a
WARNING with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..core.hive import Hive
from ..store.base import EventStore, Snapshot
from ..store.snapshot import SnapshotRejected, StateCodec, codec, head_digest

log = logging.getLogger("hivehub.snapshots")

__all__ = ["Snapshots"]


class Snapshots:
    def __init__(
        self,
        store: EventStore,
        *,
        every_events: int,
        every_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.monotonic = monotonic
        #: the sequence of the newest snapshot stored or started from
        self.sequence = 0
        #: the sequence of the snapshot the hub started from (0: it replayed the whole log)
        self.started_from = 0
        self._since = monotonic()
        self._writing: asyncio.Task[None] | None = None
        self._codec: StateCodec | None = None
        #: what the last one cost (status and logs): bytes, encode and write ms
        self.last_bytes = 0
        self.last_encode_ms = 0.0
        self.last_write_ms = 0.0
        self.written = 0

    @property
    def enabled(self) -> bool:
        return self.every_events > 0 or self.every_seconds > 0

    def codec(self) -> StateCodec:
        if self._codec is None:
            self._codec = codec(Hive)
        return self._codec

    # ----------------------------------------------------------- writing

    def due(self, sequence: int) -> bool:
        """A snapshot at ``sequence`` is owed and none is being written."""
        if sequence <= self.sequence or (self._writing is not None and not self._writing.done()):
            return False
        if self.every_events > 0 and sequence - self.sequence >= self.every_events:
            return True
        return self.every_seconds > 0 and self.monotonic() - self._since >= self.every_seconds

    def take(self, hive: Hive, head_body: bytes) -> Snapshot | None:
        """Encode ``hive`` now (it must hold exactly the events up to its sequence,
        whose last body is ``head_body``). ``None``, logged, if it cannot be encoded."""
        t0 = time.perf_counter()
        try:
            snap = self.codec().snapshot(hive, head_body)
        except Exception:
            log.exception("cannot encode a snapshot at %d; starting will replay more", hive.sequence)
            self.sequence, self._since = hive.sequence, self.monotonic()  # not again at once
            return None
        self.last_encode_ms = (time.perf_counter() - t0) * 1000
        return snap

    def write(self, snap: Snapshot) -> None:
        """Store ``snap`` (its sequence is committed) on a background task."""
        self.sequence, self._since = snap.sequence, self.monotonic()
        self._writing = asyncio.create_task(self._write(snap), name="hive-snapshot")

    async def _write(self, snap: Snapshot) -> None:
        t0 = time.perf_counter()
        try:
            await self.store.save_snapshot(snap)
        except Exception as exc:
            log.warning("cannot write the snapshot at %d: %s", snap.sequence, exc)
            return
        self.last_write_ms = (time.perf_counter() - t0) * 1000
        self.last_bytes = len(snap.body)
        self.written += 1
        log.info(
            "snapshot at %d: %d bytes, encoded in %.0f ms, written in %.0f ms",
            snap.sequence,
            len(snap.body),
            self.last_encode_ms,
            self.last_write_ms,
        )

    async def final(self, hive: Hive, head_body: bytes | None) -> None:
        """At a clean stop: wait for the one in flight, then write one at the head
        if events came since (so the next start replays nothing)."""
        await self.wait()
        if head_body is not None and hive.sequence > self.sequence:
            snap = self.take(hive, head_body)
            if snap is not None:
                self.write(snap)
                await self.wait()

    async def wait(self) -> None:
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)

    # ----------------------------------------------------------- starting

    async def restore(self, new_hive: Callable[[], Hive]) -> Hive | None:
        """The hive folded up to the newest usable snapshot, or ``None`` (replay it all)."""
        try:
            stored = await self.store.snapshots()
        except Exception as exc:
            log.warning("cannot read the snapshots (%s): replaying the whole log", exc)
            return None
        for snap in stored:
            t0 = time.perf_counter()
            try:
                await self._trust(snap)
                hive = new_hive()
                self.codec().restore(snap, hive)
            except SnapshotRejected as exc:
                log.warning("snapshot at %d not used: %s", snap.sequence, exc)
                continue
            self.sequence, self._since = snap.sequence, self.monotonic()
            self.started_from = snap.sequence
            log.info(
                "started from the snapshot at %d (%d bytes, %.0f ms)",
                snap.sequence,
                len(snap.body),
                (time.perf_counter() - t0) * 1000,
            )
            return hive
        if stored:
            log.warning("no usable snapshot: replaying the whole log")
        return None

    async def _trust(self, snap: Snapshot) -> None:
        """The log holds the snapshot's head event, byte for byte."""
        rows = await self.store.read(snap.sequence - 1, 1)
        if not rows or rows[0].sequence != snap.sequence:
            raise SnapshotRejected(f"the log does not reach sequence {snap.sequence}")
        if head_digest(rows[0].body) != snap.head:
            raise SnapshotRejected(f"the log holds another event at {snap.sequence}")
