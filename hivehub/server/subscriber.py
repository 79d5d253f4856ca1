"""One /ws subscriber: its filters, its bounded buffer of encoded events and the
sender task that writes them while the subscriber is behind (a subscriber that
keeps up gets the fan-out's ready-made frame written straight to its transport). The fan-out
(:class:`~hivehub.server.stream.StreamHub`) calls :meth:`Subscriber.push` once per
matching event with the bytes the service encoded once.

A subscriber that negotiated permessage-deflate is served the same way: the
fan-out hands it the event's compressed frame (compressed once per event and
shared, :class:`~hivehub.server.websocket.SharedDeflate`) or, under
``DEFLATE_MIN``, the plain one, and its queue holds those frames.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..protocol.frames import text_frame
from .websocket import DEFLATE_MIN, SharedDeflate, deflate_limit

if TYPE_CHECKING:
    from .service import Published

log = logging.getLogger("hivehub.stream")

#: above this many bytes waiting in the transport (the kernel took no more), events
#: queue for the subscriber's sender task instead of being written directly
WRITE_HIGH = 64 * 1024
#: replay: rows per store read, and the transport backlog at which it waits for the client
REPLAY_PAGE = 5000
REPLAY_HIGH = 4 * 1024 * 1024
#: a snapshot is written in fragments of this size, each only once the socket drained
SNAPSHOT_FRAGMENT = 256 * 1024


#: transient types a subscriber gets only by naming them in its filter
OPT_IN = frozenset({"inter_module_message"})  # "try again later": the reason says from which sequence


class Subscriber:
    __slots__ = (
        "on_cut",
        "transport",
        "raw",
        "raw_ok",
        "agent_id",
        "buffer_limit",
        "closing",
        "deflate_max",
        "deflater",
        "last_seq",
        "min_seq",
        "queue",
        "queued_bytes",
        "budget",
        "idle",
        "remote",
        "task_id",
        "types",
        "wake",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        buffer_limit: int,
        remote: str,
        transport: Any = None,
        budget: int = 8 << 20,
        deflater: SharedDeflate | None = None,
    ) -> None:
        self.ws = ws
        #: the hub's shared compressor when this connection negotiated
        #: permessage-deflate (``ws.compress`` is then its server window bits)
        self.deflater = deflater if ws.compress else None
        #: messages from DEFLATE_MIN up to this many bytes go compressed; 0: none
        wbits = 15 if ws.compress is True else int(ws.compress)  # True: not prepared yet
        self.deflate_max = deflate_limit(wbits) if self.deflater is not None else 0
        #: the transport, once frames may be written to it directly: only after any
        #: replay (the sender switches it on when it has drained what queued
        #: meanwhile, so order is kept). A compressed connection without the shared
        #: compressor (aiohttp compressing per connection) never has it.
        self.raw: Any = None
        self.raw_ok = (
            transport if transport is not None and (not ws.compress or self.deflater is not None) else None
        )
        self.transport = transport
        #: called once when the subscriber falls more than its buffer behind
        self.on_cut: Any = None
        self.types: frozenset[str] | None = None
        self.agent_id: str | None = None
        self.task_id: str | None = None
        self.queue: deque[tuple[int, bytes]] = deque()
        #: bytes in ``queue``; with the socket's write buffer they count against ``budget``
        self.queued_bytes = 0
        self.budget = budget
        #: set while the queue holds at most a quarter of the budget (above that, the
        #: reader waits on it before reading more requests: replies are not being read)
        self.idle = asyncio.Event()
        self.idle.set()
        self.wake = asyncio.Event()
        self.min_seq = 0
        self.last_seq = 0
        self.buffer_limit = buffer_limit
        self.closing = False
        self.remote = remote

    def matches_published(self, p: Published) -> bool:
        """``matches`` for a committed event; its routing keys are read (and computed,
        once per event) only for a subscriber that filters by agent or task."""
        if self.agent_id is None and self.task_id is None:
            return self.types is None or p.type in self.types
        return self.matches(p.type, p.agent_ids, p.task_ids)

    def matches(self, type_: str, agent_ids: frozenset[str], task_ids: frozenset[str]) -> bool:
        return (
            (self.types is None or type_ in self.types)
            and (self.agent_id is None or self.agent_id in agent_ids)
            and (self.task_id is None or self.task_id in task_ids)
        )

    def push(self, seq: int, body: bytes, frame: bytes | None = None) -> bool:
        """Deliver one event. Returns True when it was written straight to the socket.

        ``frame`` is the event's ready-made frame for this subscriber (the same
        bytes for every subscriber of its kind: plain, or compressed once per
        event); it may be None for a plain subscriber that is not on the fast path.
        Fast path: nothing queued and the socket not backed up: the frame goes
        straight to the transport, with no task wake-up. Otherwise it is queued for
        the sender task, and a queue over the buffer closes the subscriber (1013):
        it is not reading."""
        if self.closing:
            return False
        q = self.queue
        t = self.raw
        if t is not None and frame is not None and not q and t.get_write_buffer_size() <= WRITE_HIGH:
            if t.is_closing():
                return False
            t.write(frame)
            if seq:
                self.last_seq = seq
            return True
        self.queue_event(seq, body, frame)
        return False

    def queue_event(self, seq: int, body: bytes, frame: bytes | None) -> None:
        """Queue an event for the sender: its body, or for a compressed connection
        its frame (the shared one the fan-out built, else built here)."""
        if self.closing:
            return
        if self.deflater is None:
            self.enqueue(seq, body)
        else:
            self.enqueue(seq, frame if frame is not None else self.frame(body))

    def frame(self, body: bytes) -> bytes:
        """This connection's frame for one message that is not shared with others (a
        reply, a notice, a replayed event): compressed from ``DEFLATE_MIN`` bytes
        when permessage-deflate was negotiated, else plain."""
        d = self.deflater
        if d is not None and DEFLATE_MIN <= len(body) <= self.deflate_max:
            return d.frame(body)
        return text_frame(body)

    def backlog(self) -> int:
        """Bytes the hub holds for this client: queued, and in the socket's write buffer."""
        t = self.transport
        return self.queued_bytes + (t.get_write_buffer_size() if t is not None else 0)

    def enqueue(self, seq: int, body: bytes) -> None:
        """Queue an event or a reply for the sender task (for a compressed connection:
        its frame, see :meth:`queue_event`). Over the message limit or the byte
        budget, the subscriber is cut off (1013): it is not reading."""
        q = self.queue
        q.append((seq, body))
        self.queued_bytes += len(body)
        if self.queued_bytes > self.budget // 4:
            self.idle.clear()
        if len(q) > self.buffer_limit or self.backlog() > self.budget:
            self.cut()
            return
        self.wake.set()

    def cut(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.queue.clear()
        self.queued_bytes = 0
        self.idle.set()  # release a reader waiting for replies to drain
        self.wake.set()
        if self.on_cut is not None:
            self.on_cut(self)

    def write_frames(self, frames: list[bytes]) -> int:
        """Write ready-made frames in one go (the caller checked the fast path applies)."""
        t = self.raw
        if t is None or t.is_closing():
            return 0
        t.write(b"".join(frames) if len(frames) > 1 else frames[0])
        return len(frames)

    def filters(self) -> dict[str, Any]:
        return {
            "types": sorted(self.types) if self.types else None,
            "agent_id": self.agent_id,
            "task_id": self.task_id,
        }
