"""The one path every command takes: handle -> persist -> publish -> reply.

Only this object touches the core, always from the event loop's thread, so the
core needs no locks. ``execute`` runs ``hive.handle`` synchronously (the core
state moves at once, so the next command sees it), then waits until the
events are committed by the log writer, which publishes them in sequence
order *after* the commit: a subscriber never sees an event that could still
be lost. If a commit fails the in-memory state is ahead of the log, so it is
rebuilt from the log (the log is the truth) and the callers get
``StoreUnavailable`` (HTTP 503): nothing unlogged is ever acknowledged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from ..bus.base import EventBus, ForeignEntry
from ..core import events as ev
from ..core.commands import Command, Heartbeat, Recover, Tick
from ..core.errors import HiveError, StoreUnavailable
from ..core.hive import Hive, HiveConfig
from ..core.model import ONLINE, Task, TaskStatus
from ..core.summary import history_of
from ..core.tasklog import fold_task, task_id_of
from ..store.base import EventStore, NewEvent, StoredEvent
from .reader import HiveReader
from .snapshots import Snapshots

log = logging.getLogger("hivehub.service")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Published:
    """One committed event, encoded once; every subscriber gets these same bytes.

    ``agent_ids``/``task_ids`` are the routing keys that /ws filters check,
    computed once per event, not once per subscriber, and only when a subscriber
    with an agent or task filter asks (most events reach none)."""

    __slots__ = ("_keys", "body", "event", "sequence", "type")

    def __init__(self, event: ev.Event, body: bytes) -> None:
        self.event = event
        self.body = body
        self.sequence = event.sequence
        self.type = event.type
        self._keys: tuple[frozenset[str], frozenset[str]] | None = None

    def _routing(self) -> tuple[frozenset[str], frozenset[str]]:
        if self._keys is None:
            self._keys = routing_keys(self.event.data)
        return self._keys

    @property
    def agent_ids(self) -> frozenset[str]:
        return self._routing()[0]

    @property
    def task_ids(self) -> frozenset[str]:
        return self._routing()[1]


def routing_keys(d: Any) -> tuple[frozenset[str], frozenset[str]]:
    agents: set[str] = set()
    tasks: set[str] = set()
    for name, bucket in (("agent_id", agents), ("task_id", tasks)):
        v = getattr(d, name, None)
        if isinstance(v, str):
            bucket.add(v)
    a = getattr(d, "agent", None)
    if a is not None:
        agents.add(a.id)
    t = getattr(d, "task", None)
    if t is not None:
        tasks.add(t.id)
        if t.assigned_agent_id:
            agents.add(t.assigned_agent_id)
    details = getattr(d, "details", None)
    if isinstance(details, dict):
        if isinstance(details.get("task_id"), str):
            tasks.add(details["task_id"])
        if isinstance(details.get("agent_id"), str):
            agents.add(details["agent_id"])
    err = getattr(d, "error", None)
    if err is not None and isinstance(getattr(err, "details", None), dict):
        for k, bucket in (("task_id", tasks), ("agent_id", agents)):
            v = err.details.get(k)
            if isinstance(v, str):
                bucket.add(v)
    return frozenset(agents), frozenset(tasks)


Listener = Callable[[list[Published]], None]


class HubService:
    def __init__(
        self,
        store: EventStore,
        *,
        hive_config: HiveConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        tick_max_seconds: float = 0.25,
        bus: EventBus | None = None,
        snapshot_events: int = 0,
        snapshot_seconds: float = 0.0,
    ) -> None:
        self.store = store
        self.bus = bus
        #: "leader" runs the core and writes the log; a "follower" (another replica
        #: leads) folds the log from the bus and forwards commands to the leader
        self.role = "leader"
        self.forward: Callable[[Command], Awaitable[list[ev.Event]]] | None = None
        #: why this follower stopped reading the bus (a foreign entry), or None
        self.bus_error: str | None = None
        self.hive_config = hive_config or HiveConfig()
        #: the wall clock stamps events; the monotonic one measures every duration and
        #: deadline (docs/architecture.md, "Time"), so a clock step changes no decision
        self.clock = clock
        self._monotonic = monotonic
        #: added to the injected monotonic clock: a hive started from a snapshot keeps
        #: the snapshot's axis (its deadlines are readings on it), so the service reads
        #: its clock on that axis (``_adopt_axis``); durations are unchanged
        self._mono_shift = 0.0
        #: snapshots of the folded state (server/snapshots.py): written by the leader's
        #: log writer, read at start
        self.snapshots = Snapshots(
            store, every_events=snapshot_events, every_seconds=snapshot_seconds, monotonic=monotonic
        )
        self.hive = self._new_hive()
        self.tick_max_seconds = tick_max_seconds
        #: last sequence committed *and* handed to listeners
        self.published_seq = 0
        self.listeners: list[Listener] = []
        #: called with (component, exception) when a listener fails (-> error_occurred)
        self.error_hook: Callable[[str, BaseException], None] | None = None
        self.store_ok = True
        self.store_error: str | None = None
        self.last_commit_ms = 0.0
        self.started_at = clock()
        self.started_mono = monotonic()
        self.last_tick_at = self.started_at
        self.last_tick_mono = self.started_mono
        self._pending: list[tuple[ev.Event, bytes]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------- lifecycle

    async def start(self, *, follower: bool = False) -> None:
        await self.store.open()
        if self.bus is not None:
            await self.bus.open()
        await self._rebuild()
        if follower:
            self.role = "follower"
            self._tasks = [
                asyncio.create_task(self._follow_bus(), name="hive-follow-bus"),
                asyncio.create_task(self._follow_store(), name="hive-follow-store"),
            ]
            return
        await self._lead()
        # Connections did not survive the restart: tell the core.
        await self.execute(Recover(id="recover"))

    async def _lead(self) -> None:
        self.role = "leader"
        self._tasks = [
            asyncio.create_task(self._writer(), name="hive-log-writer"),
            asyncio.create_task(self._ticker(), name="hive-ticker"),
        ]

    async def promote(self, *, failover: bool) -> None:
        """This replica now holds the scheduler lock: catch up from the log, then lead.

        After a failover the agents connected to other replicas are alive: they
        only get a fresh heartbeat window (no status change). After a cluster
        (re)start nothing is connected yet, so online agents go offline (Recover)."""
        log.info("promoting: stopping the follower tasks")
        for t in self._tasks:
            t.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=3)
            if stuck:  # they only deliver events at or below published_seq from now on
                log.warning("follower tasks did not stop in time: %s", [t.get_name() for t in stuck])
        log.info("promoting: catching up from the log at %d", self.published_seq)
        await asyncio.wait_for(self._catch_up(), 30)
        await self._lead()
        if failover:
            self.hive.refresh_liveness(self.clock(), self.monotonic())
        else:
            await self.execute(Recover(id="recover"))
        log.warning("this replica now leads (failover=%s) at sequence %d", failover, self.published_seq)

    # ----------------------------------------------------------- follower

    def _deliver(self, rows: list[StoredEvent]) -> None:
        """Fold committed events from another replica and hand them to listeners.

        Two paths fold the log, the bus and the store poll (or a gap's catch-up),
        each reading its rows across an await: what one read may have been folded by
        the other meanwhile. Those rows are skipped (the first path to fold an event
        hands it on, once); what is left starts at the next sequence (both paths read
        in order), and a real gap still raises in ``apply``."""
        fresh = [row for row in rows if row.sequence > self.hive.sequence]
        if not fresh:
            return
        published: list[Published] = []
        try:
            for row in fresh:
                event = ev.decode_event(row.body)
                self.hive.apply(event)
                published.append(Published(event, row.body))
        finally:  # what was folded is handed on, even if a later row is refused
            if published:
                self.published_seq = published[-1].sequence
                self._notify(published)
                self._release_waiters()

    async def _catch_up(self, upto: int | None = None) -> None:
        # (after what the state holds: a follower's published_seq, unless an event's
        # applier refused it once its sequence was taken; then it is not read again)
        while upto is None or self.hive.sequence < upto:
            rows = await self.store.read(self.hive.sequence, 5000)
            if upto is not None:
                rows = [r for r in rows if r.sequence <= upto]
            if not rows:
                return
            self._deliver(rows)

    async def _follow_bus(self) -> None:
        """Fold from the bus until it carries an entry of another log.

        A foreign entry (``ForeignEntry``: another cluster writes to this bus stream)
        is a misconfiguration, not a hiccup: it is never folded, the error is logged
        and kept in ``bus_error``, and this task ends, so /health reports the replica
        unhealthy (``background_processes``: stopped hive-follow-bus) until it is
        restarted on a bus of its own. Meanwhile it stays correct, following the
        store (the truth) every 0.2 s.

        The rows of one bus read (no await between them) are handed on together by
        a callback after the last, as the leader hands on a commit batch: the fan-out
        then writes each subscriber one write, not one per event."""
        assert self.bus is not None
        loop = asyncio.get_running_loop()
        pending: list[StoredEvent] = []

        def flush() -> None:
            if not pending:
                return
            rows = pending[:]
            pending.clear()
            try:
                self._deliver(rows)
            except Exception as exc:  # (a callback: nobody above to catch it) the store fills in
                log.warning("cannot fold from the bus: %s; following the store meanwhile", exc)

        while True:
            try:
                async for row in self.bus.subscribe(self.published_seq):
                    last = pending[-1].sequence if pending else self.published_seq
                    if row.sequence <= last:
                        continue
                    if row.sequence > last + 1:
                        flush()
                        await self._catch_up(row.sequence - 1)  # a gap: the log has it
                    if not pending:
                        loop.call_soon(flush)
                    pending.append(row)
            except asyncio.CancelledError:
                raise
            except ForeignEntry as exc:
                self.bus_error = str(exc)
                log.error("stopped following the bus: %s; following the store only", exc)
                return
            except Exception as exc:
                log.warning("bus subscription failed (%s); following the store meanwhile", exc)
                await asyncio.sleep(1.0)

    async def _follow_store(self) -> None:
        """The bus is the fast path; the store is the truth. Poll it so a lost bus
        message (or no bus at all) delays a follower by at most a second."""
        while True:
            await asyncio.sleep(0.2 if self.bus is None or self.bus_error else 1.0)
            try:
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot follow the store: %s", exc)

    async def task(self, task_id: str) -> Task | None:
        """A task as ``GET /api/tasks/{id}`` answers it: from memory, or, when the core
        evicted it (``retain_finished``), folded from its own events in the store,
        equal to what memory held before the eviction. ``None``: no such task."""
        reader = self.reader()
        t = reader.task(task_id)
        if t is not None or not reader.is_evicted(task_id):  # (or forgotten: may be in the log)
            return t
        # The state runs ahead of the log: wait until what evicted it (and so every
        # event of the task) is committed. A follower's state is the committed log.
        await self.wait_published(self.hive.sequence)
        rows = await self.store.task_events(task_id)
        events = [ev.decode_event(r.body) for r in rows]
        return fold_task(e for e in events if task_id_of(e.data) == task_id)  # (keys may collide: task_key)

    def reader(self) -> HiveReader:
        """The live state, ahead of the log while commits are in flight: for decisions
        (what to observe, whom to wake) and for listeners, which run right after a
        commit. Answers to clients read :class:`CommittedView` instead."""
        return HiveReader(self.hive)

    async def wait_published(self, seq: int) -> None:
        if seq > self.published_seq:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((seq, fut))
            await fut

    def monotonic(self) -> float:
        """The monotonic clock every duration and deadline is read on (see ``_mono_shift``)."""
        return self._monotonic() + self._mono_shift

    def _adopt_axis(self, mono_offset: float) -> None:
        """Read the monotonic clock so that ``wall - mono == mono_offset`` now: the axis
        a restored hive's deadlines and volatile times were taken on (the process
        that wrote the snapshot may have had another monotonic clock: a reboot,
        another machine). A full replay measures ``mono_offset`` on this same axis."""
        delta = (self.clock().timestamp() - self.monotonic()) - mono_offset
        self._mono_shift += delta
        self.started_mono += delta
        self.last_tick_mono += delta

    async def _rebuild(self) -> None:
        """Fold the log into a fresh hive (start, and after a failed commit): from the
        newest usable snapshot and the events after it, or else the whole log."""
        restored = await self.snapshots.restore(self._new_hive)
        if restored is not None:
            self._adopt_axis(restored.mono_offset)
        hive = restored or self._new_hive()
        replayed = 0
        after = hive.sequence
        while True:
            batch = await self.store.read(after, 5000)
            if not batch:
                break
            for row in batch:
                hive.apply(ev.decode_event(row.body))
            after = batch[-1].sequence
            replayed += len(batch)
        self.hive = hive
        self.published_seq = hive.sequence
        # the folded state is long-lived: keep the cyclic GC from re-scanning it
        gc.collect()
        gc.freeze()
        log.info("log replayed: %d events (%d from the snapshot)", hive.sequence, hive.sequence - replayed)

    def _new_hive(self) -> Hive:
        """A hive whose replay axis is measured now: logged wall times become
        monotonic readings as ``wall - (wall_now - mono_now)``."""
        hive = Hive(self.hive_config)
        hive.mono_offset = self.clock().timestamp() - self.monotonic()
        return hive

    def uptime(self) -> float:
        """Seconds since start, on the monotonic clock."""
        return self.monotonic() - self.started_mono

    async def stop(self) -> None:
        await self.flush()
        if self.role == "leader" and self.snapshots.enabled and self.store_ok:
            # the head is committed and nothing is pending: a snapshot there makes the
            # next start replay nothing
            head = await self.store.read(self.hive.sequence - 1, 1) if self.hive.sequence else []
            if head and head[-1].sequence == self.hive.sequence:
                await self.snapshots.final(self.hive, head[-1].body)
        await self.snapshots.wait()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        await self.store.close()
        if self.bus is not None:
            await self.bus.close()

    async def flush(self) -> None:
        """Wait until everything handled so far is committed and published."""
        if self.hive.sequence > self.published_seq:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((self.hive.sequence, fut))
            self._wake.set()
            await fut

    # ----------------------------------------------------------- commands

    async def execute(self, cmd: Command) -> list[ev.Event]:
        """Run one command; returns its events once they are durable and published.

        Raises HiveError (nothing changed) or StoreUnavailable (nothing accepted)."""
        if self.role == "follower":
            # The leader decides; answer once this replica has folded the result,
            # so a client reading from this replica sees its own write.
            if self.forward is None:
                raise StoreUnavailable("no leader is known yet; try again")
            forwarded = await self.forward(cmd)
            if forwarded:
                await asyncio.wait_for(self.wait_published(forwarded[-1].sequence), 10)
            return forwarded
        facts = await self._facts(cmd)
        if not self.store_ok and not self._harmless(cmd):
            # Refuse at once rather than decide on top of a log we cannot extend;
            # the watch probes the store and flips store_ok back when it is writable.
            raise StoreUnavailable(
                "the event log cannot be written right now; nothing was accepted", error=self.store_error
            )
        events = self.hive.handle(cmd, self.clock(), self.monotonic(), facts=facts)
        if not events:
            return events
        for e in events:
            self._pending.append((e, ev.encode_event(e)))
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((events[-1].sequence, fut))
        self._wake.set()
        await fut
        return events

    async def execute_each(
        self, cmds: list[Command], *, stop_at_error: bool = False
    ) -> list[list[ev.Event] | HiveError]:
        """Run commands in order, each accepted or refused on its own, and wait for
        one commit covering every accepted one (forwarded batches, submissions)."""
        if self.role == "follower" or not self.store_ok:
            out_slow: list[list[ev.Event] | HiveError] = []
            for c in cmds:
                try:
                    out_slow.append(await self.execute(c))
                except HiveError as exc:
                    out_slow.append(exc)
                    if stop_at_error:
                        break
            return out_slow
        out: list[list[ev.Event] | HiveError] = []
        now, mono = self.clock(), self.monotonic()
        for cmd in cmds:
            facts = None
            if self.hive.unknown_task_ids(cmd):  # rare: names a task only the log knows
                # Commit what this batch handled so far first: if that fails it is lost,
                # and the whole call raises, as when the one commit at the end fails.
                # After it, a failure to read the log refuses this command alone.
                await self.flush()
                try:
                    facts = await self._facts(cmd)
                except HiveError as exc:
                    out.append(exc)
                    if stop_at_error:
                        break
                    continue
                now, mono = self.clock(), self.monotonic()
            try:
                events = self.hive.handle(cmd, now, mono, facts=facts)
            except HiveError as exc:
                out.append(exc)
                if stop_at_error:
                    break
                continue
            for e in events:
                self._pending.append((e, ev.encode_event(e)))
            out.append(events)
        if self.hive.sequence > self.published_seq:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((self.hive.sequence, fut))
            self._wake.set()
            await fut
        return out

    async def _facts(self, cmd: Command) -> dict[str, TaskStatus | None] | None:
        """The final statuses, read from the log, of the tasks ``cmd`` names that the
        core has forgotten (``remember_evicted``); ``None`` when it names none.

        The log must first hold everything applied so far (what forgot them). Other
        commands run while this waits, so the loop asks again until nothing is
        missing. A status found stays true (a forgotten task never changes). An id
        the log did not have stays free unless more tasks were forgotten since than
        the core remembered when it asked: those are forgotten first, and all of
        them were in the log that was read, so only beyond them could a task created
        since (with that id) have been forgotten. The caller hands the result to
        ``handle`` with no ``await`` in between."""
        facts: dict[str, TaskStatus | None] = {}
        asked_at = room = 0  # forgotten and remembered counts when the log was last read
        while True:
            hive = self.hive
            if hive.forgotten - asked_at > room:
                facts = {i: st for i, st in facts.items() if st is not None}
            ids = hive.unknown_task_ids(cmd, facts)
            if not ids:
                return facts or None
            asked_at, room = hive.forgotten, len(hive.evicted)
            await self.flush()
            found = await self.store.final_statuses(ids)
            facts.update((i, found.get(i)) for i in ids)

    def _harmless(self, cmd: Command) -> bool:
        """A heartbeat of an online agent changes only volatile state (no event),
        so it is still taken while the log is unavailable: agents stay alive."""
        if isinstance(cmd, Heartbeat):
            a = self.reader().find_agent(cmd.agent_id)
            return a is not None and a.status in ONLINE
        return False

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending, []
                # every event handle applied is queued before the next await, so the
                # hive holds exactly this batch and what came before: a snapshot now is
                # the state at the batch's last sequence (stored once that commits)
                snap = None
                head_seq = batch[-1][0].sequence
                if self.snapshots.due(head_seq) and self.hive.sequence == head_seq:
                    snap = self.snapshots.take(self.hive, batch[-1][1])
                # the history tables' change comes from the event object, not its bytes
                rows = [
                    NewEvent(e.sequence, e.type, body, task_id_of(e.data), *history_of(e))
                    for e, body in batch
                ]
                t0 = asyncio.get_running_loop().time()
                try:
                    await self.store.append(rows)
                except Exception as exc:
                    await self._on_store_failure(exc, batch)
                    continue
                self.last_commit_ms = (asyncio.get_running_loop().time() - t0) * 1000
                if snap is not None:
                    self.snapshots.write(snap)
                if not self.store_ok:
                    self.store_ok, self.store_error = True, None
                    log.warning("event store recovered")
                if self.bus is not None:
                    try:
                        # the bus carries StoredEvent (three fields); the task_id is the store's index
                        await self.bus.publish([StoredEvent(r.sequence, r.type, r.body) for r in rows])
                    except Exception as exc:  # followers fill the gap from the store
                        log.warning("bus publish failed: %s", exc)
                published = [Published(e, body) for e, body in batch]
                self.published_seq = batch[-1][0].sequence
                self._notify(published)
                self._release_waiters()

    def _notify(self, published: list[Published]) -> None:
        for listener in self.listeners:
            try:
                listener(published)
            except Exception as exc:
                log.exception("event listener failed")
                if self.error_hook is not None:
                    owner = getattr(listener, "__self__", None)
                    self.error_hook(type(owner).__name__ if owner is not None else "event_stream", exc)

    def _release_waiters(self) -> None:
        keep = []
        for seq, fut in self._waiters:
            if seq <= self.published_seq:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((seq, fut))
        self._waiters = keep

    async def _on_store_failure(self, exc: Exception, batch: list[tuple[ev.Event, bytes]]) -> None:
        log.error("event store write failed: %s", exc)
        self.store_ok, self.store_error = False, str(exc)
        # Everything handled after the last commit is lost with this batch: the
        # events still pending were decided on top of it.
        self._pending = []
        # Rebuild before failing the waiters: a reader waiting for this commit
        # (CommittedView) builds its answer again, and must find the log's state.
        # Meanwhile store_ok is False, so no command is decided on the old state.
        try:
            await self._rebuild()
        except Exception as exc2:  # the log cannot even be read: keep the old state
            log.error("cannot rebuild from the event log: %s", exc2)
        err = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))
        waiters, self._waiters = self._waiters, []
        for _, fut in waiters:
            if not fut.done():
                fut.set_exception(err)

    async def probe_store(self) -> bool:
        """While the store is failing: check whether it can be written again."""
        if self.store_ok:
            return True
        try:
            await self.store.ping()
        except Exception as exc:
            self.store_error = str(exc)
            return False
        self.store_ok, self.store_error = True, None
        log.warning("event store recovered")
        return True

    def publish_transient(self, data: ev.EventData) -> None:
        """Publish an event that cannot be logged (the store is down): live
        subscribers see it without a ``sequence``; it is not part of the log."""
        data.timestamp = self.clock()
        event = ev.Event(type=data.TYPE, data=data, timestamp=data.timestamp, message_id=str(uuid.uuid4()))
        published = [Published(event, ev.encode_event(event))]
        for listener in self.listeners:
            try:
                listener(published)
            except Exception:
                log.exception("event listener failed")

    # ----------------------------------------------------------- time

    async def _ticker(self) -> None:
        while True:
            deadline = self.hive.next_deadline()  # monotonic
            wait = self.tick_max_seconds
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - self.monotonic()))
            await asyncio.sleep(wait)
            self.last_tick_at = self.clock()
            self.last_tick_mono = self.monotonic()
            try:
                await self.execute(Tick(id="tick"))
            except StoreUnavailable:
                pass
            except Exception:
                log.exception("tick failed")
                await asyncio.sleep(1.0)
