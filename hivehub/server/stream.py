"""The /ws event stream: filters, resume with ``since``, snapshots, control commands.

Fan-out cost per event per subscriber is one filter check and a deque append:
the body is the bytes encoded once by the service. Each subscriber
(:mod:`.subscriber`) has a bounded buffer and a sender task that drains it when
the subscriber is behind (otherwise the fan-out writes the ready-made frame
straight to its transport); a
subscriber that falls more than ``subscriber_buffer`` messages behind is
closed with 1013 and a reason naming the sequence to resume from, so it can
never stall the hub or the other subscribers.

permessage-deflate (every browser offers it) is negotiated without context
takeover (:class:`~.websocket.StreamWebSocket`), so an event is compressed once,
by the hub's one :class:`~.websocket.SharedDeflate`, and the same frame goes to
every compressed subscriber; events under ``DEFLATE_MIN`` bytes go uncompressed.

Resume without gap or duplicate: a subscriber is registered (buffering live
events with ``sequence > C``, C = last published at that instant) *before*
the log is read up to C, and live delivery starts only after that replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

import msgspec
from aiohttp import ClientConnectionResetError, WSMsgType, web

from ..core.errors import CursorOutOfRange, Forbidden
from ..core.events import decode_event
from ..core.model import TERMINAL
from ..protocol import codec
from ..protocol.codec import check_since, parse_since, parse_types
from ..protocol.errors import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_SLOW,
    HistoryTruncated,
    UnsupportedFrame,
    internal_error,
)
from ..protocol.frames import close_frame, error_message, frame_header, message, parse_envelope, text_frame
from ..protocol.messages import Pong, Snapshot, Subscribed, TaskResult
from .clientlimits import RateLimiter, attach, client_key
from .config import ServerConfig
from .errors import translate
from .keys import IDENTITY
from .ports import StatusBoard
from .service import HubService, Published, routing_keys
from .subscriber import (  # the subscriber's limits, where they were before subscriber.py
    OPT_IN,
    REPLAY_HIGH,
    REPLAY_PAGE,
    SNAPSHOT_FRAGMENT,
    WRITE_HIGH,
    Subscriber,
)
from .tokens import RANK
from .view import CommittedView, HiveReader
from .websocket import DEFLATE_MIN, SharedDeflate, StreamWebSocket, abort_later, linger, wait_writable

__all__ = [
    "OPT_IN",
    "REPLAY_HIGH",
    "REPLAY_PAGE",
    "SNAPSHOT_FRAGMENT",
    "WRITE_HIGH",
    "StreamHub",
    "Subscriber",
]

log = logging.getLogger("hivehub.stream")
_enc = msgspec.json.Encoder()


class StreamHub:
    def __init__(
        self,
        service: HubService,
        config: ServerConfig,
        view: CommittedView,
        rate_limiter: RateLimiter,
        board: StatusBoard,
    ) -> None:
        self.service = service
        self.config = config
        self.view = view
        self.rate_limiter = rate_limiter
        #: the status and alerts of a snapshot and of get_status (the hub)
        self.board = board
        self.subs: set[Subscriber] = set()
        self.delivered = 0
        #: the snapshot encoded once per sequence, shared by every socket sending it
        self._snap: tuple[tuple[int, Any], bytes] | None = None
        self._snap_users = 0
        #: the one compressor of every permessage-deflate subscriber (no context takeover)
        self.deflater = SharedDeflate()
        service.listeners.append(self.on_published)

    def wants(self, event_type: str) -> bool:
        """Does any subscriber explicitly ask for this type? (opt-in event types
        such as inter_module_message are only produced when someone asks)."""
        return any(s.types is not None and event_type in s.types for s in self.subs)

    def _cut(self, sub: Subscriber) -> None:
        """Close a subscriber that fell more than its buffer behind.

        Its sender may be parked forever on a socket the peer does not read, so the
        close frame (1013, naming the sequence to resume from: everything up to it
        is already in the socket's buffers, ahead of the close) is written straight
        to the transport, the subscriber leaves the fan-out at once, and the
        connection is aborted if the peer has not taken it all within
        ``CUT_GRACE`` seconds."""
        # (called from inside the fan-out loop over self.subs: leave the set alone now)
        asyncio.get_running_loop().call_soon(self.subs.discard, sub)
        reason = f"slow consumer: resume with since={sub.last_seq}"
        log.warning("closing slow subscriber %s: %s", sub.remote, reason)
        t = sub.transport
        if t is None:
            return
        if not t.is_closing():
            t.write(close_frame(CLOSE_SLOW, reason.encode()[:120]))
        # unconditionally: a transport that is "closing" still waits for its write
        # buffer to flush, which a peer that does not read never lets happen
        abort_later(t)

    def count(self) -> int:
        return len(self.subs)

    def max_backlog(self) -> int:
        return max((len(s.queue) for s in self.subs), default=0)

    def on_published(self, batch: list[Published]) -> None:
        subs = self.subs
        if not subs:
            return
        if len(batch) == 1:
            self._deliver_one(batch[0])
            return
        # Several events committed together: each subscriber gets its share in one
        # write. Frames are built once per event and shared by every subscriber:
        # the plain one, and the compressed one once a compressed subscriber wants it.
        frames: list[bytes | None] = [None] * len(batch)
        packed: list[bytes | None] | None = None
        deflate = self.deflater.frame
        delivered = 0
        for s in subs:
            mine: list[bytes] = []
            t = s.raw
            direct = (
                t is not None and not s.queue and not s.closing and t.get_write_buffer_size() <= WRITE_HIGH
            )
            dmax = s.deflate_max
            for i, p in enumerate(batch):
                if not self._wants(s, p):
                    continue
                f: bytes | None = None
                if dmax and DEFLATE_MIN <= len(p.body) <= dmax:
                    if packed is None:
                        packed = [None] * len(batch)
                    f = packed[i]
                    if f is None:
                        f = packed[i] = deflate(p.body)
                elif direct or dmax:
                    f = frames[i]
                    if f is None:
                        f = frames[i] = text_frame(p.body)
                if direct and f is not None and not s.queue and not s.closing:
                    mine.append(f)
                    if p.sequence:
                        s.last_seq = p.sequence
                else:
                    if mine:  # keep order: what was gathered goes out before the queue
                        delivered += s.write_frames(mine)
                        mine = []
                    s.queue_event(p.sequence, p.body, f)
            if mine:
                delivered += s.write_frames(mine)
        self.delivered += delivered

    def _deliver_one(self, p: Published) -> None:
        frame = packed = None
        body = p.body
        n = len(body)
        delivered = 0
        for s in self.subs:
            if not self._wants(s, p):
                continue
            # once per event, shared by every subscriber: the plain frame, and the
            # compressed one from the first compressed subscriber that wants it
            if DEFLATE_MIN <= n <= s.deflate_max:
                if packed is None:
                    packed = self.deflater.frame(body)
                delivered += s.push(p.sequence, body, packed)
                continue
            if frame is None and (s.raw is not None or s.deflate_max):
                frame = text_frame(body)
            delivered += s.push(p.sequence, body, frame)
        self.delivered += delivered

    @staticmethod
    def _wants(s: Subscriber, p: Published) -> bool:
        # sequence 0: a transient event (not logged) goes to everyone who matches,
        # except opt-in types, which only go to those who named them
        if p.sequence == 0:
            return not (s.types is None and p.type in OPT_IN) and s.matches_published(p)
        return p.sequence > s.min_seq and s.matches_published(p)

    async def close_all(self, code: int, reason: str) -> None:
        for s in list(self.subs):
            try:
                await s.ws.close(code=code, message=reason.encode())
            except Exception:
                pass

    # ------------------------------------------------------------ endpoint

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        cfg = self.config
        ws = StreamWebSocket(
            heartbeat=cfg.ws_heartbeat, max_msg_size=cfg.max_frame_bytes, compress=True, timeout=2.0
        )
        # Validate the query before upgrading, so mistakes get a plain 4xx.
        q = request.query
        types = parse_types(q.get("types"))
        since = parse_since(q.get("since"))
        snapshot = q.get("snapshot", "") in ("1", "true", "yes")
        await ws.prepare(request)
        attach(request, ws)  # a revoked token closes this connection
        sub = Subscriber(
            ws,
            cfg.subscriber_buffer,
            request.remote or "?",
            request.transport,
            cfg.client_buffer_bytes,
            self.deflater,
        )
        sub.on_cut = self._cut
        sub.types = types
        sub.agent_id = q.get("agent_id") or None
        sub.task_id = q.get("task_id") or None
        svc = self.service
        sender = None
        try:
            if snapshot:
                # The snapshot is valid at a committed sequence; live events up to it are
                # in it, the ones after it are buffered for this subscriber meanwhile.
                def build(r: HiveReader) -> bytes:
                    sub.min_seq = r.sequence
                    self.subs.add(sub)
                    return self._snapshot_bytes(r)

                # counted from the build: the shared copy is dropped when nobody
                # is waiting to send it or sending it any more
                self._snap_users += 1
                try:
                    body = await self.view.read(build)
                    await self._send_snapshot(sub, request, cfg.send_timeout, body)
                finally:
                    self._snap_users -= 1
                    if self._snap_users == 0:
                        self._snap = None  # do not keep a copy of the state
                if not sub.closing:
                    sub.last_seq = sub.min_seq
            elif since is not None:
                ceiling = svc.published_seq
                if since > ceiling:
                    await self._refuse_cursor(sub, since, ceiling)
                    return ws
                sub.min_seq = ceiling
                sub.last_seq = since
                self.subs.add(sub)
                await self._replay(sub, since, ceiling, request, cfg.send_timeout)
                if not sub.closing:
                    sub.last_seq = max(since, ceiling)
            else:
                sub.min_seq = svc.published_seq
                self.subs.add(sub)
                sub.last_seq = sub.min_seq
            sender = asyncio.create_task(self._sender(sub, cfg.send_timeout, request.protocol))
            sub.wake.set()  # a first pass drains what queued during the replay, then goes direct
            if not sub.closing:
                await self._reader(sub, request, cfg.send_timeout)
            await linger(ws, request.transport)
        except (ConnectionResetError, ClientConnectionResetError):
            pass  # the client went away during the snapshot or the replay: a normal disconnect
        except Exception:
            # after the upgrade an escaping exception would make aiohttp write an HTTP
            # 500 into the WebSocket stream: log the bug, close with 1011 instead
            log.exception("/ws connection failed")
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_INTERNAL, message=b"internal error")
        finally:
            self.subs.discard(sub)
            abort_later(request.transport)
            if sender is not None:
                sender.cancel()
                try:
                    await sender
                except (asyncio.CancelledError, Exception):
                    pass
        return ws

    async def _refuse_cursor(self, sub: Subscriber, since: int, head: int) -> None:
        """``since`` beyond the head: the same ``cursor_out_of_range`` as ``/api/events``,
        as an error message, then close 1008 ``"<code>: <message>"`` (the refusal convention)."""
        ws = sub.ws
        try:
            check_since(since, head)
        except CursorOutOfRange as exc:
            self._notice(sub, error_message(exc))
            await ws.close(
                code=CLOSE_POLICY, message=f"{exc.code}: since is beyond the head {head}".encode()[:120]
            )

    def snapshot(self, r: HiveReader) -> Snapshot:
        tasks = [t for t in r.tasks() if t.status not in TERMINAL]
        recent = list(itertools.islice((t for t in reversed(r.tasks()) if t.status in TERMINAL), 200))  # type: ignore[call-overload]
        return Snapshot(
            sequence=r.sequence,
            agents=list(r.agents()),
            tasks=tasks + recent,
            status=self.board.status(r),
            alerts=self.board.alerts(r),
        )

    def _snapshot_bytes(self, r: HiveReader) -> bytes:
        """The snapshot message, encoded once per sequence: sockets that ask for it at
        the same sequence share one copy (held while any of them is sending it). Keyed
        by the hive too: after a failed commit the rebuilt hive reuses sequences."""
        key = (r.sequence, self.service.hive)
        if self._snap is None or self._snap[0] != key:
            self._snap = (key, message("snapshot", self.snapshot(r)))
        return self._snap[1]

    async def _send_snapshot(
        self, sub: Subscriber, request: web.Request, timeout: float, body: bytes
    ) -> None:
        """Write the shared snapshot as one fragmented text message (RFC 6455 5.4).

        Each fragment goes out only once the socket has drained below its low
        watermark, so a peer that does not read holds at most about one fragment
        of its own, never a copy of the state; one that stays backed up for
        ``timeout`` seconds is cut off. Fragments are sent uncompressed (RSV1
        clear), which permessage-deflate allows per message; control frames (the
        protocol ping) may come between fragments. ``body`` is the shared copy;
        the caller releases it."""
        t = request.transport
        if t is None:
            raise ConnectionResetError
        view = memoryview(body)
        n = len(view)
        step = SNAPSHOT_FRAGMENT
        for start in range(0, max(n, 1), step):
            chunk = view[start : start + step]
            fin = start + step >= n
            opcode = 0x1 if start == 0 else 0x0
            if t.is_closing():
                raise ConnectionResetError
            t.write(frame_header(fin, opcode, len(chunk)) + chunk)
            if not fin and not await wait_writable(request.protocol, timeout):
                sub.cut()
                return

    async def _replay(
        self, sub: Subscriber, since: int, ceiling: int, request: web.Request, timeout: float
    ) -> None:
        store = self.service.store
        first, _last = await store.bounds()
        if first and since + 1 < first:
            notice = HistoryTruncated(
                f"events {since + 1}..{first - 1} are no longer retained; replay starts at {first}",
                requested_since=since,
                oldest_available=first,
            )
            self._notice(sub, error_message(notice))
        after = since
        need_keys = sub.agent_id is not None or sub.task_id is not None
        raw = sub.raw_ok  # a page of ready-made frames per write (compressed or not)
        read = getattr(store, "read_raw", store.read)  # plain tuples where the store offers them
        # the next page is read while this one is written
        pending: asyncio.Future[list[Any]] | None = asyncio.ensure_future(read(after, REPLAY_PAGE))
        while pending is not None:
            rows = await pending
            pending = None
            if not rows:
                break
            last = rows[-1][0]
            if last < ceiling:
                pending = asyncio.ensure_future(read(last, REPLAY_PAGE))
            frames: list[bytes] = []
            types = sub.types
            for seq, typ, body in rows:
                if seq > ceiling:
                    break
                if types is not None and typ not in types:
                    continue
                if need_keys:
                    aids, tids = routing_keys(decode_event(body).data)
                    if not sub.matches(typ, aids, tids):
                        continue
                if raw is not None:
                    # a replay is this subscriber's own: compressed for it alone
                    frames.append(sub.frame(body) if sub.deflater is not None else text_frame(body))
                else:
                    try:
                        await asyncio.wait_for(sub.ws.send_frame(body, WSMsgType.TEXT), timeout)
                    except TimeoutError:
                        sub.cut()  # backed up for the whole deadline: not reading
                        break
                    sub.last_seq = seq
            if sub.closing:
                break
            if raw is not None and frames:
                if raw.is_closing():
                    break
                raw.write(b"".join(frames))
                sub.last_seq = min(last, ceiling)
                # flow control: let the client drain (watermarks, no polling) before the
                # next page; one that stays backed up past the deadline is cut off
                if raw.get_write_buffer_size() > REPLAY_HIGH and not await wait_writable(
                    request.protocol, timeout
                ):
                    sub.cut()
                    break
            if last >= ceiling:
                break
        if pending is not None:
            pending.cancel()

    def _notice(self, sub: Subscriber, body: bytes) -> None:
        """A message written before the sender runs (a replay notice, a refusal):
        straight to the transport, as this connection's frame (never through
        aiohttp's writer, whose compressor would then exist for this connection)."""
        t = sub.transport
        if t is None or t.is_closing():
            raise ConnectionResetError
        t.write(sub.frame(body))

    async def _sender(self, sub: Subscriber, timeout: float, protocol: Any) -> None:
        ws = sub.ws
        framed = sub.deflater is not None  # the queue holds ready-made frames
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            if sub.closing:
                return  # cut off: _cut wrote the close frame
            q = sub.queue
            direct = sub.raw_ok is not None
            t = sub.transport
            while q:
                seq, body = q.popleft()
                sub.queued_bytes -= len(body)
                if sub.queued_bytes <= sub.budget // 4:
                    sub.idle.set()
                # Without aiohttp's compressor the frame is in the transport before the
                # first await (the drain): count it as sent already, so a cut-off
                # that happens during the drain names the right resume point. With
                # it the write comes after an await, so only after it.
                if seq and direct:
                    sub.last_seq = seq
                if framed:
                    if t is None or t.is_closing():
                        return
                    t.write(body)
                    if t.get_write_buffer_size() > WRITE_HIGH and not await wait_writable(protocol, timeout):
                        sub.cut()  # the socket stayed backed up for the whole deadline
                        return
                else:
                    try:
                        await asyncio.wait_for(ws.send_frame(body, WSMsgType.TEXT), timeout)
                    except TimeoutError:
                        sub.cut()  # the socket stayed backed up for the whole deadline
                        return
                self.delivered += 1
                if seq and not direct:
                    sub.last_seq = seq
                if sub.closing:
                    break
            if not q and not sub.closing:
                sub.idle.set()
                sub.raw = sub.raw_ok  # caught up: direct writes from now on

    def _reply(self, sub: Subscriber, body: bytes) -> None:
        # replies count against the same budget as events (a client sending requests
        # without reading the answers is cut off like any other slow consumer)
        if not sub.closing:
            sub.enqueue(0, body if sub.deflater is None else sub.frame(body))

    async def _reader(self, sub: Subscriber, request: web.Request, timeout: float) -> None:
        ws = sub.ws
        async for msg in ws:
            if sub.closing:
                break
            if not sub.idle.is_set():
                # replies are not being read: stop reading requests (TCP pushes back on
                # the client) until they drain; backed up past the deadline: cut off
                try:
                    await asyncio.wait_for(sub.idle.wait(), timeout)
                except TimeoutError:
                    sub.cut()
                if sub.closing:
                    break
            if msg.type == WSMsgType.TEXT:
                await self._on_text(sub, msg.data, request)
            elif msg.type == WSMsgType.BINARY:
                self._reply(sub, error_message(UnsupportedFrame("send JSON text frames")))
            elif msg.type == WSMsgType.ERROR:
                break

    async def _on_text(self, sub: Subscriber, text: str, request: web.Request) -> None:
        mid = None
        try:
            typ, data, mid = parse_envelope(text)
            reply = await self._command(sub, typ, data, mid, request)
            self._reply(sub, reply)
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                log.exception("ws command failed")
                mapped = internal_error()
            mid = mid or mapped.details.get("message_id")
            self._reply(sub, error_message(mapped, mid))

    async def _command(
        self, sub: Subscriber, typ: str, data: dict[str, Any], mid: str | None, request: web.Request
    ) -> bytes:
        svc = self.service
        rid = f"ws:{mid}" if mid else f"ws:{id(sub):x}"
        if typ == "ping":
            return message("pong", Pong(), mid)
        if typ == "subscribe":
            req = codec.subscribe(data)  # validates every field before any filter changes
            if not isinstance(req.types, msgspec.UnsetType):
                sub.types = parse_types(req.types)
            if not isinstance(req.agent_id, msgspec.UnsetType):
                sub.agent_id = req.agent_id or None
            if not isinstance(req.task_id, msgspec.UnsetType):
                sub.task_id = req.task_id or None
            return message("subscribed", Subscribed(**sub.filters()), mid)
        if typ in ("create_task", "cancel_task"):
            ident = request.get(IDENTITY)
            if ident is not None and RANK.get(ident.role, 0) < 2:
                raise Forbidden(f"role {ident.role} may not {typ}", role=ident.role)
            self.rate_limiter.check(client_key(request))
        committed = self.view
        if typ == "create_task":
            submit = codec.create_task(data, rid, self.config.max_json_depth)
            events = await svc.execute(submit)
            task_id = events[0].data.task.id  # type: ignore[attr-defined]
            return await committed.task(task_id, lambda t: message("create_task_result", TaskResult(t), mid))
        if typ == "cancel_task":
            cancel = codec.cancel_task(data, rid)
            await svc.execute(cancel)
            return await committed.task(
                cancel.task_id, lambda t: message("cancel_task_result", TaskResult(t), mid)
            )
        if typ == "get_status":
            board = self.board
            return await committed.read(lambda r: message("get_status_result", board.status(r), mid))
        raise codec.unknown_stream_request(typ)
