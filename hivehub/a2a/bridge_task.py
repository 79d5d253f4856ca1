"""One hive task run on one A2A agent: the task as an A2A message, the agent's answer
as the hive's reports.

=================================  ===================================================
A2A (``a2a-sdk`` 1.3.0)            hive (through the agent SDK's :class:`TaskContext`)
=================================  ===================================================
``submitted`` / ``working``        ``task_progress`` (``current_step``: the status text)
artifact chunk (text parts)        ``task_progress`` with ``output_delta``
``completed``                      ``task_completed``, the artifacts as the result
``input-required``                 ``ctx.ask``: the hub's ``input_required``; the answer
                                   goes back as a follow-up message of the same task
``failed`` / ``rejected``          ``task_failed`` ``A2A_FAILED`` / ``A2A_REJECTED``
``canceled`` / ``auth-required``   ``task_failed`` ``A2A_CANCELED`` / ``A2A_AUTH_REQUIRED``
connection refused, stream cut     ``task_failed`` ``A2A_UNAVAILABLE``
JSON-RPC error                     ``task_failed`` ``A2A_ERROR``
not a valid A2A answer             ``task_failed`` ``A2A_BAD_RESPONSE``
no end within the timeout          ``task_failed`` ``A2A_TIMEOUT`` (and A2A cancel)
hub cancellation                   A2A ``CancelTask``
=================================  ===================================================

Every failure is retryable: the hub's retry prefers another agent (``failed_agents``)
and ``max_retries`` bounds it, as for a handler of the SDK that raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from a2a.client import A2AClientError, A2AClientTimeoutError, Client
from a2a.helpers import new_data_part, new_text_part
from a2a.types import (
    Artifact,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict

from hivehub.agent.context import TaskCancelled, TaskContext, TaskFailure

__all__ = ["CODES", "A2ALink", "translate"]

log = logging.getLogger("hivehub.a2a.bridge")

#: the stable codes of a task failed by the bridge
CODES = (
    "A2A_FAILED",
    "A2A_REJECTED",
    "A2A_CANCELED",
    "A2A_AUTH_REQUIRED",
    "A2A_UNAVAILABLE",
    "A2A_TIMEOUT",
    "A2A_ERROR",
    "A2A_BAD_RESPONSE",
)

_ENDED: dict[int, tuple[str, str]] = {
    TaskState.TASK_STATE_FAILED: ("A2A_FAILED", "the A2A agent failed the task"),
    TaskState.TASK_STATE_REJECTED: ("A2A_REJECTED", "the A2A agent rejected the task"),
    TaskState.TASK_STATE_CANCELED: ("A2A_CANCELED", "the A2A agent canceled the task"),
    TaskState.TASK_STATE_AUTH_REQUIRED: ("A2A_AUTH_REQUIRED", "the A2A agent requires authentication"),
}
_RUNNING = (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)

#: the polling of a non-streaming agent: first wait, longest wait (seconds)
POLL_FIRST, POLL_CAP = 0.05, 1.0


def translate(exc: BaseException, url: str) -> TaskFailure:
    """A foreign error of the A2A client -> the task failure it means (stable codes)."""
    cause = exc.__cause__
    details: dict[str, Any] = {"a2a_url": url, "exception": type(exc).__name__}
    if isinstance(exc, A2AClientTimeoutError | TimeoutError):
        return TaskFailure("A2A_TIMEOUT", f"the A2A agent did not answer in time: {exc}", details)
    if isinstance(exc, A2AClientError):
        if isinstance(cause, httpx.HTTPStatusError):
            status = cause.response.status_code
            details["http_status"] = status
            if status in (401, 403):
                return TaskFailure("A2A_AUTH_REQUIRED", f"the A2A agent answered HTTP {status}", details)
            if status >= 500 or status in (404, 408, 429):
                return TaskFailure("A2A_UNAVAILABLE", f"the A2A agent answered HTTP {status}", details)
            return TaskFailure("A2A_ERROR", f"the A2A agent answered HTTP {status}", details)
        if isinstance(cause, httpx.RequestError):
            return TaskFailure("A2A_UNAVAILABLE", f"the A2A agent is unreachable: {exc.message}", details)
        if "JSON-RPC Error" in exc.message:
            return TaskFailure("A2A_ERROR", exc.message, details)
        return TaskFailure("A2A_BAD_RESPONSE", exc.message, details)
    if isinstance(exc, A2AError):  # a JSON-RPC error the SDK knows by its code
        return TaskFailure("A2A_ERROR", f"{type(exc).__name__}: {exc.message}", details)
    if isinstance(exc, httpx.RequestError):
        return TaskFailure("A2A_UNAVAILABLE", f"the A2A agent is unreachable: {exc}", details)
    return TaskFailure("A2A_BAD_RESPONSE", f"unexpected answer from the A2A agent: {exc!r}", details)


def _text(parts: Any) -> str:
    return "".join(p.text for p in parts if p.WhichOneof("content") == "text")


def _json(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = MessageToDict(msg, preserving_proto_field_name=True)
    return out


def _input_parts(ctx: TaskContext) -> list[Part]:
    """The task's input as message parts: a string as text, any other JSON as data,
    no input: the description."""
    if isinstance(ctx.input, str):
        return [new_text_part(ctx.input)]
    if ctx.input is not None:
        return [new_data_part(ctx.input)]
    return [new_text_part(ctx.description or ctx.type)]


class _Exchange:
    """What is known of the A2A task behind one hive attempt."""

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.task_id = ""
        self.context_id = ""
        #: artifact_id -> artifact, in the order first seen
        self.artifacts: dict[str, Artifact] = {}
        self.reply: Message | None = None
        self.state: int = TaskState.TASK_STATE_UNSPECIFIED
        self.status_text = ""
        #: the status message id of the open question; of the last answered one
        self.question_id = ""
        self.answered: str | None = None

    def answer_sent(self) -> None:
        """A follow-up message answers the open question: the task works again."""
        self.answered = self.question_id
        self.state = TaskState.TASK_STATE_WORKING

    @property
    def finished(self) -> bool:
        return self.state not in (
            TaskState.TASK_STATE_UNSPECIFIED,
            *_RUNNING,
            TaskState.TASK_STATE_INPUT_REQUIRED,
        )

    def take_task(self, task: Task, snapshot: bool = False) -> None:
        self.task_id, self.context_id = task.id or self.task_id, task.context_id or self.context_id
        for a in task.artifacts:
            self.artifacts[a.artifact_id] = a
        st = task.status
        self._status(st.state, _text(st.message.parts), st.message.message_id, snapshot=snapshot)

    def _status(self, state: int, text: str, message_id: str = "", snapshot: bool = False) -> None:
        if state == TaskState.TASK_STATE_INPUT_REQUIRED and self.answered is not None:
            # the question already answered, seen again: in the task snapshot that
            # opens the follow-up's stream, or polled before the answer was taken
            if snapshot or (message_id and message_id == self.answered):
                return
        self.state, self.status_text = state, text
        self.question_id = message_id if state == TaskState.TASK_STATE_INPUT_REQUIRED else ""
        if state in _RUNNING:
            self.ctx.progress_sync(
                self.ctx.last_progress, text or TaskState.Name(state).removeprefix("TASK_STATE_").lower()
            )

    def take(self, ev: StreamResponse) -> None:
        kind = ev.WhichOneof("payload")
        if kind == "task":
            self.take_task(ev.task, snapshot=True)
        elif kind == "message":
            self.reply = ev.message
            self.state = TaskState.TASK_STATE_COMPLETED
            self.ctx.stream_output(_text(ev.message.parts))
        elif kind == "status_update":
            u = ev.status_update
            self.task_id = u.task_id or self.task_id
            self.context_id = u.context_id or self.context_id
            self._status(u.status.state, _text(u.status.message.parts), u.status.message.message_id)
        elif kind == "artifact_update":
            u = ev.artifact_update
            self.task_id = u.task_id or self.task_id
            art = u.artifact
            old = self.artifacts.get(art.artifact_id)
            if u.append and old is not None:
                old.parts.extend(art.parts)
            else:
                self.artifacts[art.artifact_id] = art
            delta = _text(art.parts)
            if delta:
                self.ctx.stream_output(delta)
        else:
            raise TaskFailure("A2A_BAD_RESPONSE", "an A2A stream event without a payload", {})

    def result(self) -> dict[str, Any]:
        arts = list(self.artifacts.values())
        text = "".join(_text(a.parts) for a in arts)
        out: dict[str, Any] = {"text": text, "artifacts": [_json(a) for a in arts]}
        if self.reply is not None:
            out["message"] = _json(self.reply)
            out["text"] = text + _text(self.reply.parts)
        out["a2a"] = {"task_id": self.task_id, "context_id": self.context_id}
        return out

    def failure(self) -> TaskFailure:
        code, default = _ENDED.get(
            self.state, ("A2A_BAD_RESPONSE", f"the A2A task ended in state {TaskState.Name(self.state)}")
        )
        return TaskFailure(
            code,
            self.status_text or default,
            {"a2a_task_id": self.task_id, "a2a_state": TaskState.Name(self.state)},
        )


class A2ALink:
    """One A2A agent seen from the bridge: its client, its card's streaming flag and
    the timeouts; calling it runs one hive task (it is the hive agent's ``"*"`` handler)."""

    def __init__(
        self,
        url: str,
        client: Client,
        *,
        streaming: bool,
        skills: list[str],
        timeout: float | None,
        cancel_timeout: float,
    ) -> None:
        self.url = url
        self.client = client
        self.streaming = streaming
        self.skills = skills
        self.timeout = timeout
        self.cancel_timeout = cancel_timeout
        self._background: set[asyncio.Task[None]] = set()

    def _skill(self, ctx: TaskContext) -> str | None:
        wanted = [c.get("name") for c in ctx.task.get("required_capabilities") or []] + [ctx.type]
        return next((s for s in wanted if s in self.skills), None)

    async def __call__(self, ctx: TaskContext) -> dict[str, Any]:
        ex = _Exchange(ctx)
        hive = {"task_id": ctx.task_id, "attempt": ctx.attempt, "type": ctx.type, "skill": self._skill(ctx)}
        message = Message(
            role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=_input_parts(ctx), metadata={"hive": hive}
        )
        try:
            while True:
                await self._segment(ex, message)
                if ex.state == TaskState.TASK_STATE_COMPLETED:
                    return ex.result()
                if ex.state != TaskState.TASK_STATE_INPUT_REQUIRED:
                    raise ex.failure()
                answer = await ctx.ask(ex.status_text or "the A2A agent needs input")
                ex.answer_sent()
                message = Message(
                    role=Role.ROLE_USER,
                    message_id=uuid.uuid4().hex,
                    task_id=ex.task_id,
                    context_id=ex.context_id,
                    parts=[new_text_part(str(answer))],
                    metadata={"hive": hive},
                )
        except (asyncio.CancelledError, TaskCancelled):
            self._cancel_later(ex, "the hub cancelled the task")
            raise
        except TaskFailure as f:
            self._cancel_later(ex, f.code)
            raise

    async def _segment(self, ex: _Exchange, message: Message) -> None:
        """Send one message and follow the task until it ends or needs input."""
        limit = self.timeout if self.timeout is not None else ex.ctx.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                if self.streaming:
                    # closed here, in this task (a generator left to the garbage
                    # collector is closed in another context, which the SDK's tracing logs)
                    async with contextlib.aclosing(
                        self._events(ex, SendMessageRequest(message=message))
                    ) as events:
                        async for ev in events:
                            ex.take(ev)
                            if ex.finished or ex.state == TaskState.TASK_STATE_INPUT_REQUIRED:
                                return
                    if not ex.finished and ex.state != TaskState.TASK_STATE_INPUT_REQUIRED:
                        raise TaskFailure(
                            "A2A_UNAVAILABLE",
                            "the A2A agent's stream ended before the task did",
                            {"a2a_url": self.url, "a2a_task_id": ex.task_id},
                        )
                    return
                await self._send_and_poll(ex, message)
        except TimeoutError:
            raise TaskFailure(
                "A2A_TIMEOUT",
                f"the A2A agent did not finish within {limit:g}s",
                {"a2a_url": self.url, "a2a_task_id": ex.task_id, "timeout_seconds": limit},
            ) from None

    async def _events(
        self, ex: _Exchange, request: SendMessageRequest
    ) -> AsyncGenerator[StreamResponse, None]:
        """The agent's answer to ``request``, event by event, read by a task of its own
        (the pump): cancelled before the agent named its task, the attempt ends at once
        while the pump reads on, bounded, until the task id comes, then cancels it."""
        queue: asyncio.Queue[StreamResponse | TaskFailure | None] = asyncio.Queue()
        pump = asyncio.ensure_future(self._pump(request, queue))
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, TaskFailure):
                    raise item
                yield item
        finally:
            if not ex.task_id and not pump.done():
                self._keep(self._cancel_when_named(queue, pump))
            else:
                pump.cancel()

    async def _pump(self, request: SendMessageRequest, queue: asyncio.Queue[Any]) -> None:
        stream = self.client.send_message(request)
        try:
            async for ev in stream:
                queue.put_nowait(ev)
            queue.put_nowait(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every foreign error becomes a stable code
            failure = translate(exc, self.url)
            failure.__cause__ = exc
            queue.put_nowait(failure)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]

    async def _cancel_when_named(self, queue: asyncio.Queue[Any], pump: asyncio.Future[None]) -> None:
        try:
            async with asyncio.timeout(self.cancel_timeout):
                while True:
                    item = await queue.get()
                    if not isinstance(item, StreamResponse):
                        return  # the stream ended or broke: nothing left to cancel
                    kind = item.WhichOneof("payload")
                    if kind == "message":
                        return
                    task_id = item.task.id if kind == "task" else getattr(item, kind).task_id
                    if task_id:
                        await self._cancel(task_id, "cancelled before the agent named its task")
                        return
        except TimeoutError:
            log.warning(
                "%s: the A2A agent named no task within %gs: nothing to cancel", self.url, self.cancel_timeout
            )
        finally:
            pump.cancel()

    async def _send_and_poll(self, ex: _Exchange, message: Message) -> None:
        """A non-streaming agent: return at once with the task (so a cancellation can
        name it), then poll ``GetTask`` until it ends or needs input."""
        request = SendMessageRequest(
            message=message, configuration=SendMessageConfiguration(return_immediately=True)
        )
        async with contextlib.aclosing(self._events(ex, request)) as events:
            async for ev in events:
                ex.take(ev)
        wait = POLL_FIRST
        while not ex.finished and ex.state != TaskState.TASK_STATE_INPUT_REQUIRED:
            if not ex.task_id:
                raise TaskFailure(
                    "A2A_BAD_RESPONSE", "the A2A agent answered with neither a task nor a message", {}
                )
            await asyncio.sleep(wait)
            wait = min(POLL_CAP, wait * 2)
            try:
                task = await self.client.get_task(GetTaskRequest(id=ex.task_id))
            except Exception as exc:  # noqa: BLE001
                raise translate(exc, self.url) from exc
            ex.take_task(task)

    def _cancel_later(self, ex: _Exchange, why: str) -> None:
        """Tell the A2A agent to stop (A2A ``CancelTask``), in the background: the
        attempt ends now, whatever the agent answers."""
        if not ex.task_id or ex.finished:
            return
        self._keep(self._cancel(ex.task_id, why))

    def _keep(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    async def _cancel(self, task_id: str, why: str) -> None:
        log.debug("%s: cancelling A2A task %s (%s)", self.url, task_id, why)
        try:
            async with asyncio.timeout(self.cancel_timeout):
                await self.client.cancel_task(CancelTaskRequest(id=task_id))
            log.info("%s: cancelled A2A task %s (%s)", self.url, task_id, why)
        except Exception as exc:  # noqa: BLE001 - best effort: the agent may be gone
            log.warning("%s: could not cancel A2A task %s (%s): %r", self.url, task_id, why, exc)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the cancellations still being sent."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)
