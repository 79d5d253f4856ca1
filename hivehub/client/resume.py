"""The connection loop under :class:`~hivehub.client.stream.EventStream`: connect
with ``since=<cursor>``, read until the connection ends, resume after the last
sequence accounted for, back off between attempts, and notice a dead hub with
application pings. The public API (iteration, handlers, control commands) is in
:mod:`.stream`; this class owns what survives a reconnect: the cursor, the local
queue and the replies still awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import msgspec
from aiohttp import WSMsgType

from ..core.policies import backoff
from ..protocol.errors import CLOSE_POLICY, CLOSE_SLOW
from .errors import HubUnreachable, from_error_body, hive_error, unreachable
from .urls import EVENTS_WS

if TYPE_CHECKING:
    from ..core.errors import HiveError

log = logging.getLogger("hivehub.client.stream")

_POLICY_RE = re.compile(r"^([a-z_]+): (.*)$", re.S)
_SINCE_RE = re.compile(r"since=(\d+)")
_dec = msgspec.json.Decoder()


class Endpoint(Protocol):
    """What the stream needs of its client: where the hub is, the credentials, and
    ``status`` (the replay cursor's bounds). :class:`~hivehub.client.HiveClient` is
    one; the stream does not import it, so the client can build streams."""

    url: str
    token: str | None
    timeout: float | None

    @property
    def ws_url(self) -> str: ...

    def auth_headers(self) -> dict[str, str]: ...

    async def status(self) -> dict[str, Any]: ...


class _Fatal(Exception):
    """Wraps an error that reconnecting cannot fix (bad filter, refused credentials)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class ResumingConnection:
    """The reconnecting, resuming reader of /ws (the state is set by
    :class:`~hivehub.client.stream.EventStream`, which subclasses it)."""

    client: Endpoint
    types: list[str] | None
    agent_id: str | None
    task_id: str | None
    backoff_base: float
    backoff_cap: float
    heartbeat: float | None
    ping_interval: float | None
    pong_timeout: float
    max_attempts: int | None
    connect_timeout: float
    on_state: Callable[[str, dict[str, Any]], Any] | None
    connects: int
    duplicates: int
    pings_skipped: int
    disconnects: deque[tuple[int | None, str]]
    _cursor: int | None
    _want_snapshot: bool
    _queue: asyncio.Queue[Any]
    _pending: dict[str, asyncio.Future[dict[str, Any]]]
    _ws: aiohttp.ClientWebSocketResponse | None
    _connected: asyncio.Event
    _session: aiohttp.ClientSession | None
    _closed: bool
    _error: BaseException | None
    _blocked: bool
    _last_rx: float
    _rx_total: int

    async def request(
        self, type: str, data: dict[str, Any] | None = None, timeout: float | None = 30.0
    ) -> dict[str, Any]:  # pragma: no cover - EventStream's
        raise NotImplementedError

    # ----------------------------------------------------------- connection loop

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0  # consecutive failed attempts
        try:
            while not self._closed:
                code: int | None = None
                try:
                    ws = await self._connect()
                except _Fatal as f:
                    raise f.error from None
                except (HubUnreachable, aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self._note(
                        "disconnected", {"error": str(exc) or type(exc).__name__, "attempt": attempt + 1}
                    )
                    attempt += 1
                    if self.max_attempts is not None and attempt >= self.max_attempts:
                        raise unreachable(
                            f"cannot reach the hub stream at {self.client.ws_url} after {attempt} attempts: {exc}",
                            url=self.client.ws_url,
                        ) from exc
                else:
                    t0, rx0 = loop.time(), self._rx_total
                    code = await self._serve(ws)
                    reason = self.disconnects[-1][1] if self.disconnects else ""
                    if code == CLOSE_POLICY:
                        # the hub upgrades, then closes with 1008 "<code>: <message>" to refuse
                        refused = _policy_error(reason)
                        if refused is not None:
                            raise refused
                        attempt += 1  # e.g. too many connections from this client: back off
                    elif self._rx_total == rx0 and loop.time() - t0 < 1.0:
                        attempt += 1  # dropped at once: do not hammer the hub
                    else:
                        attempt = 0
                if self._closed:
                    break
                delay = backoff(attempt, self.backoff_base, self.backoff_cap)
                if code == CLOSE_SLOW:
                    delay = min(delay, 0.05)  # the hub asked us to come back from the log
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # fatal: hand it to the consumer
            self._error = exc
            self._fail_pending(exc)
            await self._put(exc)
        finally:
            self._ws = None
            self._connected.clear()

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout
                ),
                headers=self.client.auth_headers(),
            )
        return self._session

    def _query(self) -> dict[str, str]:
        q: dict[str, str] = {}
        if self.types:
            q["types"] = ",".join(self.types)
        if self.agent_id:
            q["agent_id"] = self.agent_id
        if self.task_id:
            q["task_id"] = self.task_id
        if self._want_snapshot:
            q["snapshot"] = "1"
        elif self._cursor is not None:
            q["since"] = str(self._cursor)
        if self.client.token:
            q["token"] = self.client.token
        return q

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        if self._cursor is None and not self._want_snapshot:
            # "from now on", made gapless: start at the hub's published sequence, so a
            # disconnect before the first event still resumes without a hole
            try:
                st = await self.client.status()
            except HubUnreachable:
                raise
            except Exception as exc:
                if _retryable(exc):
                    raise unreachable(str(exc)) from exc
                raise _Fatal(exc) from exc
            self._cursor = int(st.get("published_sequence", st.get("sequence", 0)))
        session = await self._http()
        query = self._query()
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await session.ws_connect(
                    self.client.ws_url,
                    params=query,
                    heartbeat=self.heartbeat,
                    compress=15,
                    max_msg_size=0,
                    autoping=True,
                )
        except aiohttp.WSServerHandshakeError as exc:
            err = await self._handshake_error(exc, query)
            if _retryable(err):
                raise unreachable(f"the hub refused the stream: {err.message}") from exc
            raise _Fatal(err) from exc
        self._ws = ws
        self.connects += 1
        self._connected.set()
        self._note(
            "connected",
            {"since": query.get("since"), "snapshot": "snapshot" in query, "connects": self.connects},
        )
        return ws

    async def _handshake_error(self, exc: aiohttp.WSServerHandshakeError, query: dict[str, str]) -> HiveError:
        """The hub validates the query before upgrading: ask again without the
        upgrade to read its JSON error body."""
        try:
            session = await self._http()
            async with session.get(self.client.url + EVENTS_WS, params=query) as resp:
                body = await resp.read()
                status = resp.status
            decoded = _dec.decode(body) if body.strip() else None
        except Exception:
            decoded, status = None, exc.status
        if status < 400:
            status = exc.status
        return from_error_body(decoded, status, f"stream handshake failed: HTTP {exc.status} {exc.message}")

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> int | None:
        """Read one connection until it ends; returns the close code."""
        reader = asyncio.ensure_future(self._read(ws))
        pinger = asyncio.ensure_future(self._pinger()) if self.ping_interval else None
        tasks = {reader} | ({pinger} if pinger else set())
        code: int | None = None
        reason = ""
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                try:
                    code, reason = reader.result()
                except Exception as exc:  # a broken connection, not a reason to stop
                    code, reason = None, f"error: {exc or type(exc).__name__}"
            else:
                code, reason = None, f"no pong within {self.pong_timeout}s"
                log.warning("hub stream stale (%s); reconnecting", reason)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            self._ws = None
            self._connected.clear()
            self._fail_pending(unreachable("the stream connection was lost before the reply"))
            if not ws.closed:
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(1.0):
                        await ws.close()
        if code == CLOSE_SLOW:
            m = _SINCE_RE.search(reason)
            if m:
                self._cursor = max(self._cursor or 0, int(m.group(1)))
            log.warning("hub closed the stream as too slow; resuming from since=%s", self._cursor)
        if code is None:
            code = ws.close_code
        self.disconnects.append((code, reason))
        if not self._closed:
            self._note("disconnected", {"code": code, "reason": reason, "resume_since": self._cursor})
        return code

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
        loop = asyncio.get_running_loop()
        while True:
            msg = await ws.receive()
            self._last_rx = loop.time()
            if msg.type == WSMsgType.TEXT:
                self._rx_total += 1
                await self._on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._rx_total += 1
                await self._on_text(msg.data.decode("utf-8", "replace"))
            elif msg.type == WSMsgType.CLOSE:
                return int(msg.data) if msg.data is not None else ws.close_code, str(msg.extra or "")
            elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
                return ws.close_code, ""
            elif msg.type == WSMsgType.ERROR:
                return ws.close_code, f"error: {msg.data}"

    async def _pinger(self) -> None:
        """Returns when the hub failed to answer a ping in time (the caller reconnects)."""
        assert self.ping_interval
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval)
            if self._blocked:
                self.pings_skipped += 1
                continue  # our consumer is slow, not the hub: the reader is not reading
            try:
                await self.request("ping", {}, self.pong_timeout)
            except TimeoutError:
                # a pong stuck behind a backlog we are still reading is not a dead hub
                if not self._blocked and loop.time() - self._last_rx >= self.pong_timeout:
                    return
            except HubUnreachable:
                return

    async def _on_text(self, text: str) -> None:
        try:
            obj = _dec.decode(text)
        except msgspec.DecodeError:
            log.warning("ignoring a non-JSON message from the hub: %.200s", text)
            return
        if not isinstance(obj, dict):
            return
        typ = obj.get("type")
        mid = obj.get("message_id")
        if mid is not None and mid in self._pending:
            fut = self._pending.pop(mid)
            if not fut.done():
                if typ == "error":
                    d = obj.get("data") or {}
                    fut.set_exception(
                        hive_error(d.get("code"), str(d.get("message", "")), d.get("details"), None)
                    )
                else:
                    fut.set_result(obj)
            return
        seq = obj.get("sequence")
        if isinstance(seq, int) and seq > 0:
            if self._cursor is not None and seq <= self._cursor:
                self.duplicates += 1
                return
            await self._put((obj, text))
            self._cursor = seq  # advanced only once the event is queued for the consumer
            return
        if typ == "snapshot":
            data = obj.get("data") or {}
            await self._put((obj, text))
            self._want_snapshot = False
            if isinstance(data.get("sequence"), int):
                self._cursor = max(self._cursor or 0, data["sequence"])
            return
        if typ == "error":
            d = obj.get("data") or {}
            log.warning("hub stream error %s: %s", d.get("code"), d.get("message"))
        await self._put((obj, text))

    async def _put(self, item: Any) -> None:
        if self._queue.full():
            self._blocked = True
            try:
                await self._queue.put(item)
            finally:
                self._blocked = False
        else:
            self._queue.put_nowait(item)

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: nobody may be waiting any more

    def _note(self, state: str, info: dict[str, Any]) -> None:
        log.debug("stream %s %s", state, info)
        if self.on_state is not None:
            try:
                r = self.on_state(state, info)
                if inspect.isawaitable(r):
                    asyncio.ensure_future(r)
            except Exception:
                log.exception("on_state callback failed")


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, HubUnreachable):
        return True
    status = getattr(exc, "status", None)
    return status is None or status >= 500 or status in (408, 429)


def _policy_error(reason: str) -> HiveError | None:
    m = _POLICY_RE.match(reason)
    if m is None or m.group(1) not in ("unauthorized", "forbidden"):
        return None
    return hive_error(m.group(1), m.group(2), {}, 401 if m.group(1) == "unauthorized" else 403)
