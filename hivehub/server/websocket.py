"""WebSocket transport helpers shared by ``/ws`` (stream.py) and ``/agents/ws``
(agents.py): waiting on a backed-up socket, cutting a peer off, lingering after
a close on an oversized frame; and, for ``/ws`` only, permessage-deflate without
context takeover (RFC 7692), so that an event is compressed once and the same
bytes go to every compressed subscriber (:class:`SharedDeflate`,
:class:`StreamWebSocket`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
import zlib
from typing import Any

from aiohttp import hdrs, web

from ..protocol.errors import CLOSE_TOO_BIG
from ..protocol.frames import frame_header

#: seconds a cut-off subscriber gets to read what was buffered for it and the close
CUT_GRACE = 10.0


async def wait_writable(protocol: Any, timeout: float) -> bool:
    """Wait until the socket's write buffer is below its low watermark.

    Uses the transport's watermarks (the protocol is paused above the high one and
    resumed below the low one) through aiohttp's drain helper, so nothing polls.
    Returns False when the socket is still backed up after ``timeout`` seconds."""
    try:
        await asyncio.wait_for(protocol._drain_helper(), timeout)
    except (TimeoutError, ConnectionError):
        return False
    return True


def abort_later(transport: Any, delay: float = CUT_GRACE) -> None:
    """Abort ``transport`` if it has not closed within ``delay`` seconds.

    ``close()`` waits for the write buffer to flush, which never happens for a peer
    that stopped reading: without this, its descriptor and buffer stay forever."""
    if transport is not None:
        asyncio.get_running_loop().call_later(delay, reset, transport)


def reset(transport: Any) -> None:
    """Drop a connection at once with a TCP reset (SO_LINGER 0).

    A plain close of a socket whose peer does not read leaves the kernel holding
    the unsent bytes (FIN_WAIT1 behind a zero window) for minutes, and the peer
    never learns it was cut off; a reset frees both ends now."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):  # already closed: nothing to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


#: seconds the hub keeps reading (and discarding) after it closed a connection on a
#: protocol error such as a frame over --max-frame (1009)
LINGER = 2.0


class HubWebSocket(web.WebSocketResponse):
    """``WebSocketResponse`` that does not drop the socket at once after a frame over
    ``max_msg_size``: aiohttp sends the 1009 close frame and then closes the transport
    straight away (from inside ``receive``), while the peer may still be sending the
    frame. The handler calls :func:`linger` instead; aiohttp closes the transport when
    the handler returns. (Overrides a private aiohttp hook; the e2e test
    ``test_frame_just_over_the_default_limit_closes_with_1009`` pins the behaviour.)"""

    def _set_code_close_transport(self, code: Any) -> None:
        if self._close_code == CLOSE_TOO_BIG:
            return  # keep 1009 as the close code; linger() then the handler's return close it
        super()._set_code_close_transport(code)


async def linger(ws: web.WebSocketResponse, transport: Any) -> None:
    """After closing on a bad frame (1009: over ``--max-frame``), keep the socket open
    until the peer closes it, for at most ``LINGER`` seconds.

    The peer may still be sending the rest of the oversized frame. Closing the socket
    with those bytes unread makes the kernel answer with a TCP reset, which can destroy
    the close frame before the peer reads it (it then sees "connection reset" instead
    of 1009). aiohttp keeps reading and drops what arrives after the error, so waiting
    is enough; there is no event for "the peer closed" to await, hence the poll."""
    if ws.close_code != CLOSE_TOO_BIG or transport is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER
    while not transport.is_closing() and loop.time() < deadline:
        await asyncio.sleep(0.02)


# ------------------------------------------------------------ permessage-deflate

#: messages shorter than this go uncompressed (RSV1 clear, which RFC 7692 allows per
#: message) even to a subscriber that negotiated permessage-deflate: below it deflate
#: saves a few hundred bytes at most, less than the cost of compressing
DEFLATE_MIN = 512
#: RSV1, set on the first frame of a compressed message (RFC 7692 6)
RSV1 = 0x40
_TAIL = b"\x00\x00\xff\xff"  # what a flush ends with; RFC 7692 7.2.1 drops it


class SharedDeflate:
    """One raw-deflate compressor for every ``/ws`` subscriber of the hub.

    Each message is compressed on its own: the flush after it is ``Z_FULL_FLUSH``,
    which also forgets the history, so no message refers back to an earlier one
    (no context takeover, RFC 7692 7.1.1.1). The bytes are therefore valid for any
    subscriber that negotiated permessage-deflate, and the fan-out compresses an
    event once and sends the same frame to all of them. The compressor (about
    256 KiB of zlib state) exists once per hub, not once per connection.

    Compression runs on the loop: once per event, at level 1 (zlib's fastest,
    what aiohttp uses), about 10 us for a 1 KiB event."""

    def __init__(self, level: int = 1) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15)
        #: messages compressed so far (exported as ``hive_ws_deflate_messages``)
        self.messages = 0

    def frame(self, payload: bytes) -> bytes:
        """A final text frame holding ``payload`` compressed, RSV1 set."""
        z = self._z
        data = z.compress(payload) + z.flush(zlib.Z_FULL_FLUSH)
        if data.endswith(_TAIL):
            data = data[:-4]
        self.messages += 1
        return frame_header(True, RSV1 | 0x1, len(data)) + data


def negotiate_deflate(offers: str | None) -> tuple[int, bool] | None:
    """The first acceptable permessage-deflate offer of a client, as
    ``(server window bits, client_no_context_takeover offered)``; None if none is.

    An offer with an unknown or repeated parameter, or a window size outside 9..15
    (zlib has no 8), is declined and the next one is tried (RFC 7692 5.1)."""
    if not offers:
        return None
    for offer in offers.split(","):
        name, *params = (x.strip() for x in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        seen: set[str] = set()
        wbits, client_nct, ok = 15, False, True
        for param in params:
            key, _, value = param.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key in seen:
                ok = False
                break
            seen.add(key)
            if key == "server_no_context_takeover" and not value:
                continue
            if key == "client_no_context_takeover" and not value:
                client_nct = True
            elif key == "server_max_window_bits" and value.isdigit() and 9 <= int(value) <= 15:
                wbits = int(value)
            elif key == "client_max_window_bits" and (
                not value or (value.isdigit() and 8 <= int(value) <= 15)
            ):
                continue  # the client may limit its own window: its messages inflate either way
            else:
                ok = False
                break
        if ok:
            return wbits, client_nct
    return None


def deflate_limit(wbits: int) -> int:
    """The longest message that may be sent compressed to a peer whose window for the
    server's messages is ``2**wbits`` bytes.

    Without context takeover a back-reference reaches only into the same message, so
    a message no longer than the window is valid for it whatever window the shared
    compressor used; a longer one goes uncompressed. 15 is deflate's own maximum."""
    return sys.maxsize if wbits >= 15 else 1 << wbits


class StreamWebSocket(HubWebSocket):
    """The ``/ws`` socket: permessage-deflate, when the client offers it, always
    without context takeover on the server's side.

    The response carries ``server_no_context_takeover`` whether or not the offer
    asked for it (RFC 7692 7.1.1.1 allows that; Chromium, Firefox, aiohttp and
    websockets accept it), and ``client_no_context_takeover`` when the offer has it
    (7.1.1.2). Sharing does not depend on the client: the server's messages are
    self-contained either way. The hub builds every frame itself
    (:class:`SharedDeflate`, ``text_frame``); aiohttp's per-connection compressor
    is never created, so a compressed subscriber costs what a plain one does."""

    def _handshake(self, request: Any) -> tuple[Any, str | None, int, bool]:
        headers, protocol, compress, notakeover = super()._handshake(request)
        if not compress:
            return headers, protocol, compress, notakeover
        accepted = negotiate_deflate(request.headers.get(hdrs.SEC_WEBSOCKET_EXTENSIONS))
        if accepted is None:  # aiohttp's parser is more lenient: decline what ours refuses
            headers.popall(hdrs.SEC_WEBSOCKET_EXTENSIONS, None)
            return headers, protocol, 0, False
        wbits, client_nct = accepted
        ext = ["permessage-deflate", "server_no_context_takeover"]
        if client_nct:
            ext.append("client_no_context_takeover")
        if wbits < 15:
            ext.append(f"server_max_window_bits={wbits}")
        headers[hdrs.SEC_WEBSOCKET_EXTENSIONS] = "; ".join(ext)
        # notakeover: should aiohttp's writer ever compress (it does not here), it
        # too forgets its history after each message, as the response promised
        return headers, protocol, wbits, True
