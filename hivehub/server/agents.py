"""The agent gateway: both transports of ``docs/agent-protocol.md``.

Assignments reach agents only after they are committed (this is a listener
on published events), so an agent never works on an assignment the hub could
still lose. Push agents (``/agents/ws``) get ``assign`` and ``cancel``
messages; pull agents find their assignments through ``claim``.
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
from ..core.model import TaskStatus
from .auth import attach
from .errors import UnknownMessageType, parse_message, translate
from .rest import check_depth
from .service import HubService, Published
from .stream import CUT_GRACE, HubWebSocket, abort_later, linger, message, text_frame, wait_writable

log = logging.getLogger("hivehub.agents")

#: reports of one agent being made durable at once (beyond this, reading waits)
MAX_INFLIGHT = 1000
#: close code for an agent that does not read what the hub sends it (its buffer is full)
CLOSE_BACKED_UP = 4013
#: above this many bytes in the socket's write buffer, the hub reads the agent's next
#: frame only once the buffer drained (replies and assignments are not being read)
READ_HIGH = 256 * 1024


class AgentConn:
    """One connected push agent. Frames for it are coalesced: everything sent to
    it in one turn of the event loop goes out in a single transport write (one
    syscall instead of one per assign/ack/cancel). The connection is never
    compressed, so frames are written as they are built (``text_frame``)."""

    def __init__(self, agent_id: str, ws: web.WebSocketResponse, transport: Any, budget: int = 8 << 20) -> None:
        self.agent_id = agent_id
        self.ws = ws
        self.transport = transport
        self._buf: list[bytes] = []
        self._buffered = 0
        self._scheduled = False
        #: bytes the hub may hold for this agent (coalesced frames + the socket's buffer)
        self.budget = budget
        self.closing = False

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

    def _flush(self) -> None:
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
        reason = b"backed up: not reading"
        payload = CLOSE_BACKED_UP.to_bytes(2, "big") + reason
        t.write(bytes((0x88, len(payload))) + payload)
        abort_later(t, CUT_GRACE)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._flush()
        await self.ws.close(code=code, message=reason.encode())


class AgentGateway:
    def __init__(self, service: HubService, config: Any) -> None:
        self.service = service
        self.config = config
        self.conns: dict[str, AgentConn] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        #: pull deliveries: agent -> {(task, attempt): when}; an unstarted one is re-delivered
        #: to a later claim after ``redeliver_after`` seconds (its response may have been lost)
        self._delivered: dict[str, dict[tuple[str, int], float]] = {}
        self.redeliver_after = 10.0
        service.listeners.append(self.on_published)

    def count(self) -> int:
        return len(self.conns)

    # ------------------------------------------------------------ events -> agents

    def on_published(self, batch: list[Published]) -> None:
        hive = self.service.hive
        for p in batch:
            d: Any = p.event.data
            typ = p.type
            if typ == "task_assigned":
                if d.previous_agent_id:
                    self._cancel(d.previous_agent_id, d.task_id, d.attempt_number - 1, "rebalanced")
                conn = self.conns.get(d.agent_id)
                t = hive.tasks.get(d.task_id)
                if conn is not None and t is not None and t.assigned_agent_id == d.agent_id and t.attempt == d.attempt_number:
                    self._assign(conn, d.task_id, d.attempt_number)
                w = self._wakeups.get(d.agent_id)
                if w is not None:
                    w.set()
            elif typ == "task_cancelled" and d.agent_id:
                self._cancel(d.agent_id, d.task_id, None, d.reason)
            elif typ == "task_failed" and d.agent_id and d.failure_kind in ("timeout", "agent_lost"):
                self._cancel(d.agent_id, d.task_id, d.attempt_number, d.failure_kind)
            elif typ == "task_released" and d.reason == "agent_removed":
                self._cancel(d.agent_id, d.task_id, d.attempt_number, "agent_removed")
            elif typ == "agent_removed":
                conn = self.conns.pop(d.agent_id, None)
                if conn is not None:
                    asyncio.ensure_future(conn.close(4001, "agent removed"))

    def _assign(self, conn: AgentConn, task_id: str, attempt: int) -> None:
        t = self.service.hive.tasks[task_id]
        conn.send(message("assign", {"task": t, "attempt": attempt}))

    def _cancel(self, agent_id: str, task_id: str, attempt: int | None, reason: str) -> None:
        conn = self.conns.get(agent_id)
        if conn is not None:
            conn.send(message("cancel", {"task_id": task_id, "attempt": attempt, "reason": reason}))

    # ------------------------------------------------------------ pull transport

    def _next_undelivered(self, agent_id: str) -> tuple[Any, int] | None:
        hive = self.service.hive
        a = hive.agents.get(agent_id)
        if a is None:
            return None
        held = {(tid, hive.tasks[tid].attempt) for tid in a.current_tasks}
        delivered = self._delivered.setdefault(agent_id, {})
        for key in [k for k in delivered if k not in held]:
            del delivered[key]  # forget deliveries of tasks the agent no longer holds
        now = asyncio.get_running_loop().time()
        for tid in a.current_tasks:
            t = hive.tasks[tid]
            if t.status != TaskStatus.ASSIGNED:
                continue
            when = delivered.get((tid, t.attempt))
            if when is None or now - when >= self.redeliver_after:
                delivered[(tid, t.attempt)] = now
                return t, t.attempt
        return None

    def wake(self, agent_id: str) -> None:
        """Wake a parked claim of this agent (it re-checks what it may return)."""
        w = self._wakeups.get(agent_id)
        if w is not None:
            w.set()

    async def claim(self, agent_id: str, wait: float, rid: str, held: Any = None) -> dict[str, Any] | None:
        """Raises Unauthorized as soon as ``held`` (the request's entry in the
        connection registry) is revoked: a parked claim must not heartbeat an
        evicted agent back online."""
        svc = self.service
        await svc.execute(C.Heartbeat(id=rid, agent_id=agent_id))  # 404 for an unknown agent
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        # Waiting counts as being alive: heartbeat at a third of the timeout while parked.
        beat = policies.heartbeat_interval(svc.hive.config.heartbeat_timeout, floor=0.5) or 0.5
        while True:
            if held is not None and held.revoked:
                raise Unauthorized("token revoked")
            found = self._next_undelivered(agent_id)
            if found is not None:
                return {"task": found[0], "attempt": found[1]}
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            w = self._wakeups.setdefault(agent_id, asyncio.Event())
            w.clear()
            try:
                await asyncio.wait_for(w.wait(), min(remaining, beat))
            except TimeoutError:
                if agent_id not in svc.hive.agents:
                    return None
                if held is not None and held.revoked:
                    continue  # raised at the top, without a heartbeat
                await svc.execute(C.Heartbeat(id=rid, agent_id=agent_id))

    # ------------------------------------------------------------ push transport

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        cfg = request.app["config"]
        # no permessage-deflate for agents: their frames are small and many, and
        # compressing each one cost a sixth of the hub's CPU in the tasks bench
        ws = HubWebSocket(heartbeat=cfg.ws_heartbeat, max_msg_size=cfg.max_frame_bytes, compress=False, timeout=2.0)
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
                    # per agent was the ceiling before.
                    task = asyncio.create_task(self._on_text(conn, msg.data))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    if len(inflight) > MAX_INFLIGHT:
                        await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                elif msg.type == WSMsgType.BINARY:
                    conn.send(message("error", {"code": "unsupported_frame", "message": "send JSON text frames", "details": {}}))
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
                await ws.close(code=1011, message=b"internal error")
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
            await ws.close(code=1008, message=b"register first")
            return None
        if msg.type != WSMsgType.TEXT:
            await ws.close(code=1008, message=b"register first")
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
            check_depth(data, self.config.max_json_depth)  # the same limit as POST /api/agents
            data = dict(data)
            running = data.pop("running", None)
            spec = msgspec.convert(data, C.AgentSpec)
            ident = request.get("identity")
            if ident is not None and ident.role == "agent":
                if spec.id not in (None, ident.agent_id):
                    raise Forbidden(f"this token may only act as agent {ident.agent_id}", agent_id=ident.agent_id)
                spec.id = ident.agent_id
            running_map = msgspec.convert(running, dict[str, int]) if running is not None else None
            events = await self.service.execute(C.RegisterAgent(id=f"agent-ws:{mid}", spec=spec, running=running_map))
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                log.exception("agent registration failed")
                mapped = HiveError("internal error")
                mapped.code = "internal_error"
            await ws.send_frame(message("error", {"code": mapped.code, "message": mapped.message, "details": mapped.details}, mid), WSMsgType.TEXT)
            await ws.close(code=1008, message=b"registration failed")
            return None
        agent_id = spec.id or events[0].data.agent.id  # type: ignore[attr-defined]
        attach(request, ws, agent_id)  # a revoked token closes this connection
        old = self.conns.get(agent_id)
        conn = AgentConn(agent_id, ws, request.transport, self.config.client_buffer_bytes)
        self.conns[agent_id] = conn
        if old is not None:
            asyncio.ensure_future(old.close(4002, "replaced by a new connection"))
        hive = self.service.hive
        a = hive.agents[agent_id]
        conn.send(
            message(
                "registered",
                {
                    "agent_id": agent_id,
                    "agent": a,
                    "heartbeat_interval": self.heartbeat_interval(),
                    "heartbeat_timeout": hive.config.heartbeat_timeout,
                    "max_frame_bytes": self.config.max_frame_bytes,
                },
                mid,
            )
        )
        # Re-deliver what is assigned to it and not started (a reconnect, or a hub restart).
        for tid in list(a.current_tasks):
            t = hive.tasks[tid]
            if t.status == TaskStatus.ASSIGNED:
                self._assign(conn, tid, t.attempt)
        # Attempts it still runs that are no longer its own: tell it to stop.
        for tid, attempt in (running_map or {}).items():
            t = hive.tasks.get(tid)
            if t is None or t.assigned_agent_id != agent_id or t.attempt != attempt or t.status not in (TaskStatus.ASSIGNED, TaskStatus.RUNNING):
                conn.send(message("cancel", {"task_id": tid, "attempt": attempt, "reason": "no_longer_assigned"}))
        return conn

    def heartbeat_interval(self) -> float:
        """What agents are told: at most a third of the timeout, so one lost beat is not fatal."""
        interval = self.config.agent_heartbeat_interval
        return policies.heartbeat_interval(self.service.hive.config.heartbeat_timeout, interval) or interval

    async def _on_text(self, conn: AgentConn, text: str) -> None:
        mid = None
        try:
            typ, data, mid = parse_message(text)
            check_depth(data, self.config.max_json_depth)
            cmd = self._command(conn.agent_id, typ, data, mid)
            await self.service.execute(cmd)
            if typ != "heartbeat":
                conn.send(message("ack", {"type": typ, "task_id": data.get("task_id")}, mid))
        except Exception as exc:
            mapped = translate(exc)
            if mapped is None:
                log.exception("agent message failed")
                mapped = HiveError("internal error")
                mapped.code = "internal_error"
            mid = mid or mapped.details.get("message_id")
            conn.send(message("error", {"code": mapped.code, "message": mapped.message, "details": mapped.details}, mid))

    def _command(self, agent_id: str, typ: str, data: dict[str, Any], mid: Any) -> C.Command:
        rid = f"agent:{agent_id}:{mid}"
        if typ == "heartbeat":
            return C.Heartbeat(id=rid, agent_id=agent_id)
        task_id = data.get("task_id")
        if typ in ("task_started", "task_progress", "task_completed", "task_failed", "task_released") and not isinstance(task_id, str):
            raise InvalidInput(f"{typ} needs data.task_id")
        attempt = data.get("attempt")
        if attempt is not None and not isinstance(attempt, int):
            raise InvalidInput("attempt must be an integer")
        assert isinstance(task_id, str) or typ not in ("task_started",)
        if typ == "task_started":
            return C.StartTask(id=rid, task_id=task_id, agent_id=agent_id, attempt=attempt)  # type: ignore[arg-type]
        if typ == "task_progress":
            return msgspec.convert(
                {"id": rid, "task_id": task_id, "agent_id": agent_id, "attempt": attempt, "progress": data.get("progress", 0.0), "current_step": data.get("current_step")},
                C.ReportProgress,
            )
        if typ == "task_completed":
            return msgspec.convert(
                {"id": rid, "task_id": task_id, "agent_id": agent_id, "attempt": attempt, "result": data.get("result"), "quality": data.get("quality")},
                C.CompleteTask,
            )
        if typ == "task_failed":
            err = data.get("error") or {"code": "AGENT_ERROR", "message": "failed"}
            return C.FailTask(
                id=rid,
                task_id=task_id,  # type: ignore[arg-type]
                agent_id=agent_id,
                attempt=attempt,
                error=msgspec.convert(err, C.ReportedError).task_error(),  # free-text limits
                retryable=bool(data.get("retryable", True)),
            )
        if typ == "task_released":
            return msgspec.convert(  # convert, not the constructor: it checks the reason's length
                {"id": rid, "task_id": task_id, "agent_id": agent_id, "attempt": attempt, "reason": data.get("reason") or "agent_shutdown"},
                C.ReleaseTask,
            )
        raise UnknownMessageType(
            f"unknown message type {typ!r}",
            known=["heartbeat", "task_started", "task_progress", "task_completed", "task_failed", "task_released"],
        )

    async def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.conns.values()):
            try:
                await conn.close(code, reason)
            except Exception:
                pass
