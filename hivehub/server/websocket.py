"""WebSocket transport helpers shared by ``/ws`` (stream.py) and ``/agents/ws``
(agents.py): waiting on a backed-up socket, cutting a peer off, lingering after
a close on an oversized frame."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from aiohttp import web

from ..protocol.errors import CLOSE_TOO_BIG

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
