"""Human decisions: approving or rejecting a task before it runs, and a person's
answer to a question its holder asks while it runs.

Approval. A task submitted with ``requires_approval`` is created in
``awaiting_approval`` (``tasks._new_task``) and followed by
``task_approval_requested`` (``tasks._create``). It is not queued and no
agent is given it, however many are idle. :func:`on_approve` logs
``task_approved`` and the task is ``pending`` like any other: it is queued once
its dependencies completed, and fails at once if one already failed or was
cancelled (as a submission with such a dependency does). :func:`on_reject` logs
``task_rejected`` and then ``task_cancelled`` by the approver; its dependents fail
as for a cancel. A task that was never approved cannot be retried
(``tasks.on_retry``): a retry must not bypass the gate; submit it again.

Input. The holder of a running task asks (:func:`on_request_input`): the task is
``input_required`` and the agent still holds it (its slot stays taken, its
heartbeats and progress reports are accepted, a lost agent fails the attempt as
usual). While it waits, the task timeout is suspended: the applier of
``task_input_received`` moves the attempt's start on by the wait
(``Projection._a_task_input_received``), so the timeout and the execution time
count the agent's time, not the person's. The question's own timeout applies
instead: at its deadline a Tick answers it with ``timed_out``
(:func:`expire_inputs`) and the agent applies its fallback.

Every decision validates first and raises a ``HiveError`` before it emits.
"""

from __future__ import annotations

from datetime import timedelta

from . import events as ev
from .commands import (
    ANSWER_MAX,
    CHOICE_MAX,
    CHOICES_MAX,
    QUESTION_MAX,
    ApproveTask,
    ProvideInput,
    RejectTask,
    RequestInput,
)
from .context import Decision
from .errors import InvalidInput, InvalidTransition
from .indexes import due
from .model import Task, TaskStatus
from .tasks import _ensure_started, fail_dependents

__all__ = [
    "expire_inputs",
    "on_approve",
    "on_provide_input",
    "on_reject",
    "on_request_input",
]

TS = TaskStatus

#: the longest a question may wait (``RequestInput.timeout_seconds``)
MAX_INPUT_TIMEOUT = 7 * 24 * 3600.0


# ---------------------------------------------------------------- approval


def _awaiting(ctx: Decision, task_id: str, action: str) -> Task:
    t = ctx.s._task(task_id)
    if t.status != TS.AWAITING_APPROVAL:
        raise InvalidTransition(
            f"task {t.id} is {t.status}; only a task awaiting approval can be {action}",
            task_id=t.id,
            status=str(t.status),
        )
    return t


def on_approve(ctx: Decision, cmd: ApproveTask) -> None:
    s = ctx.s
    t = _awaiting(ctx, cmd.task_id, "approved")
    ctx.emit(
        ev.TaskApproved(timestamp=ctx.now, task_id=t.id, approved_by=cmd.approved_by, comment=cmd.comment)
    )
    # its dependencies are read now, as for a task submitted now (a forgotten one from the facts)
    dead = [d for d in t.depends_on if s._task_status(d) in (TS.FAILED, TS.CANCELLED)]
    if dead:
        fail_dependents(ctx, dead[0], s._task_status(dead[0]), [t.id])


def on_reject(ctx: Decision, cmd: RejectTask) -> None:
    s = ctx.s
    t = _awaiting(ctx, cmd.task_id, "rejected")
    dependents = list(s._waiting.get(t.id, ()))
    ctx.emit(ev.TaskRejected(timestamp=ctx.now, task_id=t.id, rejected_by=cmd.rejected_by, reason=cmd.reason))
    ctx.emit(
        ev.TaskCancelled(
            timestamp=ctx.now,
            task_id=t.id,
            reason=f"rejected: {cmd.reason}",
            cancelled_by=cmd.rejected_by,
            previous_status=TS.AWAITING_APPROVAL,
        )
    )
    fail_dependents(ctx, t.id, t.status, dependents)


# ---------------------------------------------------------------- input


def _check_question(cmd: RequestInput) -> None:
    """The wire limits, also for a command built without the decoder."""
    if not 0 < len(cmd.question) <= QUESTION_MAX:
        raise InvalidInput(f"question must have 1 to {QUESTION_MAX} characters")
    if cmd.choices is not None:
        if not 0 < len(cmd.choices) <= CHOICES_MAX:
            raise InvalidInput(f"choices must list 1 to {CHOICES_MAX} answers (or be null: free text)")
        if any(len(c) > CHOICE_MAX for c in cmd.choices):
            raise InvalidInput(f"a choice has at most {CHOICE_MAX} characters")
    if not 0 < cmd.timeout_seconds <= MAX_INPUT_TIMEOUT:
        raise InvalidInput(f"timeout_seconds must be > 0 and <= {MAX_INPUT_TIMEOUT:.0f}")


def on_request_input(ctx: Decision, cmd: RequestInput) -> None:
    s = ctx.s
    t = s._held(cmd.task_id, cmd.agent_id, cmd.attempt)
    _check_question(cmd)
    pending = t.pending_input
    if pending is not None:
        if pending.request_id == cmd.request_id:
            ctx.see(s.agents[cmd.agent_id])
            return  # a repeated request: idempotent
        raise InvalidTransition(
            f"task {t.id} already waits for the answer to {pending.request_id}",
            task_id=t.id,
            request_id=pending.request_id,
        )
    if t.last_input is not None and t.last_input.request_id == cmd.request_id:
        raise InvalidTransition(
            f"request {cmd.request_id} of task {t.id} was already answered",
            task_id=t.id,
            request_id=cmd.request_id,
        )
    if ctx.held_for(t) >= t.timeout_seconds:
        # its timeout is due (the next Tick fails it): a question cannot suspend it any more
        raise InvalidTransition(f"task {t.id} attempt {t.attempt} is past its timeout", task_id=t.id)
    ctx.see(s.agents[cmd.agent_id])
    _ensure_started(ctx, t)
    ctx.emit(
        ev.TaskInputRequired(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=cmd.agent_id,
            attempt_number=t.attempt,
            request_id=cmd.request_id,
            question=cmd.question,
            choices=list(cmd.choices) if cmd.choices is not None else None,
            timeout_seconds=cmd.timeout_seconds,
            deadline=ctx.now + timedelta(seconds=cmd.timeout_seconds),
        )
    )


def on_provide_input(ctx: Decision, cmd: ProvideInput) -> None:
    t = ctx.s._task(cmd.task_id)
    pending = t.pending_input
    if t.status != TS.INPUT_REQUIRED or pending is None:
        raise InvalidTransition(
            f"task {t.id} is {t.status}; it does not wait for input", task_id=t.id, status=str(t.status)
        )
    if cmd.request_id is not None and cmd.request_id != pending.request_id:
        raise InvalidTransition(
            f"task {t.id} waits for the answer to {pending.request_id}, not {cmd.request_id}",
            task_id=t.id,
            request_id=pending.request_id,
        )
    if len(cmd.answer) > ANSWER_MAX:
        raise InvalidInput(f"answer has at most {ANSWER_MAX} characters")
    if pending.choices is not None and cmd.answer not in pending.choices:
        raise InvalidInput(
            f"answer must be one of the choices of {pending.request_id}",
            task_id=t.id,
            choices=pending.choices,
        )
    _answer(ctx, t, cmd.answer, cmd.answered_by, timed_out=False)


def _answer(ctx: Decision, t: Task, answer: str | None, answered_by: str, *, timed_out: bool) -> None:
    assert t.pending_input is not None and t.assigned_agent_id is not None
    ctx.emit(
        ev.TaskInputReceived(
            timestamp=ctx.now,
            task_id=t.id,
            agent_id=t.assigned_agent_id,
            attempt_number=t.attempt,
            request_id=t.pending_input.request_id,
            answer=answer,
            answered_by=answered_by,
            timed_out=timed_out,
        )
    )


def expire_inputs(ctx: Decision) -> None:
    """In a Tick, before task timeouts are read: every question past its deadline is
    answered ``timed_out`` (the entries are dropped with the task deadlines,
    ``indexes.drain_deadlines``)."""
    s = ctx.s
    for _, task_id, deadline in due(s._input_deadlines, ctx.mono):
        t = s.tasks.get(task_id)
        if t is None or t.status != TS.INPUT_REQUIRED or t.pending_input is None:
            continue  # answered, cancelled or lost since
        if t.pending_input.deadline != deadline:
            continue  # the entry of an earlier question
        _answer(ctx, t, None, "timeout", timed_out=True)
