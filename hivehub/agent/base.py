"""Transport-independent agent machinery: handlers, executions, the report outbox
and graceful shutdown. :class:`hivehub.agent.Agent` (WebSocket push) and
:class:`hivehub.agent.PullAgent` (HTTP long-poll) add a transport on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import signal
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from hivehub.core.commands import ERROR_CODE_MAX, ERROR_MESSAGE_MAX
from hivehub.core.model import AgentType, Capability
from hivehub.core.policies import backoff

from .context import Result, TaskCancelled, TaskContext, TaskFailure
from .identity import IdFile, id_file_path
from .options import AgentOptions

__all__ = [
    "AgentError",
    "BaseAgent",
    "Handler",
    "RegistrationError",
    "normalize_capabilities",
]

log = logging.getLogger("hivehub.agent")

Handler = Callable[[TaskContext], Any | Awaitable[Any]]
H = TypeVar("H", bound=Handler)

#: report kinds (agent -> hub messages that get an ack)
REPORT_KINDS = frozenset({"task_started", "task_progress", "task_completed", "task_failed", "task_released"})
TERMINAL_KINDS = frozenset({"task_completed", "task_failed", "task_released"})
#: hub error codes after which a report is sent again later (nothing was accepted)
TRANSIENT_CODES = frozenset({"store_unavailable", "rate_limited", "internal_error", "hive_error"})
#: hub error codes that make a registration hopeless; the agent stops with RegistrationError
FATAL_REGISTER_CODES = frozenset(
    {"invalid_input", "payload_too_large", "unauthorized", "forbidden", "agent_exists"}
)
MAX_REPORT_RETRIES = 8


class AgentError(Exception):
    """Base of the SDK's own errors."""


class RegistrationError(AgentError):
    """The hub refused the registration for a reason a retry will not fix."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


def normalize_capabilities(
    capabilities: Mapping[str, float] | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]] | None,
) -> list[Capability]:
    """Accept ``{"name": proficiency}``, Capability structs, dicts or ``(name, prof[, rate])``."""
    if capabilities is None:
        return []
    items: list[Any]
    if isinstance(capabilities, Mapping):
        items = [{"name": k, "proficiency": v} for k, v in capabilities.items()]
    else:
        items = []
        for c in capabilities:
            if isinstance(c, Capability):
                items.append(msgspec.structs.asdict(c))
            elif isinstance(c, tuple):
                items.append(dict(zip(("name", "proficiency", "learning_rate"), c, strict=False)))
            else:
                items.append(dict(c))
    try:
        return msgspec.convert(items, list[Capability])
    except msgspec.ValidationError as e:
        raise ValueError(f"invalid capabilities: {e}") from None


def _is_async_callable(fn: Any) -> bool:
    while hasattr(fn, "func") and hasattr(fn, "args"):  # functools.partial
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def _traceback_tail(exc: BaseException, lines: int = 20) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


#: the SDK's bound on a failure's ``details`` (JSON bytes) and on each string in it
MAX_ERROR_DETAILS_BYTES = 16 * 1024
MAX_DETAIL_STRING = 4000


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    marker = f"... [truncated: {len(text)} characters]"
    return text[: max(0, limit - len(marker))] + marker


def bounded_error(code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """A failure's ``error`` within the hub's documented limits (``ERROR_CODE_MAX`` and
    ``ERROR_MESSAGE_MAX`` characters) and the SDK's ``MAX_ERROR_DETAILS_BYTES``: long
    text is cut with a marker saying how long it was, never dropped."""
    code = _clip(str(code) or "AGENT_ERROR", ERROR_CODE_MAX)
    message = _clip(str(message), ERROR_MESSAGE_MAX)
    try:
        size = len(msgspec.json.encode(details))
    except (TypeError, msgspec.EncodeError):
        details, size = {"unserializable_details": True}, 0
    if size > MAX_ERROR_DETAILS_BYTES:
        details = {k: _clip(v, MAX_DETAIL_STRING) if isinstance(v, str) else v for k, v in details.items()}
        size = len(msgspec.json.encode(details))
        if size > MAX_ERROR_DETAILS_BYTES:
            details = {"truncated": True, "original_bytes": size}
    return {"code": code, "message": message, "details": details}


class Report:
    """One agent -> hub report waiting for its ack."""

    __slots__ = ("attempt", "conn", "data", "kind", "message_id", "not_before", "task_id", "tries")

    def __init__(self, kind: str, data: dict[str, Any]) -> None:
        self.kind = kind
        self.data = data
        self.task_id: str = data["task_id"]
        self.attempt: int = data["attempt"]
        self.message_id = uuid.uuid4().hex
        #: the connection generation it was last sent on (None: not sent on the current one)
        self.conn: int | None = None
        #: monotonic time before which it must not be (re)sent
        self.not_before = 0.0
        self.tries = 0

    def envelope(self) -> dict[str, Any]:
        return {"type": self.kind, "data": self.data, "message_id": self.message_id}

    def __repr__(self) -> str:
        return f"<Report {self.kind} {self.task_id}#{self.attempt} {self.message_id[:8]}>"


class Outbox:
    """Reports in the order they were made, kept until the hub answered them.

    Progress reports are coalesced: a new one replaces any unanswered older one of
    the same attempt, so a long disconnect does not pile them up.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[str, Report] = OrderedDict()
        self.changed = asyncio.Event()
        self.empty = asyncio.Event()
        self.empty.set()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Report]:
        """A snapshot, oldest first: safe to iterate while reports come and go."""
        return iter(list(self._items.values()))

    def add(self, kind: str, data: dict[str, Any]) -> Report:
        if kind == "task_progress":
            for r in list(self._items.values()):
                if r.kind == kind and r.task_id == data["task_id"] and r.attempt == data["attempt"]:
                    del self._items[r.message_id]
        r = Report(kind, data)
        self._items[r.message_id] = r
        self.empty.clear()
        self.changed.set()
        return r

    def get(self, message_id: str | None) -> Report | None:
        return self._items.get(message_id) if message_id else None

    def remove(self, message_id: str) -> Report | None:
        r = self._items.pop(message_id, None)
        if not self._items:
            self.empty.set()
        return r

    def drop_attempt(self, task_id: str, attempt: int) -> None:
        for r in list(self._items.values()):
            if r.task_id == task_id and r.attempt == attempt:
                self.remove(r.message_id)

    def held(self) -> dict[str, int]:
        """Attempts with an unanswered report: the hub must keep them for us."""
        return {r.task_id: r.attempt for r in self._items.values()}


class _Exec:
    __slots__ = (
        "aio",
        "attempt",
        "ctx",
        "last_progress_at",
        "pending_progress",
        "progress_timer",
        "state",
        "task",
        "task_id",
    )

    def __init__(self, task: dict[str, Any], attempt: int, ctx: TaskContext) -> None:
        self.task = task
        self.task_id: str = task["id"]
        self.attempt = attempt
        self.ctx = ctx
        #: queued (waiting for a slot) | running | held (not started because stopping)
        self.state = "queued"
        self.aio: asyncio.Task[None] | None = None
        self.last_progress_at = -1e18
        self.pending_progress: tuple[float, str | None] | None = None
        self.progress_timer: asyncio.TimerHandle | None = None


class BaseAgent:
    """Handlers, executions and shutdown shared by both transports. Not used directly."""

    def __init__(
        self,
        name: str,
        capabilities: Mapping[str, float]
        | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]]
        | None = None,
        *,
        options: AgentOptions | None = None,
        **overrides: Any,
    ) -> None:
        """``options`` and/or any :class:`AgentOptions` field as a keyword (a keyword
        wins). Raises ValueError for an empty name or an invalid option, TypeError for
        an unknown keyword."""
        if not name:
            raise ValueError("name must not be empty")
        opts = (options or AgentOptions()).replace(**overrides)
        #: the options this agent was built with (its attributes below start from them)
        self.options = opts
        self.name = name
        self.type = AgentType(opts.type)
        self.capabilities = normalize_capabilities(capabilities)
        self.max_concurrent_tasks = opts.max_concurrent_tasks
        self.agent_id: str | None = opts.agent_id
        #: where the id is kept between runs (``identity.py``); None: not kept
        self.id_file: Path | None = (
            Path(opts.id_file)
            if opts.id_file is not None
            else id_file_path(opts.state_dir, name)
            if opts.state_dir is not None
            else None
        )
        self._id_store: IdFile | None = None
        self.token = opts.token
        self.metadata: dict[str, Any] = dict(opts.metadata or {})
        self.heartbeat_interval = opts.heartbeat_interval
        self.reconnect_base = opts.reconnect_base
        self.reconnect_cap = opts.reconnect_cap
        #: at most one progress report per task per this many seconds (the newest wins)
        self.progress_interval = opts.progress_interval
        #: larger results fail the task with RESULT_TOO_LARGE instead of being sent
        #: (the hub's default frame/body limit is 1 MiB); None: no check
        self.max_result_bytes = opts.max_result_bytes
        self._handlers: dict[str, Handler] = {}
        self._own_executor = opts.executor is None
        self._executor: ThreadPoolExecutor | None = opts.executor
        self._running_flag = False
        self._run_finished: asyncio.Future[None] | None = None
        self._reset_runtime()

    # ------------------------------------------------------------ handlers

    def handler(self, task_type: str) -> Callable[[H], H]:
        """Decorator: ``@agent.handler("data_processing")``; ``"*"`` is the fallback."""

        def deco(fn: H) -> H:
            self.add_handler(task_type, fn)
            return fn

        return deco

    def add_handler(self, task_type: str, fn: Handler) -> None:
        """Register ``fn(ctx)`` (``async def`` or plain ``def``) for ``task_type`` (``"*"``: any)."""
        if not task_type:
            raise ValueError("task_type must not be empty")
        if not callable(fn):
            raise TypeError(f"handler for {task_type!r} is not callable: {fn!r}")
        self._handlers[task_type] = fn

    def remove_handler(self, task_type: str) -> None:
        self._handlers.pop(task_type, None)

    @property
    def handlers(self) -> dict[str, Handler]:
        return dict(self._handlers)

    def resolve_handler(self, task_type: str) -> Handler | None:
        return self._handlers.get(task_type) or self._handlers.get("*")

    # ------------------------------------------------------------ introspection

    def spec(self) -> dict[str, Any]:
        """The AgentSpec fields sent when registering."""
        d: dict[str, Any] = {
            "name": self.name,
            "type": str(self.type),
            "capabilities": msgspec.to_builtins(self.capabilities),
            "max_concurrent_tasks": self.max_concurrent_tasks,
            "metadata": self.metadata,
        }
        if self.agent_id:
            d["id"] = self.agent_id
        return d

    @property
    def running_tasks(self) -> dict[str, int]:
        """``{task_id: attempt}`` of the attempts this agent executes or still has to report."""
        held = self._outbox.held()
        held.update({e.task_id: e.attempt for e in self._execs.values()})
        return held

    @property
    def active_count(self) -> int:
        """Executions occupying a slot or waiting for one (held ones excluded)."""
        return sum(1 for e in self._execs.values() if e.state != "held")

    @property
    def pending_reports(self) -> int:
        """Reports not yet answered by the hub."""
        return len(self._outbox)

    @property
    def stopping(self) -> bool:
        return self._stopping

    # ------------------------------------------------------------ lifecycle

    def _reset_runtime(self) -> None:
        self._execs: dict[str, _Exec] = {}
        self._outbox = Outbox()
        self._recent: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._slots = asyncio.Semaphore(self.max_concurrent_tasks)
        self._exec_changed = asyncio.Event()
        self._closed = asyncio.Event()
        self._stopping = False
        self._releasing = False
        self._closing = False
        self._stop_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        """Connect, register and execute tasks until :meth:`stop` completes.

        Raises :class:`RegistrationError` when the hub refuses the registration for good.
        """
        if self._running_flag:
            raise RuntimeError("agent is already running")
        self._running_flag = True
        self._loop = asyncio.get_running_loop()
        self._stopping = self._releasing = self._closing = False
        finished: asyncio.Future[None] = self._loop.create_future()
        self._run_finished = finished
        self._load_id()
        transport = asyncio.create_task(self._transport_main(), name=f"hive-agent-{self.name}")
        closed = asyncio.create_task(self._closed.wait())
        try:
            done, _ = await asyncio.wait({transport, closed}, return_when=asyncio.FIRST_COMPLETED)
            if transport in done:
                transport.result()
        except RegistrationError as exc:
            if exc.code == "agent_removed" and self._id_store is not None:
                self._id_store.clear()  # that id is gone for good: the next run registers anew
            raise
        finally:
            if self._id_store is not None:
                self._id_store.release()
                self._id_store = None
            self._closing = True
            for t in (transport, closed):
                t.cancel()
            for t in (transport, closed):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self._abort_all()
            with contextlib.suppress(Exception):
                await self._transport_close()
            if self._own_executor and self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            self._running_flag = False
            self._reset_runtime()  # a fresh state should run() be called again
            if not finished.done():
                finished.set_result(None)

    def _load_id(self) -> None:
        """Lock the id file and resume the id saved by an earlier run (an explicit
        ``agent_id`` wins over the file)."""
        if self.id_file is None:
            return
        store = IdFile(self.id_file)
        if not store.acquire():
            return
        self._id_store = store
        saved = store.read()
        if self.agent_id is None and saved is not None:
            self.agent_id = saved
            log.info("%s: resuming agent id %s from %s", self.name, saved, self.id_file)

    def _registered_as(self, agent_id: str) -> None:
        """The hub accepted a registration: remember the id for the next run."""
        self.agent_id = agent_id
        if self._id_store is not None:
            self._id_store.write(agent_id)

    def run_forever(self, grace: float = 10.0) -> None:
        """Blocking :meth:`run`; SIGINT/SIGTERM trigger :meth:`stop` with ``grace`` seconds."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stop_requests = 0

            def on_signal() -> None:
                nonlocal stop_requests
                stop_requests += 1
                if stop_requests == 1:
                    log.info("%s: stopping (waiting up to %ss for running tasks)", self.name, grace)
                    fut = asyncio.ensure_future(self.stop(grace))
                else:  # a second signal: do not wait any longer
                    log.warning("%s: stopping now", self.name)
                    fut = asyncio.ensure_future(self._stop_now())
                pending.add(fut)
                fut.add_done_callback(pending.discard)

            pending: set[asyncio.Future[None]] = set()
            installed = []
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, on_signal)
                    installed.append(sig)
            try:
                await self.run()
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())

    async def stop(self, grace: float = 10.0, *, flush_timeout: float = 5.0) -> None:
        """Stop taking tasks, let running ones finish for up to ``grace`` seconds (their
        reports are sent), release the rest with ``task_released`` and close.

        Waits at most ``flush_timeout`` more for the hub to acknowledge the last reports.
        Safe to call more than once and from any task; returns when the agent is closed.
        """
        if not self._running_flag or self._loop is None:
            return
        finished = self._run_finished
        if self._stop_task is None:
            self._stop_task = asyncio.ensure_future(self._do_stop(grace, flush_timeout))
        await asyncio.shield(self._stop_task)
        if finished is not None and not finished.done():
            await asyncio.shield(finished)

    async def _stop_now(self) -> None:
        """Release everything at once and close (a second Ctrl-C)."""
        self._stopping = True
        await self._release_and_close(1.0)

    async def _do_stop(self, grace: float, flush_timeout: float) -> None:
        self._stopping = True
        self._exec_changed.set()
        # Executions that have not started yet will not start now.
        for e in self._execs.values():
            if e.state == "queued" and e.aio is not None:
                e.state = "held"
                e.aio.cancel()
        deadline = time.monotonic() + max(0.0, grace)
        while any(e.state == "running" for e in self._execs.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._exec_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exec_changed.wait(), left)
        await self._release_and_close(flush_timeout)

    async def _release_and_close(self, flush_timeout: float) -> None:
        if self._releasing:
            return
        self._releasing = True
        for e in list(self._execs.values()):
            self._release(e, "agent_shutdown")
        await self._flush(flush_timeout)
        # Assignments that arrived meanwhile (typically a released task assigned straight
        # back to us): handed back once the hub no longer sees us as available.
        late = [e for e in self._execs.values() if e.state == "held"]
        try:
            await self._release_late(late, flush_timeout)
        except Exception as exc:  # best effort: the hub recovers them after heartbeat_timeout
            log.info("%s: could not hand back %d late assignment(s): %s", self.name, len(late), exc)
        if len(self._outbox):
            log.warning("%s: closing with %d unacknowledged report(s)", self.name, len(self._outbox))
        self._closing = True
        self._closed.set()

    async def _flush(self, timeout: float) -> None:
        if len(self._outbox):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.empty.wait(), max(0.0, timeout))

    async def _release_late(self, late: list[_Exec], flush_timeout: float) -> None:
        """Release executions assigned during the shutdown. Default: report them like
        the others (right for transports that stopped taking work, e.g. pull)."""
        for e in late:
            self._release(e, "agent_shutdown")
        await self._flush(flush_timeout)

    # ------------------------------------------------------------ transport hooks

    async def _transport_main(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _transport_close(self) -> None:
        return None

    # ------------------------------------------------------------ executions

    def _accept(self, task: dict[str, Any], attempt: int | None) -> None:
        """A task was assigned to us (push ``assign`` or a successful claim)."""
        task_id = task.get("id")
        if not isinstance(task_id, str) or not task_id:
            log.warning("%s: assignment without a task id ignored: %r", self.name, task)
            return
        att = int(attempt if attempt is not None else task.get("attempt") or 1)
        if (task_id, att) in self._recent:
            log.debug("duplicate assignment of %s#%d ignored", task_id, att)
            return
        old = self._execs.get(task_id)
        if old is not None:
            if old.attempt >= att:
                log.debug("duplicate assignment of %s#%d ignored", task_id, att)
                return
            self._abort(old, "superseded")
        assert self._loop is not None
        ctx = TaskContext(task, att, on_progress=self._on_progress, loop=self._loop, agent=self)
        e = _Exec(task, att, ctx)
        self._execs[task_id] = e
        if self._stopping:
            # Not started. Released when the agent closes (see _release_late: releasing
            # it now could make the hub assign it straight back, again and again).
            e.state = "held"
        else:
            e.aio = asyncio.create_task(self._execute(e), name=f"hive-task-{task_id}#{att}")
        self._exec_changed.set()

    def _cancel_from_hub(self, task_id: str, attempt: int | None, reason: str) -> None:
        e = self._execs.get(task_id)
        if e is None or (attempt is not None and e.attempt != attempt):
            # Not running here (finished, or an older/newer attempt); drop unsent reports.
            if attempt is not None:
                self._outbox.drop_attempt(task_id, attempt)
            return
        log.info("%s: task %s#%d cancelled by the hub (%s)", self.name, task_id, e.attempt, reason)
        self._abort(e, reason)

    def _abort(self, e: _Exec, reason: str) -> None:
        """Stop an execution and report nothing more about it."""
        e.ctx.cancel(reason)
        self._outbox.drop_attempt(e.task_id, e.attempt)
        self._forget(e)
        if e.aio is not None and not e.aio.done():
            e.aio.cancel()

    def _release(self, e: _Exec, reason: str) -> None:
        """Hand an unfinished execution back to the hub (no failure counted)."""
        e.ctx.cancel(reason)
        self._forget(e)
        self._report("task_released", {"task_id": e.task_id, "attempt": e.attempt, "reason": reason})
        if e.aio is not None and not e.aio.done():
            e.aio.cancel()

    def _forget(self, e: _Exec) -> None:
        e.ctx._finished = True
        e.pending_progress = None
        if e.progress_timer is not None:
            e.progress_timer.cancel()
            e.progress_timer = None
        if self._execs.get(e.task_id) is e:
            del self._execs[e.task_id]
        self._recent[(e.task_id, e.attempt)] = None
        while len(self._recent) > 4096:
            self._recent.popitem(last=False)
        self._exec_changed.set()

    async def _abort_all(self) -> None:
        tasks = []
        for e in list(self._execs.values()):
            e.ctx.cancel("agent_closed")
            self._forget(e)
            if e.aio is not None and not e.aio.done():
                e.aio.cancel()
                tasks.append(e.aio)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_progress(self, ctx: TaskContext, fraction: float, step: str | None) -> None:
        """Throttled: the first report goes out at once, later ones at most every
        ``progress_interval`` seconds (the newest value wins; none after the outcome)."""
        e = self._execs.get(ctx.task_id)
        if e is None or e.ctx is not ctx or e.state != "running":
            return
        wait = e.last_progress_at + self.progress_interval - time.monotonic()
        if wait <= 0:
            self._send_progress(e, fraction, step)
            return
        e.pending_progress = (fraction, step)
        if e.progress_timer is None and self._loop is not None:
            e.progress_timer = self._loop.call_later(wait, self._flush_progress, e)

    def _flush_progress(self, e: _Exec) -> None:
        e.progress_timer = None
        pending, e.pending_progress = e.pending_progress, None
        if pending is not None and self._execs.get(e.task_id) is e and e.state == "running":
            self._send_progress(e, *pending)

    def _send_progress(self, e: _Exec, fraction: float, step: str | None) -> None:
        e.last_progress_at = time.monotonic()
        self._report(
            "task_progress",
            {"task_id": e.task_id, "attempt": e.attempt, "progress": fraction, "current_step": step},
        )

    def _finish(self, e: _Exec, kind: str, data: dict[str, Any]) -> None:
        if self._execs.get(e.task_id) is not e:
            return  # aborted or released meanwhile
        self._report(kind, {"task_id": e.task_id, "attempt": e.attempt, **data})
        self._forget(e)

    def _fail(self, e: _Exec, code: str, message: str, details: dict[str, Any], retryable: bool) -> None:
        # Bounded before sending: the hub refuses a code or message over its limits, and a
        # frame over its frame limit closes the connection (the report would be re-sent
        # after every reconnect, forever, while the task stays running).
        self._finish(
            e,
            "task_failed",
            {"error": bounded_error(code, message, details), "retryable": bool(retryable)},
        )

    async def _execute(self, e: _Exec) -> None:
        try:
            async with self._slots:
                if self._execs.get(e.task_id) is not e:
                    return
                if self._stopping:
                    e.state = "held"
                    return
                fn = self.resolve_handler(e.ctx.type)
                if fn is None:
                    self._fail(
                        e,
                        "NO_HANDLER",
                        f"agent {self.name} has no handler for task type {e.ctx.type!r}",
                        {"task_type": e.ctx.type, "handlers": sorted(self._handlers)},
                        True,
                    )
                    return
                e.state = "running"
                self._report("task_started", {"task_id": e.task_id, "attempt": e.attempt})
                self._exec_changed.set()
                await self._run_handler(e, fn)
        except asyncio.CancelledError:
            if self._execs.get(e.task_id) is e and e.state != "held":
                raise  # not one of our own cancellations
        finally:
            if e.state == "running":
                e.state = "done"
            self._exec_changed.set()

    async def _run_handler(self, e: _Exec, fn: Handler) -> None:
        ctx = e.ctx
        try:
            if _is_async_callable(fn):
                value = await fn(ctx)
            else:
                assert self._loop is not None
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=max(4, 2 * self.max_concurrent_tasks),
                        thread_name_prefix=f"hive-{self.name}",
                    )
                cv = contextvars.copy_context()
                value = await self._loop.run_in_executor(self._executor, cv.run, fn, ctx)
                if inspect.isawaitable(value):
                    value = await value
        except TaskCancelled as exc:
            if not ctx.cancelled:
                self._fail(e, "CANCELLED", str(exc) or "the handler cancelled the task", {}, True)
            return
        except TaskFailure as f:
            self._fail(e, f.code, f.message, f.details, f.retryable)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if ctx.cancelled:
                return
            log.warning("%s: handler for %s#%d raised %r", self.name, e.task_id, e.attempt, exc)
            self._fail(
                e,
                "HANDLER_ERROR",
                str(exc) or type(exc).__name__,
                {
                    "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "traceback": _traceback_tail(exc),
                },
                True,
            )
            return
        if ctx.cancelled:
            return
        quality = None
        if isinstance(value, Result):
            quality = value.quality
            value = value.value
        try:
            result = msgspec.to_builtins(value)
            size = len(msgspec.json.encode(result))
        except (TypeError, msgspec.EncodeError) as exc:
            self._fail(
                e,
                "INVALID_RESULT",
                f"the handler returned a value that is not JSON-serializable: {exc}",
                {"result_type": f"{type(value).__module__}.{type(value).__qualname__}"},
                False,
            )
            return
        limit = self._result_limit()
        if limit is not None and size > limit:
            # The hub would refuse the frame (a WebSocket closes on an oversized frame, and
            # re-sending it after the reconnect would fail the same way, forever).
            self._fail(
                e,
                "RESULT_TOO_LARGE",
                f"the result is {size} bytes of JSON; the limit is {limit}",
                {"size": size, "limit": limit},
                False,
            )
            return
        data: dict[str, Any] = {"result": result}
        if quality is not None:
            data["quality"] = quality
        self._finish(e, "task_completed", data)

    def _result_limit(self) -> int | None:
        """Largest result (JSON bytes) to send: ``max_result_bytes``, or derived from the
        hub's announced ``max_frame_bytes``."""
        return self.max_result_bytes

    # ------------------------------------------------------------ reports

    def _report(self, kind: str, data: dict[str, Any]) -> Report:
        return self._outbox.add(kind, data)

    def _answered(self, message_id: str | None) -> Report | None:
        """The hub acknowledged a report."""
        return self._outbox.remove(message_id) if message_id else None

    def _rejected(self, r: Report, code: str, message: str, details: dict[str, Any] | None) -> None:
        """The hub answered a report with an error."""
        if code == "not_task_holder":
            log.info("%s: %s for %s#%d was stale (%s)", self.name, r.kind, r.task_id, r.attempt, message)
            self._outbox.remove(r.message_id)
            e = self._execs.get(r.task_id)
            if e is not None and e.attempt == r.attempt:
                self._abort(e, "not_task_holder")
            else:
                self._outbox.drop_attempt(r.task_id, r.attempt)
            return
        if code in TRANSIENT_CODES and r.tries < MAX_REPORT_RETRIES:
            r.tries += 1
            delay = max(0.05, backoff(r.tries, self.reconnect_base, self.reconnect_cap))
            log.info("%s: hub answered %s to %s; resending in %.2fs", self.name, code, r.kind, delay)
            r.conn = None
            r.not_before = time.monotonic() + delay
            if self._loop is not None:
                self._loop.call_later(delay, self._outbox.changed.set)
            return
        self._outbox.remove(r.message_id)
        log.warning(
            "%s: hub rejected %s for %s#%d: %s %s", self.name, r.kind, r.task_id, r.attempt, code, message
        )
        if r.kind == "task_completed" and code not in TRANSIENT_CODES:
            # The attempt would otherwise hang until its timeout: fail it explicitly.
            self._report(
                "task_failed",
                {
                    "task_id": r.task_id,
                    "attempt": r.attempt,
                    "error": bounded_error(
                        "RESULT_REJECTED",
                        f"the hub rejected the result: {code}: {message}",
                        {"code": code, "hub_details": details or {}},
                    ),
                    "retryable": False,
                },
            )
