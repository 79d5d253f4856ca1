"""NATS JetStream bus: one stream per log, one subject, the event in the payload
and its sequence, type and cluster id in headers.

- **Publish** pipelines the batch (``publish_async``, acks awaited together), so a
  commit of many events costs one round trip; messages of one connection are
  stored in the order sent. ``Nats-Msg-Id`` is ``<cluster>:<sequence>``, so a
  publish repeated within the duplicate window (a retry, a new leader) is stored
  once.
- **Subscribe after N**: JetStream numbers messages itself (a lost publish leaves
  no hole in its numbering), so the first message past N is found by a binary
  search over the stream's sequences (``get_msg``, a few requests, once per
  subscription); an ordered push consumer delivers from there, in order, and is
  re-created by the client after a gap or a reconnect.
- **Bound to one log**: the default stream is ``HIVE_<cluster id>`` on subject
  ``hive.events.<cluster id>``; ``?stream=NAME`` names it (subject
  ``hive.events.NAME`` unless ``&subject=`` says otherwise). Every message carries
  ``Hive-Cluster``; a subscriber refuses one of another cluster (``ForeignEntry``).
- Limits: the stream keeps the newest ``maxlen`` messages (``discard old``); older
  history comes from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..core.errors import StoreUnavailable
from ..store.base import StoredEvent
from .cancel import honour_cancel
from .errors import ForeignEntry

try:
    import nats
    from nats.aio.client import Client as NATSClient
    from nats.aio.msg import Msg
    from nats.errors import Error as NatsError
    from nats.js import JetStreamContext, api
    from nats.js.errors import NotFoundError
except ImportError as exc:  # pragma: no cover
    raise ImportError("the NATS bus needs nats-py: pip install nats-py") from exc

H_SEQ, H_TYPE, H_CLUSTER = "Hive-Seq", "Hive-Type", "Hive-Cluster"
#: the stream of a bus bound to cluster ``<id>`` without ``?stream=``
STREAM_PREFIX = "HIVE_"
_ERRORS = (NatsError, OSError, asyncio.TimeoutError)


class NatsEventBus:
    def __init__(self, url: str, maxlen: int = 1_000_000, duplicate_window: float = 120.0) -> None:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.explicit_stream = query.get("stream")
        self.explicit_subject = query.get("subject")
        self.server = urlunsplit(parts._replace(query=""))
        self.maxlen = maxlen
        self.duplicate_window = duplicate_window
        self.stream = self.subject = ""
        self.cluster_id: str | None = None
        #: messages of another cluster met by subscribers (``hive_bus_foreign_entries``)
        self.foreign_entries = 0
        self.nc: NATSClient | None = None
        self.js: JetStreamContext | None = None
        self._closed = asyncio.Event()

    def bind(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self.stream = self.explicit_stream or f"{STREAM_PREFIX}{cluster_id}"
        self.subject = self.explicit_subject or f"hive.events.{self.explicit_stream or cluster_id}"

    async def open(self) -> None:
        if self.cluster_id is None:
            raise ValueError(
                "the NATS bus carries a PostgreSQL log between replicas: use it with --db postgresql://"
            )
        try:
            self.nc = await nats.connect(self.server, connect_timeout=5, max_reconnect_attempts=-1)
            self.js = self.nc.jetstream()
            await self._ensure_stream()
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot reach the NATS JetStream bus: {exc}") from exc

    async def _ensure_stream(self) -> None:
        assert self.js is not None
        try:
            info = await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(
                name=self.stream,
                subjects=[self.subject],
                max_msgs=self.maxlen,
                discard=api.DiscardPolicy.OLD,
                duplicate_window=self.duplicate_window,
            )
            return
        if self.subject not in (info.config.subjects or []):
            raise StoreUnavailable(
                f"the NATS stream {self.stream!r} exists without subject {self.subject!r}: "
                f"it has {info.config.subjects}; name another with ?stream= or &subject="
            )

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        assert self.js is not None and self.cluster_id is not None
        cid = self.cluster_id
        try:
            acks = [
                await self.js.publish_async(
                    self.subject,
                    e.body,
                    headers={
                        H_SEQ: str(e.sequence),
                        H_TYPE: e.type,
                        H_CLUSTER: cid,
                        "Nats-Msg-Id": f"{cid}:{e.sequence}",
                    },
                )
                for e in events
            ]
            await asyncio.wait_for(asyncio.gather(*acks), 10)
        except _ERRORS as exc:
            raise StoreUnavailable(f"cannot publish to the NATS JetStream bus: {exc}") from exc

    async def _first_after(self, after: int) -> int:
        """The stream sequence of the first message whose event sequence is past ``after``."""
        assert self.js is not None
        state = (await self.js.stream_info(self.stream)).state
        lo, hi = max(state.first_seq, 1), state.last_seq + 1
        if after <= 0:
            return lo
        while lo < hi:  # event sequences grow with stream sequences (one writer at a time)
            honour_cancel()
            mid = (lo + hi) // 2
            try:
                msg = await self.js.get_msg(self.stream, mid)
                seq = int((msg.headers or {}).get(H_SEQ, "0"))
            except NotFoundError:  # trimmed meanwhile: a gap the store fills
                seq = 0
            if seq <= after:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def subscribe(self, after: int) -> AsyncIterator[StoredEvent]:
        assert self.js is not None
        start = await self._first_after(after)
        honour_cancel()
        # messages are handed over by a callback (the client's reader calls it in
        # order) rather than ``next_msg``, which costs a future and a timer per message
        # (bounded: a stalled follower pushes back on the client's own pending limits)
        inbox: asyncio.Queue[Msg] = asyncio.Queue(maxsize=10_000)

        async def take(msg: Msg) -> None:
            await inbox.put(msg)

        sub = await self.js.subscribe(
            self.subject,
            stream=self.stream,
            cb=take,
            ordered_consumer=True,
            idle_heartbeat=2.0,
            config=api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start
            ),
        )
        try:
            while not self._closed.is_set():
                honour_cancel()
                if inbox.empty():
                    try:
                        msg = await asyncio.wait_for(inbox.get(), 1.0)
                    except TimeoutError:
                        continue
                else:
                    msg = inbox.get_nowait()
                h = msg.headers or {}
                if h.get(H_CLUSTER) != self.cluster_id:
                    self.foreign_entries += 1
                    raise ForeignEntry(
                        f"NATS stream {self.stream!r} (subject {msg.subject!r})",
                        self.cluster_id or "",
                        h.get(H_CLUSTER),
                    )
                seq = int(h[H_SEQ])
                if seq <= after:
                    continue
                after = seq
                yield StoredEvent(seq, h[H_TYPE], bytes(msg.data))
        finally:
            try:
                await sub.unsubscribe()
            except _ERRORS:
                pass

    async def close(self) -> None:
        self._closed.set()
        if self.nc is not None:
            try:
                await self.nc.drain()
            except _ERRORS:
                pass
            self.nc = self.js = None
