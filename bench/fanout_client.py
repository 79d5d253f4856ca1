"""One subscriber process for the fan-out and connection benches.

``python -m bench.fanout_client --port P --path /ws --conns N [--idle]``

Opens N WebSocket connections with the fast receiver (``bench.wsclient``),
prints ``ready N`` once all are open, then obeys one-word commands on stdin,
answering each with one JSON line on stdout:

* ``report``: connections open/closed (with close codes), messages per phase;
* ``final``: the same plus per-phase latency histograms (receive time minus the
  send time in the marker, same machine clock) and first/last receive times;
* ``exit``: close every connection and exit.

Every connection's messages are counted; those carrying a bench marker
(``bench.events_template``) are also bucketed by phase with their latency.
Bounded: the process exits by itself after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from array import array
from time import monotonic, time
from typing import Any

from bench.common import Histogram, raise_nofile
from bench.events_template import MARK
from bench.wsclient import WSReceiver, connect


class Stats:
    """Per phase letter: one latency float per marked message (appended raw; the
    histogram is built once, on ``final``), first and last receive times."""

    def __init__(self) -> None:
        self.total = 0
        self.lat: dict[int, array[float]] = {}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def on_message(self, payload: bytes) -> None:
        self.total += 1
        j = payload.find(MARK)
        if j < 0:
            return
        now = time()
        phase = payload[j + 6]
        try:
            sent = float(payload[j + 18 : j + 35])
        except ValueError:
            return
        arr = self.lat.get(phase)
        if arr is None:
            arr = self.lat[phase] = array("d")
            self.first[phase] = now
        arr.append(now - sent)
        self.last[phase] = now

    def phases(self, final: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for ph, arr in self.lat.items():
            d: dict[str, Any] = {"count": len(arr), "first": self.first[ph], "last": self.last[ph]}
            if final:
                h = Histogram()
                for v in arr:
                    h.add(v)
                d["hist"] = h.to_json()
            out[chr(ph)] = d
        return out


async def main_async(a: argparse.Namespace) -> None:
    stats = Stats()
    on_message = stats.on_message
    conns: list[WSReceiver] = []
    sem = asyncio.Semaphore(64)

    async def open_one() -> None:
        async with sem:
            for attempt in range(5):
                try:
                    conns.append(
                        await connect(a.host, a.port, a.path, on_message, timeout=30, deflate=a.deflate)
                    )
                    return
                except (OSError, ConnectionError, TimeoutError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))

    t0 = monotonic()
    await asyncio.gather(*(open_one() for _ in range(a.conns)))
    print(f"ready {len(conns)} {monotonic() - t0:.3f}", flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    deadline = monotonic() + a.max_seconds

    def snapshot(final: bool) -> dict[str, Any]:
        closed = [c for c in conns if c.closed.done()]
        codes: dict[str, int] = {}
        for c in closed:
            code = str(c.closed.result()[0])
            codes[code] = codes.get(code, 0) + 1
        out: dict[str, Any] = {
            "open": len(conns) - len(closed),
            "closed": len(closed),
            "close_codes": codes,
            "messages": stats.total,
            "bytes": sum(c.bytes for c in conns),
            "phases": stats.phases(final),
        }
        return out

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
    for c in conns:
        c.close()
    await asyncio.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/ws")
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--max-seconds", type=float, default=600)
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate, as browsers do")
    a = ap.parse_args()
    raise_nofile()
    import uvloop

    uvloop.run(main_async(a))


if __name__ == "__main__":
    main()
