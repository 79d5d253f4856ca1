"""The agent gateway: both transports of ``docs/agent-protocol.md``.

Assignments reach agents only after they are committed (this is a listener
on published events), so an agent never works on an assignment the hub could
still lose. Push agents (``/agents/ws``) get ``assign``, ``cancel`` and
``input`` messages; pull agents find their assignments through ``claim`` (and
the answers to their questions in the task's ``last_input``).

An ``input`` frame (the answer to an agent's ``input_request``) is pushed when
``task_input_received`` is published. An agent that was disconnected meanwhile
gets it again when it re-registers: for every task it still runs (its
``running`` map) that is ``running`` again with a ``last_input`` of that
attempt, the hub re-sends that answer. The agent has no ack for an answer, so
it may receive one it already has; it ignores an ``input`` whose
``request_id`` it is not waiting on. A task still ``input_required`` gets
nothing (the question is open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from ..core import commands as C
from ..core import policies
from ..core.errors import Forbidden, HiveError, InvalidInput, Unauthorized
from ..core.model import HELD, TaskStatus
from ..protocol import codec
from ..protocol.errors import (
    CLOSE_AGENT_REMOVED,
    CLOSE_AGENT_REPLACED,
    CLOSE_BACKED_UP,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    UnsupportedFrame,
    internal_error,
)
from ..protocol.frames import (
    batch_of,
    close_frame,
    decode_frame,
    envelope_of,
    error_message,
    message,
    text_frame,
)
from ..protocol.limits import check_depth
from ..protocol.messages import Ack, Assign, Cancel, InputFrame, Recall, Registered
from .clientlimits import attach
from .config import ServerConfig
from .errors import translate
from .keys import IDENTITY
from .service import HubService, Published
from .view import CommittedView, HiveReader
from .websocket import CUT_GRACE, HubWebSocket, abort_later, linger, wait_writable

log = logging.getLogger("hivehub.agents")
_enc = msgspec.json.Encoder()

#: reports of one agent being made durable at once (beyond this, reading waits)
MAX_INFLIGHT = 1000
#: the most messages one batch frame may carry (announced as ``max_batch``)
MAX_BATCH = 256
#: above this many bytes in the socket's write buffer, the hub reads the agent's next
#: frame only once the buffer drained (replies and assignments are not being read)
READ_HIGH = 256 * 1024


class AgentConn:
    """One connected push agent. Frames for it are coalesced: everything sent to
    it in one turn of the event loop goes out in a single transport write (one
    syscall instead of one per assign/ack/cancel). The connection is never
    compressed, so frames are written as they are built (``text_frame``)."""

    def __init__(
        self, agent_id: str, ws: web.WebSocketResponse, transport: Any, budget: int = 8 << 20
    ) -> None:
        self.agent_id = agent_id
        self.ws = ws
        self.transport = transport
        self._buf: list[bytes] = []
        self._buffered = 0
        self._scheduled = False
        #: bytes the hub may hold for this agent (coalesced frames + the socket's buffer)
        self.budget = budget
        self.closing = False
        #: while set, frames queue and nothing is written (until ``release``)
        self.held = False

    def backlog(self) -> int:
        t = self.transport
        return self._buffered + (t.get_write_buffer_size() if t is not None else 0)

    def send(self, body: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing() or self.closing:
            return
        frame = text_frame(body)
        self._buf.append(frame)
        self._buffered += len(frame)
        if self.backlog() > self.budget:
            self.cut()
            return
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def release(self, first: list[bytes]) -> None:
        """Write ``first`` (message bodies) ahead of everything queued while held."""
        frames = [text_frame(b) for b in first]
        self._buf[:0] = frames
        self._buffered += sum(len(f) for f in frames)
        self.held = False
        self._flush()

    def _flush(self) -> None:
        if self.held:
            return
        self._scheduled = False
        buf, self._buf = self._buf, []
        self._buffered = 0
        if buf and self.transport is not None and not self.transport.is_closing() and not self.closing:
            self.transport.write(b"".join(buf))

    def cut(self) -> None:
        """Close an agent that does not read (over its budget, or backed up past the
        deadline): the close frame (4013) goes straight to the transport, behind what
        is buffered, and the connection is aborted if not gone within ``CUT_GRACE``."""
        if self.closing:
            return
        self.closing = True
        self._buf, self._buffered = [], 0
        log.warning("closing agent %s: it does not read what the hub sends", self.agent_id)
        t = self.transport
        if t is None or t.is_closing():
            return
        t.write(close_frame(CLOSE_BACKED_UP, b"backed up: not reading"))
        abort_later(t, CUT_GRACE)

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        self._flush()
        await self.ws.close(code=code, message=reason.encode())


class AgentGateway:
    def __init__(self, service: HubService, config: ServerConfig) -> None:
        self.service = service
        self.view = CommittedView(service)
        self.config = config
        self.conns: dict[str, AgentConn] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        #: set by ``close_all`` at shutdown: parked claims answer "no task" at once
        #: instead of holding the hub's exit for up to their ``wait``
        self._closing = False
        #: pull deliveries: agent -> {(task, attempt): when}; an unstarted one is re-delivered
        #: to a later claim after ``redeliver_after`` seconds (its response may have been lost)
        self._delivered: dict[str, dict[tuple[str, int], float]] = {}
        self.redeliver_after = 10.0
        service.listeners.append(self.on_published)

    def count(self) -> int:
        return len(self.conns)

    # ------------------------------------------------------------ events -> agents

    def on_published(self, batch: list[Published]) -> None:
        # listeners run right after a commit: the live state is at least at this batch
        hive = self.service.reader()
        for p in batch:
            d: Any = p.event.data
            typ = p.type
            if typ == "task_assigned":
                if d.previous_agent_id:
                    self._cancel(d.previous_agent_id, d.task_id, d.attempt_number - 1, "rebalanced")
                conn = self.conns.get(d.agent_id)
                t = hive.task(d.task_id)
                if (
                    conn is not None
                    and t is not None
                    and t.assigned_agent_id == d.agent_id
                    and t.attempt == d.attempt_number
                ):
                    self._assign(conn, d.task_id, d.attempt_number)
                w = self._wakeups.get(d.agent_id)
                if w is not None:
                    w.set()
            elif typ == "task_input_received":
                conn = self.conns.get(d.agent_id)
                if conn is not None:
                    frame = InputFrame(
                        d.task_id, d.attempt_number, d.request_id, d.answer, d.timed_out, d.answered_by
                    )
                    conn.send(message("input", frame))
            elif typ == "task_recalled":
                conn = self.conns.get(d.agent_id)
                if conn is not None:
                    conn.send(message("recall", Recall(d.task_id, d.attempt_number, d.for_agent_id)))
            elif typ == "task_cancelled" and d.agent_id:
                self._cancel(d.agent_id, d.task_id, None, d.reason)
            elif typ == "task_failed" and d.agent_id and d.failure_kind in ("timeout", "agent_lost"):
                self._cancel(d.agent_id, d.task_id, d.attempt_number, d.failure_kind)
            elif typ == "task_released" and d.reason == "agent_removed":
                self._cancel(d.agent_id, d.task_id, d.attempt_number, "agent_removed")
            elif typ == "agent_removed":
                conn = self.conns.pop(d.agent_id, None)
                if conn is not None:
                    asyncio.ensure_future(conn.close(CLOSE_AGENT_REMOVED, "agent removed"))

    def _assign(self, conn: AgentConn, task_id: str, attempt: int) -> None:
        conn.send(self._assign_frame(self.service.reader(), task_id, attempt))

    @staticmethod
    def _assign_frame(r: HiveReader, task_id: str, attempt: int) -> bytes:
        return message("assign", Assign(r.task(task_id), attempt))

    def _cancel(self, agent_id: str, task_id: str, attempt: int | None, reason: str) -> None:
        conn = self.conns.get(agent_id)
        if conn is not None:
            conn.send(message("cancel", Cancel(task_id, attempt, reason)))

    # ------------------------------------------------------------ pull transport

    async def _next_undelivered(self, agent_id: str) -> bytes | None:
        """The next assignment to hand a pull agent, encoded, at the committed
        sequence (an assignment whose commit then fails is never handed out)."""
        marked: list[tuple[str, int]] = []

        def build(r: HiveReader) -> bytes | None:
            delivered = self._delivered.setdefault(agent_id, {})
            for key in marked:  # built again after a failed commit: that one was never handed out
                delivered.pop(key, None)
            marked.clear()
            a = r.find_agent(agent_id)
            if a is None:
                return None
            held = {(tid, r.task(tid).attempt) for tid in a.current_tasks}  # type: ignore[union-attr]
            for key in [k for k in delivered if k not in held]:
                del delivered[key]  # forget deliveries of tasks the agent no longer holds
            now = asyncio.get_running_loop().time()
            for tid in a.current_tasks:
                t = r.task(tid)
                assert t is not None
                if t.status != TaskStatus.ASSIGNED:
                    continue
                when = delivered.get((tid, t.attempt))
                if when is None or now - when >= self.redeliver_after:
                    delivered[(tid, t.attempt)] = now
                    marked.append((tid, t.attempt))
                    return _enc.encode({"task": t, "attempt": t.attempt})
            return None

        return await self.view.read(build)

    def wake(self, agent_id: str) -> None:
        """Wake a parked claim of this agent (it re-checks what it may return)."""
        w = self._wakeups.get(agent_id)
        if w is not None:
            w.set()

    async def claim(self, agent_id: str, wait: float, rid: str, held: Any = None) -> bytes | None:
        """Raises Unauthorized as soon as ``held`` (the request's entry in the
        connection registry) is revoked: a parked claim must not heartbeat an
        evicted agent back online."""
        svc = self.service
        await svc.execute(C.Heartbeat(id=rid, agent_id=agent_id))  # 404 for an unknown agent
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        # Waiting counts as being alive: heartbeat at a third of the timeout while parked.
        beat = policies.heartbeat_interval(svc.hive_config.heartbeat_timeout, floor=0.5) or 0.5
        while True:
            if held is not None and held.revoked:
                raise Unauthorized("token revoked")
            if self._closing:
                return None
            found = await self._next_undelivered(agent_id)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            w = self._wakeups.setdefault(agent_id, asyncio.Event())
            w.clear()
            try:
                await asyncio.wait_for(w.wait(), min(remaining, beat))
            except TimeoutError:
                if svc.reader().find_agent(agent_id) is None:
                    return None
                if held is not None and held.revoked:
                    continue  # raised at the top, without a heartbeat
                await svc.execute(C.Heartbeat(id=rid, agent_id=agent_id))

    # ------------------------------------------------------------ push transport

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        cfg = self.config
        # no permessage-deflate for agents: their frames are small and many, and
        # compressing each one cost a sixth of the hub's CPU in the tasks bench
        ws = HubWebSocket(
            heartbeat=cfg.ws_heartbeat, max_msg_size=cfg.max_frame_bytes, compress=False, timeout=2.0
        )
        await ws.prepare(request)
        conn: AgentConn | None = None
        try:
            conn = await self._register(ws, request)
            if conn is None:
                return ws
            inflight: set[asyncio.Task[None]] = set()
            async for msg in ws:
                if conn.closing:
                    break
                t = request.transport
                if t is not None and t.get_write_buffer_size() > READ_HIGH:
                    # what the hub sent is not being read: read nothing more until it
                    # drains (watermarks); backed up past the deadline: cut off
                    if not await wait_writable(request.protocol, cfg.send_timeout):
                        conn.cut()
                        break
                if msg.type == WSMsgType.TEXT:
                    # Each report runs as its own task: the core handles it at once (so
                    # reports keep their order) and the ack goes out when it is durable,
                    # while the next frames are read meanwhile. One report per commit
                    # per agent was the ceiling before. A batch frame is its messages
                    # one after the other, exactly as if each had come in its own frame.
                    deep = msg.data.count("{") + msg.data.count("[") >= cfg.max_json_depth
                    for obj in self._messages(conn, msg.data):
                        task = asyncio.create_task(self._on_message(conn, obj, deep))
                        inflight.add(task)
                        task.add_done_callback(inflight.discard)
                        if len(inflight) > MAX_INFLIGHT:
                            await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                elif msg.type == WSMsgType.BINARY:
                    conn.send(error_message(UnsupportedFrame("send JSON text frames")))
                elif msg.type == WSMsgType.ERROR:
                    break
            await linger(ws, request.transport)
        except ConnectionResetError:
            pass  # the peer went away (e.g. while a write waited on a full socket): a disconnect
        except Exception:
            # after the upgrade an escaping exception would make aiohttp log an unhandled
            # error and write an HTTP 500 into the WebSocket stream: close with 1011 instead
            log.exception("/agents/ws connection failed")
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_INTERNAL, message=b"internal error")
        finally:
            abort_later(request.transport)
            if conn is not None:
                conn._flush()
                if self.conns.get(conn.agent_id) is conn:
                    del self.conns[conn.agent_id]
                    try:
                        await self.service.execute(C.AgentDisconnected(id="ws-close", agent_id=conn.agent_id))
                    except HiveError:
                        pass
        return ws

    async def _register(self, ws: web.WebSocketResponse, request: web.Request) -> AgentConn | None:
        try:
            msg = await ws.receive(timeout=30)
        except TimeoutError:
            await ws.close(code=CLOSE_POLICY, message=b"register first")
            return None
        if msg.type != WSMsgType.TEXT:
            await ws.close(code=CLOSE_POLICY, message=b"register first")
            return None
        mid = None
        try:
            obj = msgspec.json.decode(msg.data)
            if not isinstance(obj, dict) or obj.get("type") != "register":
                raise InvalidInput('the first message must be {"type": "register", "data": {...}}')
            mid = obj.get("message_id")
            if mid is not None and not isinstance(mid, str):
                raise InvalidInput("message_id must be a string")  # the reply echoes it as sent
            data = obj.get("data")
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise InvalidInput('"data" must be an object')
            # the same depth limit as POST /api/agents
            spec, running_map = codec.register(data, self.config.max_json_depth)
            ident = request.get(IDENTITY)
            if ident is not None and ident.role == "agent":
                if spec.id not in (None, ident.agent_id):
                    raise Forbidden(
                        f"this token may only act as agent {ident.agent_id}", agent_id=ident.agent_id
                    )
                spec.id = ident.agent_id
            events = await self.service.execute(
                C.RegisterAgent(id=f"agent-ws:{mid}", spec=spec, running=running_map)
            )
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                log.exception("agent registration failed")
                mapped = internal_error()
            await ws.send_frame(error_message(mapped, mid), WSMsgType.TEXT)
            await ws.close(code=CLOSE_POLICY, message=b"registration failed")
            return None
        agent_id = spec.id or events[0].data.agent.id  # type: ignore[attr-defined]
        attach(request, ws, agent_id)  # a revoked token closes this connection
        old = self.conns.get(agent_id)
        conn = AgentConn(agent_id, ws, request.transport, self.config.client_buffer_bytes)
        # held: what is published while the reply below waits for its commit queues
        # behind "registered", which must come first
        conn.held = True
        self.conns[agent_id] = conn
        if old is not None:
            asyncio.ensure_future(old.close(CLOSE_AGENT_REPLACED, "replaced by a new connection"))

        def build(r: HiveReader) -> list[bytes]:
            a = r.agent(agent_id)
            frames = [
                message(
                    "registered",
                    Registered(
                        agent_id=agent_id,
                        agent=a,
                        heartbeat_interval=self.heartbeat_interval(),
                        heartbeat_timeout=r.config.heartbeat_timeout,
                        max_frame_bytes=self.config.max_frame_bytes,
                        max_batch=MAX_BATCH,
                    ),
                    mid,
                )
            ]
            # Re-deliver what is assigned to it and not started (a reconnect, or a hub restart).
            for tid in list(a.current_tasks):
                t = r.task(tid)
                if t is not None and t.status == TaskStatus.ASSIGNED:
                    frames.append(self._assign_frame(r, tid, t.attempt))
            # Attempts it still runs that are no longer its own: tell it to stop.
            for tid, attempt in (running_map or {}).items():
                t = r.task(tid)
                if (
                    t is None
                    or t.assigned_agent_id != agent_id
                    or t.attempt != attempt
                    or t.status not in HELD  # input_required is still its own
                ):
                    frames.append(message("cancel", Cancel(tid, attempt, "no_longer_assigned")))
                elif (
                    t.status == TaskStatus.RUNNING
                    and (li := t.last_input) is not None
                    and li.attempt == attempt
                ):
                    # the answer may have been pushed while it was away (see the module docstring)
                    frame = InputFrame(tid, attempt, li.request_id, li.answer, li.timed_out, li.answered_by)
                    frames.append(message("input", frame))
            return frames

        # at the committed sequence: an assignment whose commit fails is never re-delivered
        try:
            frames = await self.view.read(build)
        except BaseException as exc:
            # (removed meanwhile, or the log failed): this connection never became the agent's
            conn.held = False
            if self.conns.get(agent_id) is conn:
                del self.conns[agent_id]
            if not isinstance(exc, HiveError):
                raise
            await ws.send_frame(error_message(exc, mid), WSMsgType.TEXT)
            await ws.close(code=CLOSE_POLICY, message=b"registration failed")
            return None
        conn.release(frames)
        return conn

    def heartbeat_interval(self) -> float:
        """What agents are told: at most a third of the timeout, so one lost beat is not fatal."""
        interval = self.config.agent_heartbeat_interval
        return policies.heartbeat_interval(self.service.hive_config.heartbeat_timeout, interval) or interval

    def _messages(self, conn: AgentConn, text: str) -> list[Any]:
        """A text frame -> the messages it carries: one object, or a batch (a JSON
        array of up to ``MAX_BATCH`` of them, announced in ``registered``). A frame
        that is neither is answered with an error here and carries nothing."""
        try:
            obj = decode_frame(text)
            return batch_of(obj, MAX_BATCH) if isinstance(obj, list) else [obj]
        except Exception as exc:
            mapped = translate(exc) or internal_error()
            conn.send(error_message(mapped, mapped.details.get("message_id")))
            return []

    async def _on_message(self, conn: AgentConn, obj: Any, deep: bool) -> None:
        mid = None
        try:
            typ, data, mid = envelope_of(obj)
            # every level of nesting opens a bracket, so a frame with few of them
            # cannot be too deep (brackets inside strings only raise the count): the
            # walk over the decoded message is skipped for nearly every report
            if deep:
                check_depth(data, self.config.max_json_depth)
            cmd = codec.agent_command(conn.agent_id, typ, data, mid)
            await self.service.execute(cmd)
            if typ != "heartbeat":
                conn.send(message("ack", Ack(typ, getattr(cmd, "task_id", None)), mid))
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                log.exception("agent message failed")
                mapped = internal_error()
            mid = mid or mapped.details.get("message_id")
            conn.send(error_message(mapped, mid))

    async def close_all(self, code: int, reason: str) -> None:
        self._closing = True
        for w in self._wakeups.values():
            w.set()
        for conn in list(self.conns.values()):
            try:
                await conn.close(code, reason)
            except Exception:
                pass
