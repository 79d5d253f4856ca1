"""The baseline: a bare aiohttp WebSocket server doing only what the hub's
stream does on the wire, with none of the hub's work around it.

``python -m bench.bare_server --port P [--replay-db FILE]``

* ``/ws``: subscribers connect and only receive. ``POST /broadcast`` with
  ``{"rate": events_per_s, "count": n, "tick_ms": t, "phase": "s"}`` makes it
  send ``n`` events at that rate (``rate`` 0: as fast as possible), in ticks of
  ``tick_ms``: each tick builds the events due (one stamp into a real
  ``task_created`` envelope, the same bytes the hub sends, with the send time in
  the description) and writes each one to every subscriber with
  ``send_frame`` -- one encode per event, same as the hub. Answers when done.
* ``/replay``: sends every body of the ``events`` table of ``--replay-db`` (the
  hub's own log file, loaded into memory at start) as fast as possible, like
  the hub's ``/ws?since=0`` replay minus the store reads.

Uses uvloop like the hub. Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import time
from typing import Any

from aiohttp import WSMsgType, web

from bench.events_template import stamp, template


class Bare:
    def __init__(self, replay_db: str | None) -> None:
        self.subs: set[web.WebSocketResponse] = set()
        self.template = template()
        self.replay: list[bytes] = []
        if replay_db:
            c = sqlite3.connect(replay_db)
            self.replay = [bytes(b) for (b,) in c.execute("SELECT body FROM events ORDER BY sequence")]
            c.close()

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=True)
        await ws.prepare(request)
        self.subs.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.subs.discard(ws)
        return ws

    async def replay_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30.0, compress=True)
        await ws.prepare(request)
        for body in self.replay:
            await ws.send_frame(body, WSMsgType.TEXT)
        async for _ in ws:
            pass
        return ws

    async def broadcast(self, request: web.Request) -> web.Response:
        p: dict[str, Any] = await request.json()
        rate, count, tick = float(p["rate"]), int(p["count"]), float(p.get("tick_ms", 5)) / 1000
        phase = str(p.get("phase", "s"))
        sent = 0
        dropped = 0
        k = 0
        t0 = time.monotonic()
        while sent < count:
            k += 1
            due = min(count, int(rate * k * tick)) if rate > 0 else min(count, sent + 100)
            while sent < due:
                body = stamp(self.template, phase, sent, time.time())
                for ws in list(self.subs):
                    try:
                        await ws.send_frame(body, WSMsgType.TEXT)
                    except Exception:
                        dropped += 1
                sent += 1
            if rate > 0:
                await asyncio.sleep(max(0.0, t0 + k * tick - time.monotonic()))
            else:
                await asyncio.sleep(0)
        return web.json_response(
            {"sent": sent, "subscribers": len(self.subs), "seconds": time.monotonic() - t0, "errors": dropped}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"subscribers": len(self.subs), "replay_events": len(self.replay)})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--replay-db")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    b = Bare(a.replay_db)
    app = web.Application()
    app.router.add_get("/ws", b.ws)
    app.router.add_get("/replay", b.replay_ws)
    app.router.add_post("/broadcast", b.broadcast)
    app.router.add_get("/health", b.health)
    web.run_app(app, host="127.0.0.1", port=a.port, access_log=None, print=None, handle_signals=True)


if __name__ == "__main__":
    main()
