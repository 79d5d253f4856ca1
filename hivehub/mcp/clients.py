"""The ``HiveClient`` each ``/mcp`` tool call uses, kept per (hub URL, token).

A tool call makes one or two REST calls to the hub's own port with the caller's
token. A fresh client per call opened a new HTTP session and TCP connection each
time (+7.4 ms a call in ``bench/mcp.py``); this keeps the newest ``size`` clients
open (least recently used first out), so an assistant's calls reuse a kept-alive
connection.

Nothing about rights is cached: the client only holds the token, and the hub checks
it on every request (a revoked token fails on its next call, cached or not). A
client is closed when it leaves the cache, once no call still uses it, and every
client at shutdown (:meth:`ClientCache.close`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..client import HiveClient

#: clients kept open (one per distinct token that called recently)
DEFAULT_SIZE = 64


class _Entry:
    __slots__ = ("client", "evicted", "users")

    def __init__(self, client: HiveClient) -> None:
        self.client = client
        self.users = 0
        self.evicted = False


class ClientCache:
    """A bounded LRU of open clients, keyed by (URL, token)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()
        self._closed = False

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def client(self, url: str, token: str | None) -> AsyncIterator[HiveClient]:
        """The kept client for ``(url, token)`` (made if new) for the ``with`` block."""
        if self._closed:
            raise RuntimeError("the client cache is closed")
        key = (url, token)
        e = self._entries.get(key)
        if e is None:
            e = self._entries[key] = _Entry(HiveClient(url, token))
            while len(self._entries) > self.size:
                _, old = self._entries.popitem(last=False)
                old.evicted = True
                if not old.users:
                    await old.client.close()
        else:
            self._entries.move_to_end(key)
        e.users += 1
        try:
            yield e.client
        finally:
            e.users -= 1
            if e.evicted and not e.users:
                await e.client.close()

    async def close(self) -> None:
        """Close every kept client (the hub is stopping); later calls are refused."""
        self._closed = True
        entries, self._entries = list(self._entries.values()), OrderedDict()
        for e in entries:
            e.evicted = True
            await e.client.close()
