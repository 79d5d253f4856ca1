"""Redis Streams bus: ``XADD`` with the event sequence as the entry id, ``XREAD``
from the last id seen. Trimmed approximately to ``maxlen`` entries; older
history comes from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.errors import StoreUnavailable
from ..store.base import StoredEvent

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover
    raise ImportError("the Redis bus needs redis: pip install 'hivehub[redis]'") from exc

_XRead = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None


class RedisEventBus:
    def __init__(self, url: str, maxlen: int = 1_000_000) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        self.stream = next((v for k, v in query if k == "stream"), "hive:events")
        self.url = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "stream"])))
        self.maxlen = maxlen
        self.client: aioredis.Redis | None = None

    async def open(self) -> None:
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
                {"t": e.type, "b": e.body},
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
            while True:
                # redis-py types the answers of every protocol version as one union; this
                # client speaks RESP2 (its default) without decode_responses, which answers
                # [[stream, [(entry_id, {b"t": type, b"b": body}), ...]]] or None
                res = cast(_XRead, await client.xread({self.stream: last}, block=1000, count=1000))
                for _stream, entries in res or []:
                    for entry_id, fields in entries:
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
