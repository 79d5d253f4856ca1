"""A cheap subscriber process: many /ws connections read in bulk, counted, not parsed.

``python -m bench.fanout_bulk_client --port P --conns N [--poll-ms 2]``

Same stdin protocol as ``bench.fanout_client`` (``ready N``, then ``report``,
``final``, ``exit``; one JSON line per answer, the same keys), so
``bench.fanout.Clients`` drives it. What differs is how it reads: every
``--poll-ms`` it drains each socket with non-blocking ``recv_into`` (many frames
per syscall) and counts the bench markers (``bench.events_template``) in the
bytes with ``bytes.count``, without a Python call per frame. A delivery costs it
well under a microsecond of CPU, against several for the frame-by-frame
receiver; that is its purpose: on a 2-core machine the subscribers must not eat
the CPU of the replicas they measure (``bench/fanout_replicas.py``).

What it cannot measure: the exact latency of each delivery (a frame waits in the
socket until the next sweep). Per chunk read it records, for every marker in the
chunk, the age of the *oldest* one at read time: an upper bound of each
delivery's send-to-receive latency, at most one poll interval (plus the sweep)
above the truth. Exact latencies come from ``bench.fanout_client`` probes held
next to these connections.

The hub must not expect pongs from these connections (the bench runs it with a
long ``--ws-heartbeat``): pings are not parsed out of the byte stream.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import socket
import sys
from time import monotonic, time
from typing import Any

from bench.common import Histogram, raise_nofile
from bench.events_template import MARK, PLACEHOLDER

#: a marker is counted once all of it is in the bytes read: its start is at most
#: ``len - M``; the last ``M - 1`` bytes are carried to the next read
M = len(PLACEHOLDER)


def handshake(host: str, port: int, path: str) -> tuple[socket.socket, bytes]:
    """A blocking WebSocket upgrade; returns the socket (non-blocking from now) and
    the bytes that came after the response head (frames already sent)."""
    s = socket.create_connection((host, port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError(f"handshake refused: {head[:80]!r}")
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s, rest


class Counter:
    """Markers per phase letter, first/last read time, and the upper-bound latencies."""

    def __init__(self) -> None:
        self.total = 0
        self.bytes = 0
        self.count: dict[int, int] = {}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        #: per phase: (age of the oldest marker in a read, markers in that read)
        self.ub: dict[int, list[tuple[float, int]]] = {}

    def feed(self, region: bytearray, size: int, now: float) -> None:
        """Count the markers wholly in ``region[:size]`` (searched in place: no copy)."""
        end = size - M + len(MARK)  # occurrences wholly before it start at <= size - M
        if end < len(MARK):
            return
        i = region.find(MARK, 0, end)
        if i < 0:
            return
        j = region.rfind(MARK, 0, end)
        pi, pj = region[i + 6], region[j + 6]
        if pi == pj:
            counts = {pi: region.count(MARK, 0, end)}
        else:  # a read across two phases (rare: the bench waits for each phase to drain)
            counts = {}
            for ph in {pi, pj, *self.count}:
                n = region.count(MARK + bytes((ph, 58)), 0, end)  # 58: ":"
                if n:
                    counts[ph] = n
        try:
            age: float | None = now - float(region[i + 18 : i + 35])
        except ValueError:
            age = None
        for ph, n in counts.items():
            self.total += n
            self.count[ph] = self.count.get(ph, 0) + n
            self.first.setdefault(ph, now)
            self.last[ph] = now
            if age is not None:
                self.ub.setdefault(ph, []).append((age, n))

    def phases(self, final: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for ph, n in self.count.items():
            d: dict[str, Any] = {"count": n, "first": self.first[ph], "last": self.last[ph]}
            if final:
                h = Histogram()
                for age, k in self.ub.get(ph, ()):
                    _add(h, age, k)
                d["hist_ub"] = h.to_json()
            out[chr(ph)] = d
        return out


def _add(h: Histogram, seconds: float, k: int) -> None:
    """``k`` samples of the same value (every marker of one read has the same bound)."""
    h.n += k
    if seconds <= 0:
        h.neg += k
        seconds = h.LO
    b = int(math.log10(max(seconds, h.LO) / h.LO) * h.BINS_PER_DECADE)
    h.counts[b] = h.counts.get(b, 0) + k


class Conn:
    __slots__ = ("sock", "tail", "open", "bytes")

    def __init__(self, sock: socket.socket, rest: bytes) -> None:
        self.sock = sock
        #: the last ``M - 1`` bytes read (a marker may start in them)
        self.tail = rest[-(M - 1) :]
        self.open = True
        self.bytes = len(rest)


async def main_async(a: argparse.Namespace) -> None:
    counter = Counter()
    conns: list[Conn] = []
    t0 = monotonic()
    for _ in range(a.conns):
        for attempt in range(5):
            try:
                conns.append(Conn(*handshake(a.host, a.port, a.path)))
                break
            except (OSError, ConnectionError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
    print(f"ready {len(conns)} {monotonic() - t0:.3f}", flush=True)

    size = 1 << 20
    buf = bytearray(M + size)
    view = memoryview(buf)
    poll = a.poll_ms / 1000

    def sweep() -> None:
        now = time()
        for c in conns:
            if not c.open:
                continue
            while True:
                k = len(c.tail)
                buf[:k] = c.tail  # the carried bytes, then the read right after them
                try:
                    n = c.sock.recv_into(view[k : k + size])
                except BlockingIOError:
                    break
                except OSError:
                    n = 0
                if n == 0:
                    c.open = False
                    c.sock.close()
                    break
                c.bytes += n
                counter.feed(buf, k + n, now)
                c.tail = bytes(buf[max(0, k + n - (M - 1)) : k + n])
                if n < size:
                    break

    async def sweeper() -> None:
        while True:
            sweep()
            await asyncio.sleep(poll)

    sweeping = asyncio.create_task(sweeper())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = monotonic() + a.max_seconds

    def snapshot(final: bool) -> dict[str, Any]:
        sweep()  # what arrived up to now is counted
        closed = sum(1 for c in conns if not c.open)
        return {
            "open": len(conns) - closed,
            "closed": closed,
            "close_codes": {"eof": closed} if closed else {},
            "messages": counter.total,
            "bytes": sum(c.bytes for c in conns),
            "phases": counter.phases(final),
        }

    while monotonic() < deadline:
        try:
            line = await asyncio.wait_for(reader.readline(), max(0.1, deadline - monotonic()))
        except TimeoutError:
            break
        cmd = line.decode().strip()
        if not line or cmd == "exit":
            break
        if cmd in ("report", "final"):
            print(json.dumps(snapshot(cmd == "final")), flush=True)
    sweeping.cancel()
    for c in conns:
        if c.open:
            c.sock.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    raise_nofile()
    import uvloop

    uvloop.run(main_async(a))


if __name__ == "__main__":
    main()
