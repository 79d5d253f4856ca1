"""Task decisions: submitting (one task or a batch), cancelling, retrying, and the
reports of the agent that holds a task (start, progress, complete, fail, release).

Every decision validates first and raises a ``HiveError`` before it emits
anything, so a refused command leaves the state as it was; a batch is validated
whole before its first task is created (all or nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from . import events as ev
from .commands import (
    OUTPUT_MAX,
    ApproveTask,
    CancelTask,
    Command,
    CompleteTask,
    FailTask,
    ProvideInput,
    RejectTask,
    ReleaseTask,
    ReportProgress,
    RequestInput,
    RetryTask,
    StartTask,
    SubmitTask,
    SubmitTasks,
    TaskSpec,
)
from .context import Decision, see
from .errors import DependencyNotFound, HiveError, InvalidInput, InvalidTransition, TaskEvicted, TaskExists
from .model import HELD, Task, TaskError, TaskStatus, Usage, UsageReport, priority_value
from .quotas import DEFAULT_RETRY_AFTER
from .rounding import round3
from .scheduler import conclude
from .state import HiveState
from .transitions import check_task_transition
from .usage import usage_of

__all__ = [
    "fail_attempt",
    "named_task_ids",
    "on_cancel",
    "on_complete",
    "on_fail",
    "on_progress",
    "on_release",
    "on_retry",
    "on_start",
    "on_submit",
    "on_submit_many",
]

TS = TaskStatus
# (bound once for the completion path: an Enum class attribute costs ~150 ns on 3.11)
_ASSIGNED, _INPUT_REQUIRED = TS.ASSIGNED, TS.INPUT_REQUIRED


# ---------------------------------------------------------------- the ids a command reads


#: commands that name one task by ``task_id``
_NAMES_ONE_TASK = (
    CancelTask,
    RetryTask,
    StartTask,
    ReportProgress,
    CompleteTask,
    FailTask,
    ReleaseTask,
    ApproveTask,
    RejectTask,
    RequestInput,
    ProvideInput,
)


def named_task_ids(s: HiveState, cmd: Command) -> Iterator[str]:
    """Every task id whose existence or status deciding ``cmd`` may read: the ids a
    submission takes and its dependencies, the task an operator action or a
    holder's report names, and a retried task's dependencies. ``Hive.unknown_task_ids``
    keeps those the core has forgotten, which the caller looks up in the log.
    (A hub-generated id, for a spec without one, is new by construction.)"""
    if isinstance(cmd, SubmitTask):
        specs: list[TaskSpec] = [cmd.spec]
    elif isinstance(cmd, SubmitTasks):
        specs = cmd.specs
    elif isinstance(cmd, _NAMES_ONE_TASK):
        yield cmd.task_id
        t = s.tasks.get(cmd.task_id)
        if isinstance(cmd, (RetryTask, ApproveTask)) and t is not None:
            yield from t.depends_on
        return
    else:
        return
    for spec in specs:
        if spec.id:
            yield spec.id
        yield from spec.depends_on


# ---------------------------------------------------------------- submitting


def _new_task(ctx: Decision, spec: TaskSpec, created_by: str | None, earlier: dict[str, None]) -> Task:
    """The task ``spec`` describes, validated against the state and the tasks of
    the same batch before it (``earlier``). Raises before anything is emitted."""
    s = ctx.s
    task_id = spec.id or s._new_id()
    if s.has_task(task_id):
        raise TaskExists(f"task {task_id} already exists", task_id=task_id)
    for dep in spec.depends_on:
        if dep == task_id:
            raise InvalidInput("a task cannot depend on itself", task_id=task_id)
        if dep not in earlier and not s.has_task(dep):
            raise DependencyNotFound(f"depends_on names unknown task {dep}", dependency=dep)
    return Task(
        id=task_id,
        description=spec.description,
        type=spec.type,
        priority=priority_value(spec.priority),
        status=TS.AWAITING_APPROVAL if spec.requires_approval else TS.PENDING,
        required_capabilities=list(spec.required_capabilities),
        input=spec.input,
        timeout_seconds=spec.timeout_seconds,
        max_retries=spec.max_retries,
        created_at=ctx.now,
        updated_at=ctx.now,
        depends_on=list(dict.fromkeys(spec.depends_on)),
        created_by=created_by,
        metadata=dict(spec.metadata),
        estimated_tokens=spec.estimated_tokens,
        max_tokens=spec.max_tokens,
        max_cost_usd=spec.max_cost_usd,
        requires_approval=spec.requires_approval,
    )


def _create(ctx: Decision, task: Task) -> None:
    s = ctx.s
    ctx.emit(
        ev.TaskCreated(
            timestamp=ctx.now, task=task, matching_agents=s.matching_agents(task.required_capabilities)
        )
    )
    if task.status == TS.AWAITING_APPROVAL:
        # not queued; its dependencies are read when it is approved (core/human.py)
        requested_by = task.created_by or "anonymous"
        ctx.emit(ev.TaskApprovalRequested(timestamp=ctx.now, task_id=task.id, requested_by=requested_by))
        return
    dead = [d for d in task.depends_on if s._task_status(d) in (TS.FAILED, TS.CANCELLED)]
    if dead:
        fail_dependents(ctx, dead[0], s._task_status(dead[0]), [task.id])


def on_submit(ctx: Decision, cmd: SubmitTask) -> None:
    _create(ctx, _new_task(ctx, cmd.spec, cmd.created_by, {}))


def on_submit_many(ctx: Decision, cmd: SubmitTasks) -> None:
    """Submit a batch: every task is validated before the first is created.

    A task may depend on tasks of the batch before it. Once validated, the batch
    is decided exactly as the sequence of single submissions it stands for: each
    task is created and scheduled in turn, its events caused by ``<id>#<index>``."""
    ids = [spec.id for spec in cmd.specs if spec.id]
    if len(set(ids)) != len(ids):
        raise InvalidInput("duplicate task ids in batch")
    tasks: list[Task] = []
    earlier: dict[str, None] = {}
    for i, spec in enumerate(cmd.specs):
        try:
            t = _new_task(ctx, spec, cmd.created_by, earlier)
        except HiveError as exc:
            exc.details.setdefault("index", i)
            raise
        earlier[t.id] = None
        tasks.append(t)
    cause = ctx.cause
    for i, t in enumerate(tasks):
        ctx.cause = f"{cause}#{i}" if cause is not None else None
        _create(ctx, t)
        conclude(ctx)
    ctx.cause = cause


# ---------------------------------------------------------------- operator actions


def on_cancel(ctx: Decision, cmd: CancelTask) -> None:
    s = ctx.s
    t = s._task(cmd.task_id)
    check_task_transition(t, TS.CANCELLED)
    agent_id = t.assigned_agent_id
    dependents = list(s._waiting.get(t.id, ()))
    ctx.emit(
        ev.TaskCancelled(
            timestamp=ctx.now,
            task_id=t.id,
            reason=cmd.reason,
            cancelled_by=cmd.cancelled_by,
            agent_id=agent_id,
            previous_status=t.status,
            usage=s._attempt_usage.get(t.id) if t.status in HELD else None,
        )
    )
    ctx.touch(agent_id, "task_cancelled")
    fail_dependents(ctx, t.id, t.status, dependents)


def on_retry(ctx: Decision, cmd: RetryTask) -> None:
    s = ctx.s
    t = s._task(cmd.task_id)
    if t.status not in (TS.FAILED, TS.CANCELLED):
        raise InvalidTransition(f"task {t.id} is {t.status}; only failed or cancelled tasks can be retried")
    if t.requires_approval and t.approved_by is None:
        # (rejected, or cancelled while awaiting approval): a retry must not bypass the gate
        raise InvalidTransition(f"task {t.id} was never approved; submit it again", task_id=t.id)
    for dep in t.depends_on:
        # An evicted dependency can never be retried, so a dependent waiting on one would pend forever.
        final = s.final_status(dep) if dep not in s.tasks else None
        if final is not None and final != TS.COMPLETED:
            raise TaskEvicted(
                f"task {t.id} depends on {dep}, which ended {final} and was evicted from memory",
                task_id=t.id,
                dependency=dep,
            )
    ctx.emit(
        ev.TaskRetried(
            timestamp=ctx.now, task_id=t.id, previous_status=t.status, requested_by=cmd.requested_by
        )
    )


# ---------------------------------------------------------------- the holder's reports


def on_start(ctx: Decision, cmd: StartTask) -> None:
    s = ctx.s
    t = s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    a = s._agent(cmd.agent_id)
    ctx.see(a)
    if t.status in (TS.RUNNING, TS.INPUT_REQUIRED):
        return  # a repeated report: idempotent
    ctx.emit(ev.TaskStarted(timestamp=ctx.now, task_id=t.id, agent_id=a.id, attempt_number=t.attempt))


def _ensure_started(ctx: Decision, t: Task) -> None:
    """Agents may report progress or an outcome without a separate start report."""
    if t.status == _ASSIGNED:
        assert t.assigned_agent_id is not None
        ctx.emit(
            ev.TaskStarted(
                timestamp=ctx.now, task_id=t.id, agent_id=t.assigned_agent_id, attempt_number=t.attempt
            )
        )


def _usage(ctx: Decision, t: Task, report: UsageReport | None) -> Usage | None:
    """The attempt's usage, priced now: the report's, else the latest progress report's."""
    if report is not None:
        return usage_of(report, ctx.s.config.prices)
    return ctx.s._attempt_usage.get(t.id)


def on_progress(ctx: Decision, cmd: ReportProgress) -> None:
    s = ctx.s
    t = s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    if cmd.output_delta and len(t.output) + len(cmd.output_delta) > OUTPUT_MAX:
        raise InvalidInput(
            f"task {t.id} output would exceed {OUTPUT_MAX} characters",
            task_id=t.id,
            output_length=len(t.output),
            delta_length=len(cmd.output_delta),
        )
    ctx.see(s.agents[cmd.agent_id])
    _ensure_started(ctx, t)
    eta = None
    if cmd.progress > 0 and t.started_at is not None:
        # Linear extrapolation from observed progress (elapsed on the monotonic clock).
        elapsed = ctx.held_for(t)
        eta = ctx.now + timedelta(seconds=elapsed * (1 - cmd.progress) / cmd.progress)
    ctx.emit(
        ev.TaskProgress(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=cmd.agent_id,
            progress=cmd.progress,
            current_step=cmd.current_step,
            estimated_completion=eta,
            attempt_number=t.attempt,
            output_delta=cmd.output_delta or None,
            usage=usage_of(cmd.usage, s.config.prices) if cmd.usage is not None else None,
        )
    )


def on_complete(ctx: Decision, cmd: CompleteTask) -> None:
    s = ctx.s
    t = s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    if t.status == _INPUT_REQUIRED:
        raise InvalidTransition(
            f"task {t.id} waits for input; it completes once the question is answered or timed out",
            task_id=t.id,
            status=str(t.status),
        )
    a = s.agents[cmd.agent_id]
    see(s, a, ctx.now, ctx.mono)  # (ctx.see)
    _ensure_started(ctx, t)
    assert t.started_at is not None
    ctx.emit(
        ev.TaskCompleted(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=a.id,
            execution_time_ms=round3(s._held_for(t, ctx.mono) * 1000),
            result=cmd.result,
            attempt_number=t.attempt,
            quality=cmd.quality,
            usage=_usage(ctx, t, cmd.usage) if cmd.usage is not None else s._attempt_usage.get(t.id),
        )
    )
    ctx.emit_performance(a, "completed", t.type)
    ctx.touch(a.id, "task_completed")


def on_fail(ctx: Decision, cmd: FailTask) -> None:
    s = ctx.s
    t = s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    ctx.see(s.agents[cmd.agent_id])
    _ensure_started(ctx, t)
    limited = cmd.error.code == "RATE_LIMITED"
    fail_attempt(
        ctx,
        t,
        cmd.error,
        retryable=cmd.retryable,
        kind="rate_limited" if limited else "reported",
        usage=_usage(ctx, t, cmd.usage),
        retry_after=(cmd.retry_after or DEFAULT_RETRY_AFTER) if limited else None,
    )


def on_release(ctx: Decision, cmd: ReleaseTask) -> None:
    t = ctx.s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    ctx.emit(
        ev.TaskReleased(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=cmd.agent_id,
            attempt_number=t.attempt,
            reason=cmd.reason,
            usage=ctx.s._attempt_usage.get(t.id),
        )
    )
    ctx.touch(cmd.agent_id, "task_released")


# ---------------------------------------------------------------- outcomes


def fail_attempt(
    ctx: Decision,
    t: Task,
    error: TaskError,
    *,
    retryable: bool,
    kind: str,
    usage: Usage | None = None,
    retry_after: float | None = None,
) -> None:
    """The held attempt failed (reported, timed out, or its agent was lost):
    retry with backoff while retries remain, else fail it and its dependents.

    ``kind == "rate_limited"`` (the provider's 429): re-queued after ``retry_after``
    seconds without spending a retry, whatever ``retryable`` says; the agent's pool
    pauses until then (``quotas.end_attempt``). Once the task has had
    ``HiveConfig.max_rate_limited`` of them, a further one is logged as
    ``rate_limited_over_limit`` and spends a retry like any failure (not before
    ``retry_after``). ``usage``: the attempt's, else the
    latest its progress reports gave."""
    s = ctx.s
    agent_id = t.assigned_agent_id
    if usage is None:
        usage = s._attempt_usage.get(t.id)
    pause = retry_after or DEFAULT_RETRY_AFTER
    if kind == "rate_limited" and t.rate_limited >= s.config.max_rate_limited:
        kind = "rate_limited_over_limit"  # a provider that always answers 429: spend retries
    if kind == "rate_limited":
        retry = True
        next_at: datetime | None = ctx.now + timedelta(seconds=pause)
    else:
        failures = t.failures + 1
        retry = retryable and failures <= t.max_retries
        delay = ctx.backoff(failures)
        if kind == "rate_limited_over_limit":
            delay = max(delay, pause)  # (the pool is paused that long anyway)
        next_at = ctx.now + timedelta(seconds=delay) if retry else None
    running = t.status in (TS.RUNNING, TS.INPUT_REQUIRED)
    dependents = [] if retry else list(s._waiting.get(t.id, ()))
    ctx.emit(
        ev.TaskFailed(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=agent_id,
            attempt_number=t.attempt,
            error=error,
            retry_scheduled=retry,
            next_retry_at=next_at,
            failure_kind=kind,
            execution_time_ms=round(ctx.held_for(t) * 1000, 3) if running else None,
            usage=usage,
        )
    )
    if agent_id is not None and agent_id in s.agents:
        if kind not in ev.RATE_LIMITED_KINDS:  # (not the agent's failure: its metrics did not change)
            ctx.emit_performance(s.agents[agent_id], "failed", t.type)
        ctx.touch(agent_id, "task_failed")
    if not retry:
        fail_dependents(ctx, t.id, t.status, dependents)


def fail_dependents(ctx: Decision, root_id: str, root_status: TaskStatus, dependents: list[str]) -> None:
    """A dependency failed for good or was cancelled: its waiting dependents fail, transitively.

    Takes the root's id and status, not the task (it may already be evicted), and
    the dependents as they were before the root ended (applying its end forgets them)."""
    s = ctx.s
    for dep_id in dependents:
        d = s.tasks.get(dep_id)
        if d is None or d.status != TS.PENDING:
            continue
        grand = list(s._waiting.get(d.id, ()))
        ctx.emit(
            ev.TaskFailed(
                timestamp=ctx.now,
                task_id=d.id,
                agent_id=None,
                attempt_number=d.attempt,
                error=TaskError(
                    "DEPENDENCY_FAILED",
                    f"dependency {root_id} ended {root_status}",
                    {"dependency": root_id, "dependency_status": str(root_status)},
                ),
                retry_scheduled=False,
                failure_kind="dependency_failed",
            )
        )
        fail_dependents(ctx, d.id, d.status, grand)
