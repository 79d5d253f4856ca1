"""The push agent: one WebSocket to ``/agents/ws`` (see ``docs/agent-protocol.md``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import msgspec

from hivehub.client.urls import AGENTS_WS, http_url, ws_url
from hivehub.core.errors import HiveError
from hivehub.core.model import Capability
from hivehub.core.policies import backoff, heartbeat_interval
from hivehub.protocol.codec import HubMessage, decode_hub_message
from hivehub.protocol.errors import REFUSING_CLOSES, RegistrationError
from hivehub.protocol.messages import Ack, Assign, Cancel, InputFrame, Recall, Registered

from .base import FATAL_REGISTER_CODES, BaseAgent
from .execution import Execution
from .options import AgentOptions

__all__ = ["Agent"]

log = logging.getLogger("hivehub.agent")

_encode = msgspec.json.Encoder().encode


#: close codes after which reconnecting with the same id would be wrong
FATAL_CLOSE_CODES = REFUSING_CLOSES


class _Dropped(Exception):
    """The connection ended before the agent was registered."""


class Agent(BaseAgent):
    """An agent connected to the hub over WebSocket (push transport).

    ::

        agent = Agent("DataProcessor-1", {"data_processing": 0.9}, url="ws://127.0.0.1:3001")

        @agent.handler("data_processing")
        async def process(ctx):
            await ctx.progress(0.5, "halfway")
            return {"rows": len(ctx.input["records"])}

        agent.run_forever()

    Args:
        name: display name (AgentSpec ``name``)
        capabilities: ``{"name": proficiency}`` or a list of :class:`Capability`
        url: the hub's address in any form (``ws://host:port``, ``http://host:port``,
            :mod:`hivehub.client.urls`); ``/agents/ws`` is appended when the URL has no
            path, and after the path of an ``http(s)`` URL (a proxy prefix, a namespace
            ``/ns/NAME``). Several replicas may be given, comma-separated.
        options: an :class:`~hivehub.agent.AgentOptions` (type, max_concurrent_tasks,
            agent_id, token, metadata, heartbeat_interval, reconnect_base/cap, executor,
            progress_interval, max_result_bytes, state_dir, id_file); each of its fields
            may also be given as a keyword, which wins. ``max_result_bytes`` is lowered
            to the hub's ``max_frame_bytes`` when ``registered`` announces it.
        register_timeout: seconds to wait for ``registered`` after connecting
        ping_interval: WebSocket ping interval for detecting dead connections (None: off)
        max_msg_size: largest message accepted from the hub
        log_level: when the program has configured no logging, the agent logs its
            connection and each task's start and end to stderr at this level (default
            ``HIVE_LOG_LEVEL``, else INFO); ``"WARNING"`` keeps only problems, ``"OFF"``
            nothing. A program that configures logging itself is left alone.
    """

    def __init__(
        self,
        name: str,
        capabilities: Mapping[str, float]
        | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]]
        | None = None,
        *,
        url: str = "ws://127.0.0.1:3001",
        options: AgentOptions | None = None,
        register_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        max_msg_size: int = 64 * 1024 * 1024,
        **overrides: Any,
    ) -> None:
        #: several hub replicas may be given, comma-separated: the agent moves to the
        #: next one whenever its connection ends (a replica died or restarted)
        self.urls = [ws_url(u.strip(), AGENTS_WS) for u in url.split(",") if u.strip()]
        self.url = self.urls[0]
        self.register_timeout = register_timeout
        self.ping_interval = ping_interval
        self.max_msg_size = max_msg_size
        #: the ``registered`` data of the current connection (agent, heartbeat settings)
        self.hub_info: dict[str, Any] = {}
        self._hub: Registered | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._conn_gen = 0
        self.connections = 0
        super().__init__(name, capabilities, options=options, **overrides)

    def _reset_runtime(self) -> None:
        super()._reset_runtime()
        self._registered = asyncio.Event()

    # ------------------------------------------------------------ public

    @property
    def connected(self) -> bool:
        """True while registered on an open connection."""
        return self._registered.is_set()

    async def wait_registered(self, timeout: float | None = None) -> str:
        """Wait until the agent is registered on a connection; returns its id."""
        await asyncio.wait_for(self._registered.wait(), timeout)
        assert self.agent_id is not None
        return self.agent_id

    # ------------------------------------------------------------ connection loop

    async def _transport_main(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._session = aiohttp.ClientSession(headers=headers)
        params = {"token": self.token} if self.token else None
        failures = 0
        while not self._closing:
            registered = False
            if failures == 0:  # the first try, and after a connection that had registered
                log.info("%s: connecting to %s", self.name, self.url)
            try:
                async with self._session.ws_connect(
                    self.url,
                    params=params,
                    heartbeat=self.ping_interval,
                    max_msg_size=self.max_msg_size,
                    timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                ) as ws:
                    self._ws = ws
                    registered = await self._serve(ws)
            except RegistrationError:
                raise
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise RegistrationError.refused(
                        "unauthorized" if exc.status == 401 else "forbidden",
                        f"the hub refused the connection with HTTP {exc.status}",
                    ) from None
                log.info("%s: hub refused the WebSocket (HTTP %s)", self.name, exc.status)
            except _Dropped as exc:
                log.info("%s: connection dropped before registration: %s", self.name, exc)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("%s: cannot reach the hub at %s: %s", self.name, self.url, exc or type(exc).__name__)
            finally:
                self._ws = None
                self._registered.clear()
            if self._closing:
                break
            if len(self.urls) > 1:
                self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            if registered:
                failures = 0
            delay = backoff(failures, self.reconnect_base, self.reconnect_cap)
            failures += 1
            log.debug("%s: reconnecting in %.2fs", self.name, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
        await self._closed.wait()  # the shutdown may still be using the session

    def _result_limit(self) -> int | None:
        hub_max = self._hub.max_frame_bytes if self._hub is not None else None
        if hub_max is not None and hub_max > 0:
            derived = max(1, hub_max - 4096)  # room for the envelope
            return derived if self.max_result_bytes is None else min(derived, self.max_result_bytes)
        return self.max_result_bytes

    async def _release_late(self, late: list[Execution], flush_timeout: float) -> None:
        """Close the WebSocket first (the hub marks the agent offline at once, so it
        assigns nothing more to it), then release late assignments over HTTP
        (``POST /api/tasks/{id}/release``) on the same host. Best effort: whatever is not
        released this way is recovered by the hub after its heartbeat timeout."""
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        for e in late:
            self._abort(e, "agent_shutdown")
        if not late or self._session is None or self.agent_id is None:
            return
        base = http_url(self.url)
        timeout = aiohttp.ClientTimeout(total=max(1.0, flush_timeout))

        async def release(task_id: str, attempt: int) -> None:
            assert self._session is not None
            body = {"agent_id": self.agent_id, "attempt": attempt, "reason": "agent_shutdown"}
            try:
                async with self._session.post(
                    f"{base}/api/tasks/{task_id}/release", json=body, timeout=timeout
                ) as resp:
                    if resp.status >= 300:
                        log.info("%s: HTTP release of %s answered %s", self.name, task_id, resp.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("%s: HTTP release of %s failed: %s", self.name, task_id, exc or type(exc).__name__)

        log.info("%s: handing back %d task(s) assigned during shutdown", self.name, len(late))
        await asyncio.gather(*(release(e.task_id, e.attempt) for e in late))

    async def _transport_close(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Register on a fresh connection, then serve it until it closes.

        Returns True when the agent got registered on it.
        """
        self._conn_gen += 1
        gen = self._conn_gen
        lock = asyncio.Lock()

        async def send(env: dict[str, Any] | bytes) -> None:
            # bytes: a frame already encoded (a report, or a batch of them)
            body = env if isinstance(env, bytes) else _encode(env)
            async with lock:
                await ws.send_str(body.decode())

        register_id = uuid.uuid4().hex
        running = self.running_tasks
        await send(
            {"type": "register", "data": {**self.spec(), "running": running}, "message_id": register_id}
        )
        early: list[HubMessage] = []
        deadline = time.monotonic() + self.register_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Dropped(f"no 'registered' within {self.register_timeout}s")
            try:
                msg = await asyncio.wait_for(ws.receive(), left)
            except TimeoutError:
                raise _Dropped(f"no 'registered' within {self.register_timeout}s") from None
            m = self._decode_msg(msg)
            if m is None:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    continue
                raise _Dropped(f"connection closed ({msg.type.name}, code {ws.close_code})")
            if isinstance(m.data, Registered):
                break
            if isinstance(m.data, HiveError) and m.message_id in (register_id, None):
                if m.data.code == "invalid_input" and self.prefetch and "prefetch" in m.data.message:
                    # a hub older than prefetch refuses the field: register without it
                    log.info("%s: the hub does not know prefetch; registering without it", self.name)
                    self.prefetch = 0
                    raise _Dropped("registration refused the prefetch field")
                if m.data.code in FATAL_REGISTER_CODES:
                    raise RegistrationError.refused(m.data.code, m.data.message, m.data.details)
                raise _Dropped(f"registration refused: {m.data.code}: {m.data.message}")
            early.append(m)

        reg = m.data
        self._registered_as(reg.agent_id)
        self._hub = reg
        self.hub_info = msgspec.to_builtins(reg)
        self.connections += 1
        # the hub's interval, but never so long that one late or lost heartbeat lets its timeout pass
        hub_interval = reg.heartbeat_interval or 5.0
        interval = (
            self.heartbeat_interval or heartbeat_interval(reg.heartbeat_timeout, hub_interval) or hub_interval
        )
        log.info(
            "%s: registered as %s (connection %d, resuming %d task(s))",
            self.name,
            self.agent_id,
            self.connections,
            len(running),
        )
        self._registered.set()
        helpers = [
            asyncio.create_task(self._heartbeats(send, float(interval))),
            asyncio.create_task(self._sender(ws, send, gen)),
        ]
        try:
            for m in early:
                self._dispatch(m)
            while True:
                msg = await ws.receive()
                m = self._decode_msg(msg)
                if m is not None:
                    self._dispatch(m)
                elif msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    close_code: Any = msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code
                    log.info("%s: connection closed (%s, code %s)", self.name, msg.type.name, close_code)
                    fatal = FATAL_CLOSE_CODES.get(close_code) if isinstance(close_code, int) else None
                    if fatal is not None and not self._closing:
                        raise RegistrationError.refused(
                            fatal[0], f"{fatal[1]} (close code {close_code}: {msg.extra or ''})"
                        )
                    break
        finally:
            self._registered.clear()
            if not self._stopping:
                self._drop_queued()  # (a shutdown releases them instead)
            for h in helpers:
                h.cancel()
            for h in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await h
        return True

    def _decode_msg(self, msg: aiohttp.WSMessage) -> HubMessage | None:
        """A text frame -> its message (decoded with the structs the hub encodes it
        with); None for anything else, and for a frame that does not decode (logged)."""
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return None
        try:
            return decode_hub_message(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            log.warning("%s: message from the hub ignored: %s: %.200r", self.name, exc, msg.data)
            return None

    async def _heartbeats(self, send: Any, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await send({"type": "heartbeat", "data": {}})

    async def _sender(self, ws: aiohttp.ClientWebSocketResponse, send: Any, gen: int) -> None:
        """Send every report not yet sent on this connection, in order."""
        outbox = self._outbox
        hub = self._hub
        # a hub that takes batch frames gets every report ready at once in one frame
        # (a fast task's start and completion, the outcomes of prefetched tasks run
        # back to back): one write and one read instead of one per report
        most = (hub.max_batch or 1) if hub is not None else 1
        room = (hub.max_frame_bytes if hub is not None and hub.max_frame_bytes else 1 << 20) // 2
        try:
            while True:
                outbox.changed.clear()
                now = time.monotonic()
                ready = [r for r in outbox if r.conn != gen and r.not_before <= now]
                while ready:
                    bodies: list[bytes] = []
                    size = 0
                    for r in ready[:most]:
                        body = _encode(r.envelope())
                        if bodies and size + len(body) > room:
                            break
                        bodies.append(body)
                        size += len(body) + 1
                    chunk, ready = ready[: len(bodies)], ready[len(bodies) :]
                    # one report goes as itself (every hub takes that), more as a batch
                    await send(bodies[0] if len(bodies) == 1 else b"[" + b",".join(bodies) + b"]")
                    for r in chunk:
                        r.conn = gen
                    # what was answered or dropped while that frame went out is not sent
                    ready = [r for r in ready if outbox.get(r.message_id) is r]
                await outbox.changed.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("%s: sending failed (%s); reconnecting", self.name, exc)
            with contextlib.suppress(Exception):
                await ws.close()

    # ------------------------------------------------------------ hub -> agent

    def _dispatch(self, m: HubMessage) -> None:
        data = m.data
        if isinstance(data, Assign):
            if data.task is None:
                log.warning("%s: 'assign' without a task object ignored", self.name)
                return
            self._accept(data.task, data.attempt)
        elif isinstance(data, Cancel):
            self._cancel_from_hub(data.task_id, data.attempt, data.reason or "cancelled")
        elif isinstance(data, Recall):
            self._recall_from_hub(data.task_id, data.attempt)
        elif isinstance(data, InputFrame):
            self._on_input(data.task_id, data.request_id or "", data.answer, data.timed_out, data.answered_by)
        elif isinstance(data, Ack):
            self._answered(m.message_id)
        elif isinstance(data, HiveError):
            r = self._outbox.get(m.message_id)
            if r is not None:
                self._rejected(r, data)
            else:
                log.warning(
                    "%s: hub error: %s: %s %s", self.name, data.code, data.message, data.details or ""
                )
        elif isinstance(data, Registered):
            self._hub = data
            self.hub_info = msgspec.to_builtins(data)
        else:
            log.debug("%s: message type %r ignored", self.name, m.type)
