"""In-process fake hubs that speak the agent protocol (docs/agent-protocol.md):
``FakeWsHub`` for ``/agents/ws`` and ``FakeHttpHub`` for the pull endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

REPORTS = {"task_started", "task_progress", "task_completed", "task_failed", "task_released", "input_request"}


def make_task(
    task_id: str, type: str = "data_processing", input: Any = None, attempt: int = 1
) -> dict[str, Any]:
    now = "2025-01-01T00:00:00Z"
    return {
        "id": task_id,
        "description": f"test task {task_id}",
        "type": type,
        "priority": 2,
        "status": "assigned",
        "required_capabilities": [],
        "input": input,
        "timeout_seconds": 30.0,
        "max_retries": 3,
        "created_at": now,
        "updated_at": now,
        "attempt": attempt,
    }


def make_agent(spec: dict[str, Any], agent_id: str, **extra: Any) -> dict[str, Any]:
    """The Agent the hub answers a registration with (``hivehub.core.model.Agent``)."""
    now = "2025-01-01T00:00:00Z"
    caps = [
        {"learning_rate": 0.1, **c, "declared_proficiency": c.get("proficiency")}
        for c in spec.get("capabilities") or []
    ]
    return {
        "id": agent_id,
        "name": spec.get("name", "agent"),
        "type": spec.get("type", "worker"),
        "capabilities": caps,
        "status": "idle",
        "max_concurrent_tasks": spec.get("max_concurrent_tasks", 1),
        "created_at": now,
        "last_seen_at": now,
        "metadata": spec.get("metadata") or {},
        **extra,
    }


class _Recorder:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()

    async def _record(self, item: dict[str, Any]) -> None:
        async with self._changed:
            self.received.append(item)
            self._changed.notify_all()

    def find(self, type: str | None = None, *, start: int = 0, **match: Any) -> list[dict[str, Any]]:
        out = []
        for m in self.received[start:]:
            if type is not None and m["type"] != type:
                continue
            data = m.get("data") or {}
            if all(data.get(k) == v for k, v in match.items()):
                out.append(m)
        return out

    async def wait(
        self, type: str | None = None, *, timeout: float = 5.0, start: int = 0, **match: Any
    ) -> dict[str, Any]:
        """The first message (at index >= start) of ``type`` whose data has the ``match`` items."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                found = self.find(type, start=start, **match)
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m["type"], (m.get("data") or {}).get("task_id")) for m in self.received]
                    raise AssertionError(f"no {type} {match} within {timeout}s; received {seen}")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    pass

    async def wait_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.005)


class FakeWsHub(_Recorder):
    """Accepts agent WebSockets, answers ``register`` and acks reports.

    Every received message is recorded as the envelope plus ``conn`` (1, 2, ...).
    """

    def __init__(self, heartbeat_interval: float = 30.0, heartbeat_timeout: float = 90.0) -> None:
        super().__init__()
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.accepting = True
        self.ack = True
        #: (type, task_id) -> error data answered once instead of an ack
        self.errors: dict[tuple[str, str], dict[str, Any]] = {}
        #: answer to the next register instead of ``registered``
        self.register_error: dict[str, Any] | None = None
        #: tasks pushed with ``assign`` right after ``registered`` (then cleared)
        self.assign_on_register: list[tuple[dict[str, Any], int]] = []
        #: more fields for the ``registered`` data
        self.extra_registered: dict[str, Any] = {}
        #: answer a ``task_released`` by assigning the next attempt to the same agent
        self.reassign_released = False
        self.conn = 0
        #: text frames received (a message's ``frame`` is the number of its frame)
        self.frames = 0
        self.refused = 0
        self.ws: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/agents/ws", self._handle)
        app.router.add_post("/api/tasks/{id}/release", self._http_release)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def send(self, type: str, data: dict[str, Any], **extra: Any) -> None:
        assert self.ws is not None and not self.ws.closed, "no agent connected"
        await self.ws.send_json({"type": type, "data": data, **extra})

    async def assign(self, task: dict[str, Any], attempt: int | None = None) -> None:
        await self.send("assign", {"task": task, "attempt": attempt or task["attempt"]})

    async def cancel(self, task_id: str, attempt: int = 1, reason: str = "manual_cancellation") -> None:
        await self.send("cancel", {"task_id": task_id, "attempt": attempt, "reason": reason})

    async def drop(self) -> None:
        """Close the current agent connection (the agent should reconnect)."""
        if self.ws is not None:
            await self.ws.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.accepting:
            self.refused += 1
            return web.Response(status=503, text="not now")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.conn += 1
        conn = self.conn
        self.ws = ws
        self._sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                obj = json.loads(msg.data)
                self.frames += 1
                # a batch frame (only sent when ``registered`` has ``max_batch``):
                # its messages are recorded and answered one by one
                for env in obj if isinstance(obj, list) else [obj]:
                    env["conn"], env["frame"] = conn, self.frames
                    await self._record(env)
                    await self._answer(ws, env)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _http_release(self, request: web.Request) -> web.Response:
        body = await request.json()
        data = {"task_id": request.match_info["id"], **body}
        await self._record(
            {
                "type": "task_released",
                "data": data,
                "via": "http",
                "connected": self.ws is not None and not self.ws.closed,
            }
        )
        return web.json_response({"id": data["task_id"], "status": "pending"})

    async def _answer(self, ws: web.WebSocketResponse, env: dict[str, Any]) -> None:
        kind = env["type"]
        data = env.get("data") or {}
        mid = env.get("message_id")
        if kind == "register":
            if self.register_error is not None:
                await ws.send_json({"type": "error", "message_id": mid, "data": self.register_error})
                return
            agent_id = data.get("id") or f"agent-{self.conn}"
            agent = make_agent(data, agent_id)
            await ws.send_json(
                {
                    "type": "registered",
                    "message_id": mid,
                    "data": {
                        "agent_id": agent_id,
                        "agent": agent,
                        "heartbeat_interval": self.heartbeat_interval,
                        "heartbeat_timeout": self.heartbeat_timeout,
                        **self.extra_registered,
                    },
                }
            )
            pushes, self.assign_on_register = self.assign_on_register, []
            for task, attempt in pushes:
                await ws.send_json({"type": "assign", "data": {"task": task, "attempt": attempt}})
        elif kind in REPORTS:
            if kind == "task_released" and self.reassign_released and self.ws is ws:
                # like a hub whose only capable agent is this one: the next attempt is
                # assigned straight back, and that push precedes the ack
                task = make_task(data["task_id"], attempt=data["attempt"] + 1)
                await ws.send_json({"type": "assign", "data": {"task": task, "attempt": task["attempt"]}})
            err = self.errors.pop((kind, data.get("task_id")), None)
            if err is not None:
                await ws.send_json({"type": "error", "message_id": mid, "data": err})
            elif self.ack:
                ack = {"type": kind, "task_id": data.get("task_id")}
                await ws.send_json({"type": "ack", "message_id": mid, "data": ack})


class FakeHttpHub(_Recorder):
    """The pull endpoints. Received requests are recorded as ``{"type", "data", "path"}``
    with the report type names of the WebSocket protocol."""

    ACTIONS = {
        "start": "task_started",
        "progress": "task_progress",
        "complete": "task_completed",
        "fail": "task_failed",
        "release": "task_released",
        "input-request": "input_request",
    }

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[tuple[dict[str, Any], int]] = asyncio.Queue()
        #: (type, task_id) -> (status, body) answered once
        self.errors: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        #: task_id -> fields answered by GET /api/tasks/{id} (status, attempt, assigned_agent_id)
        self.tasks: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/agents", self._register)
        app.router.add_post("/api/agents/{id}/claim", self._claim)
        app.router.add_post("/api/agents/{id}/heartbeat", self._heartbeat)
        app.router.add_post("/api/tasks/{id}/{action}", self._report)
        app.router.add_get("/api/tasks/{id}", self._get_task)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _register(self, request: web.Request) -> web.Response:
        body = await request.json()
        await self._record({"type": "register", "data": body, "path": request.path})
        agent_id = body.get("id") or "pull-1"
        # a hub may add its heartbeat settings to the Agent (this one does, to be quick)
        return web.json_response(make_agent(body, agent_id, heartbeat_interval=0.05), status=201)

    async def _heartbeat(self, request: web.Request) -> web.Response:
        agent_id = request.match_info["id"]
        await self._record({"type": "heartbeat", "data": {"agent_id": agent_id}, "path": request.path})
        return web.json_response(
            {"agent_id": agent_id, "status": "active", "heartbeat_timeout": 0.15, "heartbeat_interval": 0.05}
        )

    async def _claim(self, request: web.Request) -> web.StreamResponse:
        wait = float(request.query.get("wait", "0"))
        await self._record(
            {"type": "claim", "data": {"agent_id": request.match_info["id"]}, "path": request.path}
        )
        try:
            task, attempt = await asyncio.wait_for(self.queue.get(), min(wait, 0.2))
        except TimeoutError:
            return web.Response(status=204)
        agent_id = request.match_info["id"]
        self.tasks.setdefault(
            task["id"], {"status": "assigned", "attempt": attempt, "assigned_agent_id": agent_id}
        )
        return web.json_response({"task": task, "attempt": attempt})

    async def _get_task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["id"]
        state = self.tasks.get(task_id)
        if state is None:
            return web.json_response(
                {"error": {"code": "task_not_found", "message": task_id, "details": {}}}, status=404
            )
        return web.json_response({**make_task(task_id), **state})

    async def _report(self, request: web.Request) -> web.Response:
        kind = self.ACTIONS.get(request.match_info["action"])
        if kind is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": "no such action", "details": {}}}, status=404
            )
        body = await request.json()
        task_id = request.match_info["id"]
        await self._record({"type": kind, "data": {"task_id": task_id, **body}, "path": request.path})
        err = self.errors.pop((kind, task_id), None)
        if err is not None:
            return web.json_response(err[1], status=err[0])
        return web.json_response({"ok": True})
