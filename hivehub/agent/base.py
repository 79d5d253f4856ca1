"""Transport-independent agent machinery: handlers, the executions held (slots,
de-duplication, cancel and release), what the hub's answers to reports mean, and
graceful shutdown. :class:`hivehub.agent.Agent` (WebSocket push) and
:class:`hivehub.agent.PullAgent` (HTTP long-poll) add a transport on top.

- :mod:`.execution`: running one attempt's handler to its outcome;
- :mod:`.reports`: the outbox of reports waiting for the hub's answer;
- the errors (``AgentError``, ``RegistrationError``) live in the wire's error tree,
  :mod:`hivehub.protocol.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from hivehub.core.errors import HiveError
from hivehub.core.model import AgentType, Capability, Task
from hivehub.core.policies import backoff
from hivehub.protocol.errors import AgentError, RegistrationError

from .asking import InputRequests
from .context import TaskContext
from .execution import Execution, Handler, Outcome, failure, run_handler
from .identity import IdFile, id_file_path
from .logs import LOG_FORMAT, _level, default_logging  # noqa: F401  (re-exported: their home before logs.py)
from .options import AgentOptions, normalize_capabilities
from .output import OutputReports
from .reports import (  # noqa: F401  (re-exported: their home before reports.py)
    MAX_REPORT_RETRIES,
    REPORT_KINDS,
    TERMINAL_KINDS,
    TRANSIENT_CODES,
    Outbox,
    Report,
    bounded_error,
)

__all__ = [
    "AgentError",
    "BaseAgent",
    "Handler",
    "RegistrationError",
    "normalize_capabilities",
]

log = logging.getLogger("hivehub.agent")

H = TypeVar("H", bound=Handler)

#: hub error codes that make a registration hopeless; the agent stops with RegistrationError
FATAL_REGISTER_CODES = frozenset(
    {"invalid_input", "payload_too_large", "unauthorized", "forbidden", "agent_exists"}
)


class BaseAgent(OutputReports, InputRequests):
    """Handlers, executions and shutdown shared by both transports. Not used directly."""

    def __init__(
        self,
        name: str,
        capabilities: Mapping[str, float]
        | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]]
        | None = None,
        *,
        options: AgentOptions | None = None,
        log_level: str | int | None = None,
        **overrides: Any,
    ) -> None:
        """``options`` and/or any :class:`AgentOptions` field as a keyword (a keyword
        wins). ``log_level``: the level of the stderr log the agent sets up when the
        program has configured no logging (default ``HIVE_LOG_LEVEL``, else INFO;
        ``"OFF"``: none; see :func:`default_logging`). Raises ValueError for an empty
        name, an invalid option or log level, TypeError for an unknown keyword."""
        if not name:
            raise ValueError("name must not be empty")
        if log_level is not None and not (
            isinstance(log_level, str) and log_level.upper() in ("OFF", "NONE")
        ):
            _level(log_level)
        self.log_level = log_level
        opts = (options or AgentOptions()).replace(**overrides)
        #: the options this agent was built with (its attributes below start from them)
        self.options = opts
        self.name = name
        self.type = AgentType(opts.type)
        self.capabilities = normalize_capabilities(capabilities)
        self.max_concurrent_tasks = opts.max_concurrent_tasks
        #: tasks the hub may assign beyond the slots (queued here until one frees)
        self.prefetch = opts.prefetch
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
        #: the model client of ``ctx.llm`` and ``llm_handler`` (None: no model)
        self.llm = opts.llm
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
        if self.options.quota:
            d["quota"] = self.options.quota
        if self.prefetch:
            d["prefetch"] = self.prefetch
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
        self._execs: dict[str, Execution] = {}
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
        default_logging(self.log_level)
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

    async def _release_late(self, late: list[Execution], flush_timeout: float) -> None:
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

    def _accept(self, task: Task, attempt: int) -> None:
        """A task was assigned to us (push ``assign`` or a successful claim)."""
        task_id, att = task.id, attempt
        if not task_id:
            log.warning("%s: assignment without a task id ignored: %r", self.name, task)
            return
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
        # the handler sees the task as the hub sent it: a dict (TaskContext.task)
        as_sent = msgspec.to_builtins(task)
        ctx = TaskContext(
            as_sent,
            att,
            on_progress=self._on_progress,
            loop=self._loop,
            agent=self,
            on_output=self._on_output,
        )
        e = Execution(as_sent, att, ctx)
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

    def _recall_from_hub(self, task_id: str, attempt: int) -> None:
        """The hub wants a prefetched attempt back for an agent with a free slot:
        hand it back if it has not started (it waits for a slot); otherwise the
        ``task_started`` already sent answers, and it runs here as it would have."""
        e = self._execs.get(task_id)
        if e is None or e.attempt != attempt or e.state != "queued":
            return
        log.info("%s: task %s#%d recalled by the hub before it started", self.name, task_id, attempt)
        self._release(e, "recalled")

    def _drop_queued(self) -> None:
        """The connection is gone: forget the attempts that wait for a slot (none of
        them started). The hub still counts them ours, and sends them again when we
        register on a new connection; if we do not come back in time it gives them
        to another agent, and none of them can have run here meanwhile."""
        for e in [e for e in self._execs.values() if e.state == "queued"]:
            e.ctx.cancel("disconnected")
            del self._execs[e.task_id]
            if e.aio is not None and not e.aio.done():
                e.aio.cancel()
        self._exec_changed.set()

    def _abort(self, e: Execution, reason: str) -> None:
        """Stop an execution and report nothing more about it."""
        e.ctx.cancel(reason)
        self._outbox.drop_attempt(e.task_id, e.attempt)
        self._forget(e)
        if e.aio is not None and not e.aio.done():
            e.aio.cancel()

    def _release(self, e: Execution, reason: str) -> None:
        """Hand an unfinished execution back to the hub (no failure counted)."""
        e.ctx.cancel(reason)
        self._forget(e)
        self._report("task_released", {"task_id": e.task_id, "attempt": e.attempt, "reason": reason})
        if e.aio is not None and not e.aio.done():
            e.aio.cancel()

    def _forget(self, e: Execution) -> None:
        e.ctx._finished = True
        e.pending_progress = None
        if e.progress_timer is not None:
            e.progress_timer.cancel()
            e.progress_timer = None
        if e.output_timer is not None:
            e.output_timer.cancel()
            e.output_timer = None
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

    def _finish(self, e: Execution, kind: str, data: dict[str, Any]) -> None:
        if self._execs.get(e.task_id) is not e:
            return  # aborted or released meanwhile
        # the last text goes out before the outcome: the deltas concatenate to the output
        self._flush_output(e)
        if e.ctx.usage is not None and "usage" not in data and kind in ("task_completed", "task_failed"):
            data = {**data, "usage": e.ctx.usage}
        if kind == "task_failed":
            err = data.get("error") or {}
            log.info(
                "%s: failed %s#%d: %s: %s",
                self.name,
                e.task_id,
                e.attempt,
                err.get("code"),
                err.get("message"),
            )
        else:
            log.info("%s: %s %s#%d", self.name, kind.removeprefix("task_"), e.task_id, e.attempt)
        self._report(kind, {"task_id": e.task_id, "attempt": e.attempt, **data})
        self._forget(e)

    def _end(self, e: Execution, outcome: Outcome) -> None:
        if outcome is not None:
            self._finish(e, *outcome)

    async def _execute(self, e: Execution) -> None:
        try:
            async with self._slots:
                if self._execs.get(e.task_id) is not e:
                    return
                if self._stopping:
                    e.state = "held"
                    return
                fn = self.resolve_handler(e.ctx.type)
                if fn is None:
                    self._end(
                        e,
                        failure(
                            "NO_HANDLER",
                            f"agent {self.name} has no handler for task type {e.ctx.type!r}",
                            {"task_type": e.ctx.type, "handlers": sorted(self._handlers)},
                            True,
                        ),
                    )
                    return
                e.state = "running"
                log.info("%s: started %s#%d (%s)", self.name, e.task_id, e.attempt, e.ctx.type)
                self._report("task_started", {"task_id": e.task_id, "attempt": e.attempt})
                self._exec_changed.set()
                self._end(
                    e, await run_handler(fn, e.ctx, self._run_in_thread, self._result_limit(), self.name)
                )
        except asyncio.CancelledError:
            if self._execs.get(e.task_id) is e and e.state != "held":
                raise  # not one of our own cancellations
        finally:
            if e.state == "running":
                e.state = "done"
            self._exec_changed.set()

    async def _run_in_thread(self, fn: Handler, ctx: TaskContext) -> Any:
        """A plain ``def`` handler, in the agent's thread pool (made on first use),
        with the caller's context variables."""
        assert self._loop is not None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(4, 2 * self.max_concurrent_tasks),
                thread_name_prefix=f"hive-{self.name}",
            )
        cv = contextvars.copy_context()
        return await self._loop.run_in_executor(self._executor, cv.run, fn, ctx)

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

    def _rejected(self, r: Report, exc: HiveError) -> None:
        """The hub answered a report with an error (rebuilt from its code)."""
        code, message, details = exc.code, exc.message, exc.details
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
