"""Measure a proposed hub change without touching the repository.

``python -m bench.experiments DEST PATCH[,PATCH...]`` copies ``hivehub/`` to
``DEST`` (which must lie outside this checkout) and applies the named patches to
the copy; then ``HIVEBENCH_HUB_SRC=DEST python -m bench --only NAME`` runs the
hub subprocesses of a bench from that copy (agents, clients and baselines are
unchanged). Each patch is the smallest edit that tests one hot spot named in
``docs/performance.md``; they are experiments, not production code (some reach
into aiohttp internals), and they fail loudly when the code they patch changed.

Patches:

* ``agentpipe`` -- ``server/agents.py``: the agent socket's reader hands each
  report to its own task instead of awaiting its commit before reading the next
  frame (order is kept: ``Hive.handle`` runs before the first ``await``).
* ``coalesce`` -- ``server/stream.py``: a subscriber's sender writes everything
  queued in one ``transport.write`` (frames built in Python), instead of one
  ``send_frame`` -- one syscall -- per event.
* ``bounds`` -- ``store/sqlite.py``: ``SELECT MIN(..), MAX(..)`` scans the table;
  two scalar subqueries use the primary key.
* ``batchwrite`` -- ``server/stream.py``: ``on_published`` writes, per caught-up
  subscriber, the frames of every event of a commit batch it matches in one
  ``transport.write`` (one syscall per subscriber per batch, not per event).
* ``gcfreeze`` -- ``server/service.py``: after folding the log at start, ``gc.freeze()``
  the result, so the cyclic GC stops re-traversing the whole projection.
* ``replayfast`` -- ``bounds`` + ``server/stream.py``: ``/ws?since=`` replay reads
  10,000-row pages, prefetches the next page while sending the current one, and
  writes frames coalesced (256 KiB per write).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FRAME = """
def _frame(body: bytes) -> bytes:
    n = len(body)
    if n < 126:
        return bytes((0x81, n)) + body
    if n < 65536:
        return b"\\x81\\x7e" + n.to_bytes(2, "big") + body
    return b"\\x81\\x7f" + n.to_bytes(8, "big") + body


async def _flush(ws, parts) -> None:  # type: ignore[no-untyped-def]
    w = ws._writer
    if ws.compress or w is None:
        for p in parts:
            await ws.send_frame(p[2 if p[1] < 126 else 4 if p[1] == 126 else 10:], WSMsgType.TEXT)
        return
    w.transport.write(b"".join(parts))
    if w.transport.get_write_buffer_size() > 65536:
        await w.protocol._drain_helper()

"""


class Patcher:
    def __init__(self, dst: Path) -> None:
        self.dst = dst

    def sub(self, path: str, old: str, new: str) -> None:
        p = self.dst / path
        s = p.read_text()
        if old not in s:
            raise SystemExit(f"{path}: the code this patch expects has changed:\n{old[:300]}")
        p.write_text(s.replace(old, new, 1))

    def helpers(self) -> None:
        p = self.dst / "hivehub/server/stream.py"
        if "def _frame(" not in p.read_text():
            self.sub("hivehub/server/stream.py", "\nclass Subscriber:", FRAME + "\nclass Subscriber:")

    def agentpipe(self) -> None:
        self.sub(
            "hivehub/server/agents.py",
            """                if msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)""",
            """                if msg.type == WSMsgType.TEXT:
                    t = asyncio.create_task(self._on_text(conn, msg.data))
                    _INFLIGHT.add(t)
                    t.add_done_callback(_INFLIGHT.discard)""",
        )
        self.sub(
            "hivehub/server/agents.py",
            'log = logging.getLogger("hivehub.agents")',
            'log = logging.getLogger("hivehub.agents")\n_INFLIGHT: set = set()  # type: ignore[type-arg]',
        )

    def coalesce(self) -> None:
        self.helpers()
        self.sub(
            "hivehub/server/stream.py",
            """            q = sub.queue
            while q:
                seq, body = q.popleft()
                await ws.send_frame(body, WSMsgType.TEXT)
                self.delivered += 1
                if seq:
                    sub.last_seq = seq
                if sub.closing:
                    break""",
            """            q = sub.queue
            if ws.compress or ws._writer is None:
                while q:
                    seq, body = q.popleft()
                    await ws.send_frame(body, WSMsgType.TEXT)
                    self.delivered += 1
                    if seq:
                        sub.last_seq = seq
                    if sub.closing:
                        break
                continue
            while q and not sub.closing:
                items = list(q)
                q.clear()
                self.delivered += len(items)
                for seq, _ in reversed(items):
                    if seq:
                        sub.last_seq = seq
                        break
                await _flush(ws, [_frame(b) for _, b in items])""",
        )

    def bounds(self) -> None:
        self.sub(
            "hivehub/store/sqlite.py",
            '"SELECT MIN(sequence), MAX(sequence) FROM events"',
            '"SELECT (SELECT MIN(sequence) FROM events), (SELECT MAX(sequence) FROM events)"',
        )

    def replayfast(self) -> None:
        self.bounds()
        self.helpers()
        p = self.dst / "hivehub/server/stream.py"
        s = p.read_text()
        a = s.find("        after = since\n        need_keys")
        b = s.find("    async def _sender")
        if a < 0 or b < a:
            raise SystemExit("server/stream.py: _replay has changed")
        p.write_text(
            s[:a]
            + """        after = since
        need_keys = sub.agent_id is not None or sub.task_id is not None
        page = 10000
        nxt = asyncio.ensure_future(store.read(after, page)) if after < ceiling else None
        try:
            while nxt is not None:
                rows = await nxt
                nxt = None
                if not rows:
                    break
                if rows[-1].sequence < ceiling:
                    nxt = asyncio.ensure_future(store.read(rows[-1].sequence, page))
                out: list[bytes] = []
                size = 0
                for r in rows:
                    if r.sequence > ceiling:
                        break
                    if sub.types is not None and r.type not in sub.types:
                        continue
                    if need_keys:
                        aids, tids = routing_keys(decode_event(r.body).data)
                        if not sub.matches(r.type, aids, tids):
                            continue
                    out.append(_frame(r.body))
                    size += len(r.body)
                    if size > 262144:
                        await _flush(sub.ws, out)
                        out, size = [], 0
                if out:
                    await _flush(sub.ws, out)
        finally:
            if nxt is not None:
                nxt.cancel()

"""
            + s[b:]
        )

    def batchwrite(self) -> None:
        """One transport.write per subscriber per commit batch (the frames of every
        event of the batch it matches, joined), instead of one per event."""
        p = self.dst / "hivehub/server/stream.py"
        s = p.read_text()
        old = """                if frame is None and s.raw is not None:
                    frame = text_frame(body)  # once per event, shared by every subscriber
                delivered += s.push(seq, body, frame)
        self.delivered += delivered"""
        if old not in s:
            raise SystemExit("server/stream.py: on_published has changed")
        s = s.replace(
            old,
            """                if frame is None and s.raw is not None:
                    frame = text_frame(body)  # once per event, shared by every subscriber
                got = joined.get(s)
                if got is None and s.raw is not None and frame is not None and not s.queue and not s.closing:
                    got = joined[s] = []
                if got is not None:
                    got.append((seq, body, frame))
                else:
                    delivered += s.push(seq, body, frame)
        for s, items in joined.items():
            t = s.raw
            if t is not None and not t.is_closing() and t.get_write_buffer_size() <= WRITE_HIGH:
                t.write(b"".join([f for _, _, f in items]))
                for seq, _, _ in reversed(items):
                    if seq:
                        s.last_seq = seq
                        break
                delivered += len(items)
            else:
                for seq, body, frame in items:
                    delivered += s.push(seq, body, frame)
        self.delivered += delivered""",
        )
        s = s.replace(
            """        delivered = 0
        for p in batch:
            seq, body, typ, aids, tids = p.sequence, p.body, p.type, p.agent_ids, p.task_ids""",
            """        delivered = 0
        joined: dict[Subscriber, list[tuple[int, bytes, bytes]]] = {}
        for p in batch:
            seq, body, typ, aids, tids = p.sequence, p.body, p.type, p.agent_ids, p.task_ids""",
            1,
        )
        p.write_text(s)

    def gcfreeze(self) -> None:
        self.sub(
            "hivehub/server/service.py",
            """        log.info("log replayed: %d events", hive.sequence)""",
            """        log.info("log replayed: %d events", hive.sequence)
        import gc

        gc.collect()
        gc.freeze()  # the folded log is long-lived: keep it out of every later full collection""",
        )


def build(dst: Path, patches: list[str]) -> Path:
    dst = dst.resolve()
    if dst == ROOT or ROOT in dst.parents:
        raise SystemExit("DEST must be outside the repository")
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    shutil.copytree(ROOT / "hivehub", dst / "hivehub", ignore=shutil.ignore_patterns("__pycache__"))
    p = Patcher(dst)
    for name in patches:
        fn = getattr(p, name, None)
        if name.startswith("_") or name in ("sub", "helpers") or fn is None:
            raise SystemExit(
                f"unknown patch {name!r}; known: agentpipe, coalesce, batchwrite, bounds, gcfreeze, replayfast"
            )
        fn()
    return dst


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    out = build(Path(sys.argv[1]), [x for x in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if x])
    print(out)
