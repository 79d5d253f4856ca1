"""Redis Streams bus: ``XADD`` with the event sequence as the entry id, ``XREAD``
from the last id seen. Trimmed approximately to ``maxlen`` entries; older
history comes from the store.

Bound to one log (``bind``): the default stream is ``hive:events:<cluster id>``
and every entry carries the cluster id in its ``c`` field, checked on read. An
explicit ``?stream=name`` keeps that name (deployments that set one keep it) and
is checked the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.errors import StoreUnavailable
from ..store.base import StoredEvent
from .cancel import honour_cancel
from .errors import ForeignEntry

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover
    raise ImportError("the Redis bus needs redis: pip install 'hivehub[redis]'") from exc

_XRead = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None

#: the stream of a bus bound to cluster ``<id>`` without ``?stream=``
STREAM_PREFIX = "hive:events:"


class RedisEventBus:
    def __init__(self, url: str, maxlen: int = 1_000_000) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        #: the stream named in the URL; None: derived from the cluster id
        self.explicit_stream = next((v for k, v in query if k == "stream"), None)
        self.stream = self.explicit_stream or ""
        self.url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "stream"])))
        self.maxlen = maxlen
        self.cluster_id: str | None = None
        self._cid = b""
        #: entries of another cluster met by subscribers (``hive_bus_foreign_entries``)
        self.foreign_entries = 0
        self.client: aioredis.Redis | None = None

    def bind(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self._cid = cluster_id.encode()
        self.stream = self.explicit_stream or f"{STREAM_PREFIX}{cluster_id}"

    async def open(self) -> None:
        if self.cluster_id is None:
            raise ValueError(
                "the Redis bus carries a PostgreSQL log between replicas: use it with --db postgresql://"
            )
        self.client = aioredis.from_url(self.url)
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot reach the Redis bus: {exc}") from exc

    async def publish(self, events: Sequence[StoredEvent]) -> None:
        assert self.client is not None
        pipe = self.client.pipeline(transaction=False)
        for e in events:
            pipe.xadd(
                self.stream,
                {"t": e.type, "b": e.body, "c": self._cid},
                id=f"{e.sequence}-1",
                maxlen=self.maxlen,
                approximate=True,
            )
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot publish to the Redis bus: {exc}") from exc

    async def subscribe(self, after: int) -> AsyncIterator[StoredEvent]:
        # a separate connection: XREAD BLOCK holds it
        client = aioredis.from_url(self.url)
        last = f"{after}-1" if after else "0-0"
        try:
            await client.ping()  # connect first: a cancel swallowed there is seen below
            while True:
                # (a short block: a cancel lost inside XREAD is seen within 0.25 s)
                honour_cancel()
                # redis-py types the answers of every protocol version as one union; this
                # client speaks RESP2 (its default) without decode_responses, which answers
                # [[stream, [(entry_id, {b"t": type, b"b": body, b"c": cluster}), ...]]] or None
                res = cast(_XRead, await client.xread({self.stream: last}, block=250, count=1000))
                for _stream, entries in res or []:
                    for entry_id, fields in entries:
                        cid = fields.get(b"c")
                        if cid != self._cid:
                            self.foreign_entries += 1
                            raise ForeignEntry(
                                f"redis stream {self.stream!r} (entry {entry_id!r})",
                                self.cluster_id or "",
                                None if cid is None else cid.decode(errors="replace"),
                            )
                        last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                        seq = int(last.split("-", 1)[0])
                        typ = fields[b"t"].decode()
                        yield StoredEvent(seq, typ, bytes(fields[b"b"]))
        finally:
            await client.aclose()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
