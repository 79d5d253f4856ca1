"""``EventStream``: the /ws event stream, resumable, with control commands.

Two ways to consume it::

    async with hive.stream(types=["task_created", "task_completed"]) as events:
        async for ev in events:              # ev: the envelope as a dict
            print(ev["sequence"], ev["type"])

    stream = hive.stream()
    stream.on("task_failed", lambda ev: print("failed", ev["data"]["task_id"]))
    stream.on("*", log_everything)           # sync or async handlers
    await stream.run()                       # until stream.close()

What it guarantees:

* **No gap, no duplicate.** The stream always connects with ``since=<cursor>``
  (for a live stream, the cursor starts at the hub's ``published_sequence``), so
  after any disconnect it resumes exactly where it stopped; an event whose
  ``sequence`` is not above the cursor is dropped. Events without a sequence
  (transient alerts the hub could not log) are passed through as they come.
* **Reconnects on its own**: exponential backoff with full jitter
  (:func:`hivehub.core.policies.backoff`: ``uniform(0, min(cap, base * 2**attempt))``,
  base 0.5 s, cap 30 s), reset once
  a connection succeeds. A 1013 close (slow consumer) resumes from the ``since``
  named in the close reason.
* **Dead connections are noticed**: aiohttp protocol pings (``heartbeat``) plus an
  application ``ping`` every ``ping_interval`` seconds that must be answered with
  ``pong`` within ``pong_timeout`` seconds, else it reconnects. A consumer that
  is merely slow (the local queue is full) is not mistaken for a dead hub.
* **Control commands**: :meth:`request` sends ``{type, data, message_id}`` and
  waits for the reply with the same ``message_id`` (``<type>_result``, ``pong``,
  ``subscribed``); an ``error`` reply raises the hub's error class.
* **Back-pressure**: at most ``max_queue`` messages wait locally; beyond that the
  reader stops reading, the hub's buffer fills and the hub cuts the stream with
  1013, after which the stream resumes from the log. Nothing is lost either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import msgspec

from ..protocol.errors import CLOSE_POLICY, CLOSE_SLOW
from .bodies import task_spec
from .errors import unreachable
from .resume import Endpoint, ResumingConnection

log = logging.getLogger("hivehub.client.stream")

_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()
_UNSET: Any = object()
_END: Any = object()

Handler = Callable[[Any], Any]


def _types_arg(types: Iterable[str] | str | None) -> list[str] | None:
    if types is None:
        return None
    names = (
        [t.strip() for t in types.split(",")] if isinstance(types, str) else [str(t).strip() for t in types]
    )
    names = [n for n in names if n]
    return names or None


class EventStream(ResumingConnection):
    """A resumable subscription to the hub's /ws stream (see the module docstring).

    Args:
        client: the :class:`HiveClient` whose URL and token are used.
        types, agent_id, task_id: server-side filters (changeable with :meth:`subscribe`).
        since: replay the events after this sequence first (``0``: the whole log);
            ``None`` means from now on.
        snapshot: start with a ``snapshot`` message of the current state.
        typed: yield :class:`hivehub.core.events.Event` structs for events
            (other messages, such as ``snapshot`` and ``error``, stay dicts).
        backoff_base, backoff_cap: reconnect delays, seconds.
        heartbeat: aiohttp protocol ping interval (``None``: off).
        ping_interval, pong_timeout: the application-level liveness check.
        max_queue: messages buffered locally before the reader stops reading.
        max_attempts: consecutive failed connection attempts before giving up with
            :class:`HubUnreachable` (``None``: never give up).
        on_state: ``callback(state, info)`` for ``"connected"`` / ``"disconnected"``.
    """

    def __init__(
        self,
        client: Endpoint,
        *,
        types: Iterable[str] | str | None = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        since: int | None = None,
        snapshot: bool = False,
        typed: bool = False,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        heartbeat: float | None = 20.0,
        ping_interval: float | None = 15.0,
        pong_timeout: float = 10.0,
        max_queue: int = 10_000,
        max_attempts: int | None = None,
        connect_timeout: float | None = None,
        on_state: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        if since is not None and since < 0:
            raise ValueError("since must be >= 0")
        self.client = client
        self.types = _types_arg(types)
        self.agent_id = agent_id
        self.task_id = task_id
        self.typed = typed
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.heartbeat = heartbeat
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout if connect_timeout is not None else (client.timeout or 30.0)
        self.on_state = on_state
        self._cursor: int | None = since
        self._want_snapshot = snapshot
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max(1, max_queue))
        self._handlers: dict[str, list[Handler]] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._blocked = False
        self._last_rx = 0.0
        self._rx_total = 0
        #: connections made (the first one included)
        self.connects = 0
        #: events dropped because their sequence was not above the cursor
        self.duplicates = 0
        #: liveness checks skipped because the local consumer was behind (not the hub)
        self.pings_skipped = 0
        #: ``(code, reason)`` of recent disconnects, newest last
        self.disconnects: deque[tuple[int | None, str]] = deque(maxlen=50)

    # ----------------------------------------------------------- state

    @property
    def last_sequence(self) -> int | None:
        """The sequence this stream has accounted for: everything up to it was
        delivered or filtered out; a reconnect resumes after it."""
        return self._cursor

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    @property
    def closed(self) -> bool:
        return self._closed

    def filters(self) -> dict[str, Any]:
        return {"types": self.types, "agent_id": self.agent_id, "task_id": self.task_id}

    # ----------------------------------------------------------- lifecycle

    def start(self) -> EventStream:
        """Start connecting in the background (iteration, :meth:`run` and
        :meth:`request` start it too)."""
        if self._closed:
            raise RuntimeError("the stream is closed")
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="hive-event-stream")
        return self

    async def __aenter__(self) -> EventStream:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop: close the connection, end iteration and :meth:`run`."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            # Cancel until it is done: a cancellation that races with an inner await
            # finishing can be swallowed (asyncio.wait_for in 3.11, some libraries), and
            # the runner must not live on until its next liveness check.
            while not runner.done():
                runner.cancel()
                await asyncio.wait({runner}, timeout=0.05)
            if not runner.cancelled():
                runner.exception()  # retrieved: it was handed to the consumer already
        self._fail_pending(unreachable("the stream was closed"))
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_END)
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a connection is up (raises the stream's fatal error, if any)."""
        self.start()

        async def wait() -> None:
            while not self.connected:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise unreachable("the stream is closed")
                waiter = asyncio.ensure_future(self._connected.wait())
                done_waiter = asyncio.ensure_future(self._done_event())
                try:
                    await asyncio.wait({waiter, done_waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    done_waiter.cancel()

        async with asyncio.timeout(timeout):
            await wait()

    async def _done_event(self) -> None:
        if self._runner is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._runner)

    # ----------------------------------------------------------- iteration

    def __aiter__(self) -> EventStream:
        if not self._closed:
            self.start()
        return self

    async def __anext__(self) -> Any:
        if self._queue.empty():
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
        if self._runner is None and not self._closed:
            self.start()
        item = await self._queue.get()
        if item is _END or self._closed:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        obj, raw = item
        if self.typed:
            return _typed(obj, raw)
        return obj

    async def next(self, timeout: float | None = None) -> Any:
        """The next message, waiting at most ``timeout`` seconds (``TimeoutError``)."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()

    # ----------------------------------------------------------- callbacks

    def on(self, type: str, handler: Handler | None = None) -> Any:
        """Call ``handler(event)`` for each message of ``type`` (``"*"``: every message).
        Usable as a decorator: ``@stream.on("task_completed")``."""

        def add(fn: Handler) -> Handler:
            self._handlers.setdefault(type, []).append(fn)
            return fn

        return add if handler is None else add(handler)

    def off(self, type: str, handler: Handler | None = None) -> None:
        if handler is None:
            self._handlers.pop(type, None)
        elif handler in self._handlers.get(type, []):
            self._handlers[type].remove(handler)

    async def dispatch(self, event: Any) -> None:
        typ = event.get("type") if isinstance(event, dict) else getattr(event, "type", None)
        for fn in [*self._handlers.get(str(typ), ()), *self._handlers.get("*", ())]:
            r = fn(event)
            if inspect.isawaitable(r):
                await r

    async def run(self) -> None:
        """Deliver every message to the :meth:`on` handlers until :meth:`close`
        (a handler may call it). A handler's exception stops ``run`` and is raised."""
        async for event in self:
            await self.dispatch(event)

    # ----------------------------------------------------------- commands

    async def request(
        self, type: str, data: dict[str, Any] | None = None, timeout: float | None = 30.0
    ) -> dict[str, Any]:
        """Send a control message and return the reply with the same ``message_id``
        (the whole message: ``{"type": "<type>_result", "data": ..., ...}``).
        An ``error`` reply raises the hub's error class (``status`` is ``None``).
        Not retried across a reconnect: a lost connection raises ``HubUnreachable``."""

        async def go() -> dict[str, Any]:
            await self.wait_connected()
            ws = self._ws
            assert ws is not None
            mid = uuid.uuid4().hex
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[mid] = fut
            try:
                await ws.send_str(_enc.encode({"type": type, "data": data or {}, "message_id": mid}).decode())
                return await fut
            finally:
                self._pending.pop(mid, None)

        async with asyncio.timeout(timeout):
            return await go()

    async def ping(self, timeout: float | None = 10.0) -> float:
        """Round trip of an application ``ping``, in seconds. Every event published
        before it has been received when it returns."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await self.request("ping", {}, timeout)
        return loop.time() - t0

    async def subscribe(
        self, types: Any = _UNSET, agent_id: Any = _UNSET, task_id: Any = _UNSET
    ) -> dict[str, Any]:
        """Change the filters mid-stream (a given ``None`` clears that filter); they
        also apply to every reconnect. Returns the hub's ``subscribed`` filters."""
        data: dict[str, Any] = {}
        if types is not _UNSET:
            data["types"] = _types_arg(types) or []
        if agent_id is not _UNSET:
            data["agent_id"] = agent_id
        if task_id is not _UNSET:
            data["task_id"] = task_id
        reply = await self.request("subscribe", data)
        if "types" in data:
            self.types = data["types"] or None
        if "agent_id" in data:
            self.agent_id = agent_id or None
        if "task_id" in data:
            self.task_id = task_id or None
        return dict(reply.get("data") or {})

    async def create_task(self, spec: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """``create_task`` over the stream; returns the created task."""
        reply = await self.request("create_task", task_spec(spec, **fields))
        return dict(reply["data"]["task"])

    async def cancel_task(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"task_id": task_id}
        if reason:
            data["reason"] = reason
        reply = await self.request("cancel_task", data)
        return dict(reply["data"]["task"])

    async def get_status(self) -> dict[str, Any]:
        reply = await self.request("get_status")
        return dict(reply["data"])


def _typed(obj: dict[str, Any], raw: str) -> Any:
    from ..core.events import DATA_TYPES, decode_event  # only typed streams pay for the schemas

    if obj.get("type") in DATA_TYPES:
        try:
            return decode_event(raw.encode())
        except (msgspec.ValidationError, msgspec.DecodeError, KeyError):
            log.debug("could not decode %s as a typed event; passing the dict", obj.get("type"))
    return obj


__all__ = ["CLOSE_POLICY", "CLOSE_SLOW", "EventStream"]
