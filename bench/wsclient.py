"""A minimal, fast RFC 6455 WebSocket *receiver* for the benchmarks.

Why not ``aiohttp.ClientSession.ws_connect``: aiohttp's client resolves one
future per message (``receive()``), which costs several microseconds per frame;
with 100 subscribers at 1,000 events/s the clients would need most of a core,
on a 2-core machine shared with the server under test. This protocol parses
every frame that arrived in one ``data_received`` call in a tight loop and
hands the payload to a callback: no future, no task switch per frame.

It speaks the protocol correctly for what the benches need: client handshake
(no extensions, or permessage-deflate offered as browsers do: then compressed
messages, RSV1 set, are inflated with one decompressor per connection, as a
browser keeps one), unmasked server frames of any length, fragmented messages,
masked pong replies to pings, and the close handshake.
``bench/fanout.py`` measures its capacity against the bare server before
measuring the hub (the client-side ceiling is reported with the results).
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time
import zlib
from collections.abc import Callable

import msgspec

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + _U16.pack(n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + _U64.pack(n)
    body = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
    return head + mask + body


class WSReceiver(asyncio.Protocol):
    """One WebSocket connection; ``on_message(payload: bytes)`` per text/binary message."""

    def __init__(
        self, host: str, port: int, path: str, on_message: Callable[[bytes], None], deflate: bool = False
    ) -> None:
        self.host, self.port, self.path = host, port, path
        #: offer permessage-deflate as browsers do (compressed payloads are inflated)
        self.deflate = deflate
        self._inflater: zlib._Decompress | None = None
        self._frag_rsv1 = False
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._upgraded = False
        self._frag: bytearray | None = None
        self.messages = 0
        self.bytes = 0

    # -------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                if self.deflate
                else ""
            )
            + "\r\n"
        )
        self.transport.write(req.encode())  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(f"handshake refused: {status!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            del buf[: end + 4]
            self._upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse()

    def _parse(self) -> None:
        buf = self._buf
        n = len(buf)
        pos = 0
        on_message = self.on_message
        count = 0
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = _U16.unpack_from(buf, pos + 2)[0]
                hdr = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = _U64.unpack_from(buf, pos + 2)[0]
                hdr = 10
            end = pos + hdr + ln
            if end > n:
                break
            opcode = b0 & 0x0F
            payload = bytes(buf[pos + hdr : end])
            pos = end
            if opcode == OP_TEXT or opcode == OP_BIN:
                if b0 & 0x80:
                    count += 1
                    self.bytes += ln
                    on_message(self._inflate(payload) if b0 & 0x40 else payload)
                else:
                    self._frag = bytearray(payload)
                    self._frag_rsv1 = bool(b0 & 0x40)  # RSV1 is on a message's first frame
            elif opcode == OP_CONT:
                if self._frag is not None:
                    self._frag += payload
                    if b0 & 0x80:
                        msg, self._frag = bytes(self._frag), None
                        count += 1
                        self.bytes += len(msg)
                        on_message(self._inflate(msg) if self._frag_rsv1 else msg)
            elif opcode == OP_PING:
                assert self.transport is not None
                self.transport.write(_masked_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = _U16.unpack_from(payload, 0)[0] if len(payload) >= 2 else None
                reason = payload[2:].decode(errors="replace")
                self._close(code, reason, reply=True)
                break
        if pos:
            del buf[:pos]
        self.messages += count

    def _inflate(self, payload: bytes) -> bytes:
        """One compressed message (RFC 7692 7.2.2: the flush tail is appended back)."""
        if self._inflater is None:
            self._inflater = zlib.decompressobj(-15)
        return self._inflater.decompress(payload + b"\x00\x00\xff\xff")

    def _close(self, code: int | None, reason: str, reply: bool) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            if reply:
                t.write(_masked_frame(OP_CLOSE, _U16.pack(code or 1000)))
            t.close()
        if not self.closed.done():
            self.closed.set_result((code, reason))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the handshake"))
        if not self.closed.done():
            self.closed.set_result((None, str(exc) if exc else "connection lost"))

    # -------------------------------------------------------- API

    def close(self, code: int = 1000) -> None:
        self._close(code, "", reply=True)


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: Callable[[bytes], None],
    timeout: float = 30.0,
    deflate: bool = False,
) -> WSReceiver:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: WSReceiver(host, port, path, on_message, deflate), host, port), timeout
    )
    await asyncio.wait_for(proto.opened, timeout)
    return proto


class _Data(msgspec.Struct):
    task_id: str = ""


class _Env(msgspec.Struct):
    type: str
    data: _Data


_completion = msgspec.json.Decoder(_Env)


class Completions:
    """The ``task_completed`` events of a /ws stream (``on_message`` is its
    callback): ``at`` maps each task id to when its first completion arrived, and
    ``done`` resolves once ``n`` distinct tasks have completed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.at: dict[str, float] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, payload: bytes) -> None:
        try:
            env = _completion.decode(payload)
        except msgspec.DecodeError:
            return
        if env.type == "task_completed":
            self.at.setdefault(env.data.task_id, time.time())
            if len(self.at) >= self.n and not self.done.done():
                self.done.set_result(None)
