"""The pull agent: plain HTTP, long-polling ``POST /api/agents/{id}/claim``.

For environments where a WebSocket is not an option. Same handler API and the
same report semantics as :class:`hivehub.agent.Agent`; as there is no push channel,
a cancellation is noticed when a report is answered with ``409 not_task_holder`` or
when the task, looked up once per heartbeat, is no longer held by this agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from hivehub.client.urls import http_url
from hivehub.core.errors import HiveError
from hivehub.core.model import Capability, Task
from hivehub.core.policies import backoff, heartbeat_interval
from hivehub.protocol.codec import decode_error_body
from hivehub.protocol.errors import RegistrationError, rebuild
from hivehub.protocol.messages import Claim, HeartbeatReply, RegisteredAgent

from .asking import Answer
from .base import FATAL_REGISTER_CODES, BaseAgent
from .context import TaskContext
from .options import AgentOptions
from .reports import Report

__all__ = ["PullAgent"]

log = logging.getLogger("hivehub.agent")

_REPORT_PATHS = {
    "task_started": "start",
    "task_progress": "progress",
    "task_completed": "complete",
    "task_failed": "fail",
    "task_released": "release",
    "input_request": "input-request",
}


class _Unreachable(Exception):
    pass


#: the hub's answers, decoded with the structs it encodes them with (``hivehub.protocol.messages``)
_registered = msgspec.json.Decoder(RegisteredAgent)
_heartbeat = msgspec.json.Decoder(HeartbeatReply)
_claim = msgspec.json.Decoder(Claim)
_task = msgspec.json.Decoder(Task)
#: a decoding failure of an answer: logged and retried like a transport failure
_UNDECODABLE = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


async def _error_of(resp: aiohttp.ClientResponse) -> HiveError:
    """The hub's error from an error response ``{"error": {...}}``, rebuilt as its class;
    without one, ``http_<status>`` (``hive_error`` for a 5xx and ``rate_limited`` for a
    429, which a report is sent again after)."""
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        exc = decode_error_body(await resp.read())
        if exc is not None:
            return exc
    code = (
        "hive_error"
        if resp.status >= 500
        else "rate_limited"
        if resp.status == 429
        else f"http_{resp.status}"
    )
    return rebuild(code, resp.reason or "")


class PullAgent(BaseAgent):
    """An agent that claims tasks over HTTP (pull transport).

    Args are those of :class:`hivehub.agent.Agent` (``options`` or its fields as
    keywords), plus:
        url: the hub's address in any form (``http://host:port``; ``ws://`` and a
            trailing ``/agents/ws`` are converted: :mod:`hivehub.client.urls`)
        claim_wait: seconds each long-poll claim waits on the hub for a task
        request_timeout: seconds for the other requests
        heartbeat_interval: seconds between heartbeats (default: the hub's value if its
            register/heartbeat answer carries ``heartbeat_interval``, else 5)

    It registers first, with its id when it has one (given as ``agent_id`` or kept
    in its id file): the hub then updates that agent and brings it online. It
    registers again (same id) whenever the hub answers 404 for it.
    """

    def __init__(
        self,
        name: str,
        capabilities: Mapping[str, float]
        | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]]
        | None = None,
        *,
        url: str = "http://127.0.0.1:3001",
        options: AgentOptions | None = None,
        claim_wait: float = 20.0,
        request_timeout: float = 10.0,
        **overrides: Any,
    ) -> None:
        self.base_url = http_url(url)
        self.claim_wait = claim_wait
        self.request_timeout = request_timeout
        self.hub_info: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None
        self._hub_heartbeat: float | None = None
        self._register_lock = asyncio.Lock()
        self._registrations = 0
        #: seconds between two looks at a task whose handler waits in ``ctx.ask``
        self.answer_poll_interval = 0.5
        super().__init__(name, capabilities, options=options, **overrides)
        self.prefetch = 0  # a claim takes one task per free slot: nothing is assigned ahead

    def _reset_runtime(self) -> None:
        super()._reset_runtime()
        self._ready = asyncio.Event()

    async def wait_registered(self, timeout: float | None = None) -> str:
        """Wait until the agent has an id (registered, or given as ``agent_id``)."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        assert self.agent_id is not None
        return self.agent_id

    # ------------------------------------------------------------ plumbing

    def _registered_id(self) -> str:
        """The id the loops use: set by the registration that precedes them."""
        if self.agent_id is None:
            raise RuntimeError("the pull agent's loops run only after its registration")
        return self.agent_id

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _timeout(self, total: float | None = None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total or self.request_timeout)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    async def _transport_main(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._session = aiohttp.ClientSession(headers=headers)
        await self._register()
        self._ready.set()
        loops = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._sender()),
            asyncio.create_task(self._claims()),
        ]
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
            # the claim loop ends when stopping: keep heartbeating and reporting until closed
            await self._closed.wait()
        finally:
            for t in loops:
                t.cancel()
            for t in loops:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _transport_close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _register(self, *, known_stale: str | None = None) -> None:
        """POST /api/agents until it succeeds (with backoff) or fails for good."""
        async with self._register_lock:
            if known_stale is not None and self.agent_id != known_stale:
                return  # someone re-registered meanwhile
            assert self._session is not None
            failures = 0
            log.info("%s: registering at %s (pull)", self.name, self.base_url)
            while not self._closing:
                try:
                    async with self._session.post(
                        self._url("/api/agents"), json=self.spec(), timeout=self._timeout()
                    ) as resp:
                        if resp.status < 300:
                            agent = _registered.decode(await resp.read())
                            self._registered_as(agent.id)
                            self.hub_info = msgspec.to_builtins(agent)
                            self._note_interval(agent.heartbeat_timeout, agent.heartbeat_interval)
                            self._registrations += 1
                            log.info("%s: registered as %s (pull)", self.name, self.agent_id)
                            return
                        err = await _error_of(resp)
                        code = err.code
                        if code == "agent_exists" and self.agent_id is not None:
                            # a hub from before registering again updated a known id
                            log.info(
                                "%s: continuing as %s (pull; the hub kept its spec)", self.name, self.agent_id
                            )
                            self._registered_as(self.agent_id)
                            return
                        if code in FATAL_REGISTER_CODES or resp.status in (400, 401, 403, 413, 422):
                            raise RegistrationError.refused(code, err.message, err.details)
                        log.info("%s: registration answered %s %s", self.name, resp.status, code)
                except (aiohttp.ClientError, OSError, TimeoutError, *_UNDECODABLE) as exc:
                    log.info(
                        "%s: cannot register at %s: %s", self.name, self.base_url, exc or type(exc).__name__
                    )
                failures += 1
                await self._pause(backoff(failures, self.reconnect_base, self.reconnect_cap))

    def _note_interval(self, timeout: float | None, hub_interval: float | None) -> None:
        """Use the hub's ``heartbeat_interval``, at most a third of its ``heartbeat_timeout``."""
        interval = heartbeat_interval(
            timeout, hub_interval if hub_interval is not None and hub_interval > 0 else None, floor=0.05
        )
        if interval is not None:
            self._hub_heartbeat = interval

    # ------------------------------------------------------------ loops

    async def _heartbeats(self) -> None:
        assert self._session is not None
        while True:
            await asyncio.sleep(self.heartbeat_interval or self._hub_heartbeat or 5.0)
            agent_id = self._registered_id()
            try:
                async with self._session.post(
                    self._url(f"/api/agents/{quote(agent_id, safe='')}/heartbeat"), timeout=self._timeout()
                ) as resp:
                    if resp.status == 404:
                        await self._register(known_stale=agent_id)
                    elif resp.status < 300:
                        try:
                            reply = _heartbeat.decode(await resp.read())
                        except _UNDECODABLE as exc:
                            log.info("%s: heartbeat answer not understood: %s", self.name, exc)
                        else:
                            self._note_interval(reply.heartbeat_timeout, reply.heartbeat_interval)
                    else:
                        log.info("%s: heartbeat answered %s", self.name, resp.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.info("%s: heartbeat failed: %s", self.name, exc or type(exc).__name__)
            await self._check_held()

    async def _check_held(self) -> None:
        """No push channel: notice cancellations (and reassignments, timeouts) by looking
        at our tasks with ``GET /api/tasks/{id}`` once per heartbeat."""
        assert self._session is not None
        for e in list(self._execs.values()):
            try:
                async with self._session.get(
                    self._url(f"/api/tasks/{quote(e.task_id, safe='')}"), timeout=self._timeout()
                ) as resp:
                    if resp.status == 404:
                        task: Task | None = None
                    elif resp.status == 200:
                        task = _task.decode(await resp.read())
                    else:
                        continue
            except (aiohttp.ClientError, OSError, TimeoutError, *_UNDECODABLE):
                continue
            if self._execs.get(e.task_id) is not e:
                continue
            status = "deleted" if task is None else str(task.status)
            if (
                task is None
                or status not in ("assigned", "running", "input_required")
                or task.assigned_agent_id != self.agent_id
                or task.attempt != e.attempt
            ):
                log.info("%s: task %s#%d is no longer ours (%s)", self.name, e.task_id, e.attempt, status)
                self._abort(
                    e,
                    f"task_{status}" if status in ("cancelled", "completed", "failed") else "not_task_holder",
                )

    async def _wait_answer(self, ctx: TaskContext, request_id: str, fut: asyncio.Future[Answer]) -> Answer:
        """No push channel: poll ``GET /api/tasks/{id}`` until the question is no longer
        pending, then read the task's ``last_input`` (the hub's answer)."""
        assert self._session is not None
        url = self._url(f"/api/tasks/{quote(ctx.task_id, safe='')}")
        while True:
            await asyncio.sleep(self.answer_poll_interval)
            try:
                async with self._session.get(url, timeout=self._timeout()) as resp:
                    if resp.status != 200:
                        continue
                    task = msgspec.json.decode(await resp.read())
            except (aiohttp.ClientError, OSError, TimeoutError, *_UNDECODABLE):
                continue
            if not isinstance(task, dict):
                continue
            pending = task.get("pending_input")
            if isinstance(pending, dict) and pending.get("request_id") == request_id:
                continue
            last = task.get("last_input")
            if isinstance(last, dict) and last.get("request_id") == request_id:
                return last.get("answer"), bool(last.get("timed_out")), last.get("answered_by")

    async def _claims(self) -> None:
        assert self._session is not None
        failures = 0
        while not self._stopping:
            while self.active_count >= self.max_concurrent_tasks and not self._stopping:
                self._exec_changed.clear()
                await self._exec_changed.wait()
            if self._stopping:
                break
            agent_id = self._registered_id()
            try:
                async with self._session.post(
                    self._url(f"/api/agents/{quote(agent_id, safe='')}/claim"),
                    params={"wait": f"{self.claim_wait:g}"},
                    timeout=self._timeout(self.claim_wait + self.request_timeout),
                ) as resp:
                    if resp.status == 200:
                        claim = _claim.decode(await resp.read())
                        self._accept(claim.task, claim.attempt)
                        failures = 0
                        continue
                    if resp.status == 204:
                        failures = 0
                        continue
                    if resp.status == 404:
                        await self._register(known_stale=agent_id)
                        continue
                    err = await _error_of(resp)
                    if resp.status in (401, 403):
                        raise RegistrationError.refused(err.code, err.message, err.details)
                    log.info("%s: claim answered %s %s: %s", self.name, resp.status, err.code, err.message)
            except (aiohttp.ClientError, OSError, TimeoutError, *_UNDECODABLE) as exc:
                log.info("%s: claim failed: %s", self.name, exc or type(exc).__name__)
            failures += 1
            await self._pause(backoff(failures, self.reconnect_base, self.reconnect_cap))

    async def _sender(self) -> None:
        """Post reports one by one, in order; a report that cannot be delivered blocks the
        ones behind it (so a completion never overtakes its start)."""
        outbox = self._outbox
        failures = 0
        while True:
            outbox.changed.clear()
            for r in outbox:
                if outbox.get(r.message_id) is not r:
                    continue
                wait = r.not_before - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if outbox.get(r.message_id) is not r:
                        continue
                try:
                    await self._post_report(r)
                except _Unreachable as exc:
                    failures += 1
                    log.info("%s: cannot send %s: %s", self.name, r.kind, exc)
                    await asyncio.sleep(backoff(failures, self.reconnect_base, self.reconnect_cap))
                    break
                failures = 0
            else:
                await outbox.changed.wait()

    async def _post_report(self, r: Report) -> None:
        assert self._session is not None
        body = {"agent_id": self.agent_id, **{k: v for k, v in r.data.items() if k != "task_id"}}
        r.conn = 0  # sent (the outbox merges output only into reports never sent)
        try:
            async with self._session.post(
                self._url(f"/api/tasks/{quote(r.task_id, safe='')}/{_REPORT_PATHS[r.kind]}"),
                json=body,
                timeout=self._timeout(),
            ) as resp:
                if resp.status < 300:
                    self._answered(r.message_id)
                    return
                err = await _error_of(resp)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Unreachable(str(exc) or type(exc).__name__) from None
        self._rejected(r, err)
