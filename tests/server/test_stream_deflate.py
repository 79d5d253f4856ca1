"""permessage-deflate on /ws (RFC 7692): negotiated without context takeover, every
event compressed once and the same bytes sent to every compressed subscriber,
small messages uncompressed (docs/api.md "The /ws stream").

Two real clients: aiohttp's (``compress=15``, which offers no context takeover of
its own), and a raw RFC 6455 client below that shows what aiohttp hides: the RSV1
bit of every frame and the exact bytes, each compressed frame inflated by a fresh
decompressor (it must need no earlier message).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import zlib
from typing import Any

import msgspec

from hivehub.server.websocket import DEFLATE_MIN, negotiate_deflate

from .conftest import WAIT, Hub, ask, recv_until

#: a task description that makes its task_created event well over DEFLATE_MIN (any
#: task_created is about 1,000 bytes; a task_cancelled, about 370, is under it)
BIG = "All the agents of the hive compress well. " * 40
TASK_EVENTS = ("task_created", "task_cancelled")


class RawWS:
    """A WebSocket client that reports each server frame as (rsv1, opcode, payload)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extensions: str) -> None:
        self.reader, self.writer = reader, writer
        #: the Sec-WebSocket-Extensions of the hub's 101 response ("" if none)
        self.extensions = extensions

    @classmethod
    async def open(cls, hub: Hub, path: str = "/ws", offer: str | None = None) -> RawWS:
        server = hub.client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        ext = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)).decode()
        assert head.startswith("HTTP/1.1 101"), head
        m = re.search(r"^sec-websocket-extensions:\s*(.*?)\r$", head, re.I | re.M)
        return cls(reader, writer, m.group(1) if m else "")

    async def frame(self) -> tuple[bool, int, bytes]:
        """The next data frame (pings are answered, never returned)."""
        while True:
            b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), WAIT)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n)
            assert b0 & 0x80, "the hub sends every event as one final frame"
            if b0 & 0x0F == 0x9:
                self.send(0xA, payload)
                continue
            return bool(b0 & 0x40), b0 & 0x0F, payload

    async def message(self) -> tuple[bool, dict[str, Any], bytes, int]:
        """The next text message: (compressed, JSON, the frame's payload as sent, the
        message's length in bytes once inflated)."""
        rsv1, opcode, payload = await self.frame()
        assert opcode == 0x1, opcode
        body = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") if rsv1 else payload
        return rsv1, msgspec.json.decode(body), payload, len(body)

    async def task_events(self, n: int) -> list[tuple[bool, dict[str, Any], bytes, int]]:
        out = []
        while len(out) < n:
            m = await self.message()
            if m[1].get("type") in TASK_EVENTS:
                out.append(m)
        return out

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = (
            bytes((0x80 | opcode, 0x80 | n))
            if n < 126
            else bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
        )
        self.writer.write(head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload)))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def submit_batch(hub: Hub, descriptions: list[str]) -> list[str]:
    r = await hub.post("/api/tasks/batch", {"tasks": [{"description": d} for d in descriptions]})
    assert r.status == 201, r
    return [t["id"] for t in r.body["tasks"]]


async def cancel(hub: Hub, task_id: str) -> None:
    """A task_cancelled event: a small one, under DEFLATE_MIN."""
    r = await hub.post(f"/api/tasks/{task_id}/cancel", {})
    assert r.status == 200, r


def what(m: dict[str, Any]) -> str:
    """An event, for comparing lists: its type and its task's description or id."""
    d = m["data"]
    return f"{m['type']}:{d['task']['description'] if 'task' in d else d['task_id']}"


async def deflate_count(hub: Hub) -> int:
    text = (await hub.get("/metrics")).text
    m = re.search(r"^hive_ws_deflate_messages_total ([0-9.e+]+)$", text, re.M)
    assert m is not None, "hive_ws_deflate_messages_total not in /metrics"
    return int(float(m.group(1)))


# ------------------------------------------------------------------ negotiation


def test_the_offer_decides_the_window_and_the_client_side_takeover() -> None:
    assert negotiate_deflate("permessage-deflate; client_max_window_bits") == (15, False)
    assert negotiate_deflate("permessage-deflate; client_no_context_takeover") == (15, True)
    assert negotiate_deflate("permessage-deflate; server_max_window_bits=10") == (10, False)
    # a window zlib cannot honour, an unknown parameter, a repeated one: that offer is
    # declined and the next one tried
    assert negotiate_deflate("permessage-deflate; server_max_window_bits=8, permessage-deflate") == (
        15,
        False,
    )
    assert negotiate_deflate("permessage-deflate; x_unknown") is None
    assert (
        negotiate_deflate("permessage-deflate; server_no_context_takeover; server_no_context_takeover")
        is None
    )
    assert negotiate_deflate("x-webkit-deflate-frame") is None and negotiate_deflate(None) is None


async def test_aiohttp_with_compress_15_gets_every_event_intact_and_in_order(hub: Hub) -> None:
    """aiohttp offers no context takeover of its own: the hub accepts with
    server_no_context_takeover only, and small and big events alike arrive intact."""
    ws = await hub.ws(compress=15)
    assert ws.compress == 15
    ext = ws._response.headers.get("Sec-WebSocket-Extensions", "")
    assert ext == "permessage-deflate; server_no_context_takeover", ext
    want = []
    for d in ("small", BIG, BIG + "2"):  # one commit each: the one-event fan-out path
        t = await hub.submit(description=d)
        await cancel(hub, t["id"])
        want += [f"task_created:{d}", f"task_cancelled:{t['id']}"]
    ids = await submit_batch(hub, [BIG + "3", "tiny", BIG + "4"])  # one commit: the batch path
    want += [f"task_created:{d}" for d in (BIG + "3", "tiny", BIG + "4")]
    got = []
    while len(got) < len(want):
        m, _ = await recv_until(ws, lambda m: m.get("type") in TASK_EVENTS)
        got.append(m)
    assert [what(m) for m in got] == want
    assert [m["data"]["task"]["id"] for m in got[-3:]] == ids
    seqs = [m["sequence"] for m in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # a reply goes through the subscriber's queue and sender: it arrives too
    assert (await ask(ws, {"type": "get_status", "message_id": "s1"}))["type"] == "get_status_result"
    await ws.close()


async def test_small_messages_go_plain_big_ones_compressed_and_each_stands_alone(hub: Hub) -> None:
    raw = await RawWS.open(
        hub, offer="permessage-deflate; client_no_context_takeover; client_max_window_bits"
    )
    assert raw.extensions == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    t = await hub.submit(description="small")
    await cancel(hub, t["id"])
    ids = await submit_batch(hub, [BIG, "tiny", BIG + "!"])
    await cancel(hub, ids[1])
    events = await raw.task_events(6)
    assert [what(m) for _, m, _, _ in events] == [
        "task_created:small",
        f"task_cancelled:{t['id']}",
        f"task_created:{BIG}",
        "task_created:tiny",
        f"task_created:{BIG}!",
        f"task_cancelled:{ids[1]}",
    ]
    # RSV1 exactly on the messages of DEFLATE_MIN bytes or more (each inflated above
    # by a fresh decompressor: it needs no earlier message), and those shrink
    assert [(rsv1, size >= DEFLATE_MIN) for rsv1, _, _, size in events] == [
        (True, True),
        (False, False),
        (True, True),
        (True, True),
        (True, True),
        (False, False),
    ]
    assert all(len(payload) < size / 2 for rsv1, _, payload, size in events if rsv1)
    # a reply over the threshold is compressed too, and still answers the request
    raw.send(0x1, b'{"type": "get_status", "message_id": "st"}')
    while True:
        rsv1, m, _, size = await raw.message()
        if m.get("message_id") == "st":
            break
    assert m["type"] == "get_status_result" and rsv1 == (size >= DEFLATE_MIN)
    await raw.close()


async def test_resume_with_since_replays_compressed_then_goes_live(hub: Hub) -> None:
    t = await hub.submit(description=BIG + "before")
    await cancel(hub, t["id"])
    raw = await RawWS.open(hub, "/ws?since=0", offer="permessage-deflate; client_max_window_bits")
    assert raw.extensions == "permessage-deflate; server_no_context_takeover"
    live = await hub.submit(description=BIG + "after")
    await cancel(hub, live["id"])
    events = await raw.task_events(4)
    assert [what(m) for _, m, _, _ in events] == [
        f"task_created:{BIG}before",
        f"task_cancelled:{t['id']}",
        f"task_created:{BIG}after",
        f"task_cancelled:{live['id']}",
    ]
    assert [rsv1 for rsv1, *_ in events] == [True, False, True, False]
    seqs = [m["sequence"] for _, m, _, _ in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    await raw.close()


async def test_an_event_is_compressed_once_and_every_compressed_subscriber_gets_the_same_bytes(
    hub: Hub,
) -> None:
    offer = "permessage-deflate; client_max_window_bits"
    subs = [await RawWS.open(hub, "/ws?types=task_created,task_cancelled", offer=offer) for _ in range(4)]
    plain = await hub.ws(params={"types": "task_created,task_cancelled"})
    before = await deflate_count(hub)
    t = await hub.submit(description=BIG + "one")
    ids = await submit_batch(hub, [BIG + "two", BIG + "three"])
    await cancel(hub, t["id"])
    frames = [[(c, p) for c, _, p, _ in await s.task_events(4)] for s in subs]
    assert all(f == frames[0] for f in frames[1:]), "the subscribers got different bytes"
    assert [c for c, _ in frames[0]] == [True, True, True, False]
    # three big events for four compressed subscribers: three compressions, not twelve
    assert await deflate_count(hub) - before == 3
    # the plain subscriber got the same events, uncompressed
    got = [(await recv_until(plain, lambda m: m.get("type") in TASK_EVENTS))[0] for _ in range(4)]
    assert [what(m) for m in got] == [
        f"task_created:{BIG}one",
        f"task_created:{BIG}two",
        f"task_created:{BIG}three",
        f"task_cancelled:{t['id']}",
    ]
    assert [m["data"]["task"]["id"] for m in got[1:3]] == ids
    for s in subs:
        await s.close()
    await plain.close()


async def test_a_small_server_window_gets_compressed_only_what_fits_in_it(hub: Hub) -> None:
    """Without context takeover a message no longer than the client's window is valid
    for it, whatever window the shared compressor used; a longer one goes plain."""
    raw = await RawWS.open(hub, offer="permessage-deflate; server_max_window_bits=11")
    assert raw.extensions == "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"
    await hub.submit(description="")  # a task_created event of about 1,000 bytes
    await hub.submit(description=BIG)  # about 2,700
    events = await raw.task_events(2)
    assert [rsv1 for rsv1, *_ in events] == [True, False]
    assert [size <= 2048 for *_, size in events] == [True, False]
    await raw.close()


async def test_an_offer_the_hub_declines_gets_a_plain_stream(hub: Hub) -> None:
    raw = await RawWS.open(hub, offer="permessage-deflate; server_max_window_bits=8")
    assert raw.extensions == ""
    await hub.submit(description=BIG)
    ((rsv1, m, _, _),) = await raw.task_events(1)
    assert not rsv1 and m["data"]["task"]["description"] == BIG
    await raw.close()
