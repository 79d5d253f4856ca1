"""REST routes of tasks (submission, listing, lookup, cancel and retry, and the
pull transport's reports) and ``/api/events``, the log over HTTP."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..core import commands as C
from ..core import events as ev
from ..core.attempts import fold_attempts
from ..core.errors import InvalidInput, TaskNotFound
from ..core.model import PRIORITY_NAMES, Task, TaskStatus
from ..core.tasklog import task_id_of
from ..protocol import codec
from ..protocol.messages import (
    AgentReport,
    ApproveBody,
    AttemptList,
    CancelBody,
    CompleteReport,
    EventPage,
    FailReport,
    InputBody,
    InputRequestBody,
    ProgressReport,
    RejectBody,
    ReleaseReport,
    RetryBody,
    TaskBatch,
    TaskBatchResult,
    TaskPage,
    TaskRead,
    TaskReply,
)
from .routes import (
    actor,
    body_as,
    json,
    paginate,
    q_enum,
    q_int,
    raw_json,
    request_id,
    route,
    svc,
    task_json,
    task_read,
    view,
)
from .view import HiveReader

_enc = msgspec.json.Encoder()


@route(
    "POST",
    "/api/tasks",
    "Submit a task",
    body=C.TaskSpec,
    response=TaskRead,
    status=201,
    errors=(400, 409, 413, 422),
)
async def create_task(request: web.Request) -> web.Response:
    spec = await body_as(request, C.TaskSpec)
    s = svc(request)
    events = await s.execute(C.SubmitTask(id=request_id(request), spec=spec, created_by=actor(request)))
    return raw_json(await task_json(request, events[0].data.task.id), status=201)  # type: ignore[attr-defined]


@route(
    "POST",
    "/api/tasks/batch",
    "Submit up to 1000 tasks at once (all or none validated first)",
    body=TaskBatch,
    response=TaskBatchResult,
    status=201,
    errors=(400, 409, 413, 422),
)
async def create_tasks(request: web.Request) -> web.Response:
    batch = await body_as(request, TaskBatch)
    s = svc(request)
    # one core command: every task is validated before the first is created (all or none)
    events = await s.execute(
        C.SubmitTasks(id=request_id(request), specs=batch.tasks, created_by=actor(request))
    )
    created: list[Task] = []
    for e in events:
        if isinstance(e.data, ev.TaskCreated):
            # committed by the execute above (on a follower: folded before it returns), so
            # the lookup finds it, in memory or folded from the log. Should this replica's
            # state not hold it, the committed event does: every created task is answered,
            # never a KeyError or a shorter list.
            task = await s.task(e.data.task.id)
            created.append(task if task is not None else e.data.task)
    return json(TaskBatchResult(created), status=201)


@route(
    "GET",
    "/api/tasks",
    "List the tasks in memory, newest first: every unfinished task and the newest --retain-finished finished ones",
    response=TaskPage,
    query={
        "status": "task status",
        "type": "task type",
        "agent_id": "assigned agent",
        "id_prefix": "ids starting with this (how the CLI completes a short id)",
        "priority": "1..4 or name",
        "limit": "1..1000",
        "cursor": "from next_cursor",
        "order": "desc (default) or asc",
    },
)
async def list_tasks(request: web.Request) -> web.Response:
    status = q_enum(request, "status", TaskStatus)
    typ = request.query.get("type")
    agent_id = request.query.get("agent_id")
    id_prefix = request.query.get("id_prefix")
    prio_raw = request.query.get("priority")
    prio = None
    if prio_raw:
        if prio_raw in ("1", "2", "3", "4"):  # not isdigit(): "²" is a digit int() refuses
            prio = int(prio_raw)
        elif prio_raw in PRIORITY_NAMES:
            prio = PRIORITY_NAMES[prio_raw]
        else:
            raise InvalidInput("priority must be 1..4 or low|medium|high|critical", parameter="priority")
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidInput("order must be asc or desc", parameter="order")

    now = svc(request).clock()

    def build(r: HiveReader) -> bytes:
        tasks = r.tasks()
        items = [
            t
            for t in (reversed(tasks) if order == "desc" else tasks)  # type: ignore[call-overload]
            if (status is None or t.status == status)
            and (not typ or t.type == typ)
            and (not agent_id or t.assigned_agent_id == agent_id)
            and (not id_prefix or t.id.startswith(id_prefix))
            and (prio is None or t.priority == prio)
        ]
        page, nxt = paginate(items, request)
        # TaskPage, with each task's blocked_reason spliced in (routes.task_read)
        body = b",".join(task_read(t, r.blocked_reason(t, now)) for t in page)
        return b'{"tasks":[' + body + b'],"next_cursor":' + _enc.encode(nxt) + b"}"

    return raw_json(await view(request).read(build))


@route(
    "GET",
    "/api/tasks/{id}",
    "One task (a finished task evicted from memory is read from the log)",
    response=TaskRead,
    errors=(404,),
)
async def get_task(request: web.Request) -> web.Response:
    return raw_json(await task_json(request, request.match_info["id"]))


@route(
    "GET",
    "/api/tasks/{id}/attempts",
    "A task's attempts, oldest first (agent, times, outcome, error, usage), folded from its events in the log",
    response=AttemptList,
    errors=(404,),
)
async def get_attempts(request: web.Request) -> web.Response:
    task_id = request.match_info["id"]
    s = svc(request)
    rows = await s.store.task_events(task_id)
    events = [e.data for e in map(ev.decode_event, (r.body for r in rows)) if task_id_of(e.data) == task_id]
    if not events:
        raise TaskNotFound(f"no task {task_id}", task_id=task_id)
    return json(AttemptList(task_id=task_id, attempts=fold_attempts(events)))


async def _task_command(request: web.Request, cmd: C.Command, task_id: str) -> web.Response:
    await svc(request).execute(cmd)
    return raw_json(await task_json(request, task_id))


@route(
    "POST",
    "/api/tasks/{id}/cancel",
    "Cancel a pending, assigned or running task",
    body=CancelBody,
    response=TaskRead,
    errors=(404, 409),
)
async def cancel_task(request: web.Request) -> web.Response:
    b = await body_as(request, CancelBody)
    tid = request.match_info["id"]
    cmd = C.CancelTask(
        id=request_id(request), task_id=tid, reason=b.reason, cancelled_by=b.cancelled_by or actor(request)
    )
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/retry",
    "Put a failed or cancelled task back in the queue",
    body=RetryBody,
    response=TaskRead,
    errors=(404, 409),
)
async def retry_task(request: web.Request) -> web.Response:
    b = await body_as(request, RetryBody)
    tid = request.match_info["id"]
    cmd = C.RetryTask(id=request_id(request), task_id=tid, requested_by=b.requested_by or actor(request))
    return await _task_command(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/start",
    "Agent report: started",
    body=AgentReport,
    response=TaskRead,
    errors=(404, 409),
)
async def start_task(request: web.Request) -> web.Response:
    return await _report(request, AgentReport)


@route(
    "POST",
    "/api/tasks/{id}/progress",
    "Agent report: progress",
    body=ProgressReport,
    response=TaskRead,
    errors=(404, 409),
)
async def progress_task(request: web.Request) -> web.Response:
    return await _report(request, ProgressReport)


@route(
    "POST",
    "/api/tasks/{id}/complete",
    "Agent report: completed with a result",
    body=CompleteReport,
    response=TaskRead,
    errors=(404, 409),
)
async def complete_task(request: web.Request) -> web.Response:
    return await _report(request, CompleteReport)


@route(
    "POST",
    "/api/tasks/{id}/fail",
    "Agent report: failed",
    body=FailReport,
    response=TaskRead,
    errors=(404, 409),
)
async def fail_task(request: web.Request) -> web.Response:
    return await _report(request, FailReport)


@route(
    "POST",
    "/api/tasks/{id}/release",
    "Agent report: hand the task back unfinished",
    body=ReleaseReport,
    response=TaskRead,
    errors=(404, 409),
)
async def release_task(request: web.Request) -> web.Response:
    return await _report(request, ReleaseReport)


async def _report(request: web.Request, body: type[AgentReport]) -> web.Response:
    """A pull agent's report: the same command as its /agents/ws frame
    (``codec.report_command``), answered with the task."""
    b = await body_as(request, body)
    tid = request.match_info["id"]
    cmd = codec.report_command(b, rid=request_id(request), task_id=tid, agent_id=b.agent_id)
    return await _task_command(request, cmd, tid)


# ----------------------------------------------------------------- people: approval and input


async def _task_reply(request: web.Request, cmd: C.Command, task_id: str) -> web.Response:
    """Run ``cmd``, answer ``{"task": Task}`` (the routes of people, and input-request)."""
    await svc(request).execute(cmd)
    return raw_json(b'{"task":' + await task_json(request, task_id) + b"}")


@route(
    "POST",
    "/api/tasks/{id}/approve",
    "Let a task that awaits approval into the queue (operator)",
    body=ApproveBody,
    response=TaskReply,
    errors=(404, 409),
)
async def approve_task(request: web.Request) -> web.Response:
    b = await body_as(request, ApproveBody)
    tid = request.match_info["id"]
    cmd = C.ApproveTask(id=request_id(request), task_id=tid, approved_by=actor(request), comment=b.comment)
    return await _task_reply(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/reject",
    "Refuse a task that awaits approval: it is cancelled (operator)",
    body=RejectBody,
    response=TaskReply,
    errors=(404, 409),
)
async def reject_task(request: web.Request) -> web.Response:
    b = await body_as(request, RejectBody)
    tid = request.match_info["id"]
    cmd = C.RejectTask(
        id=request_id(request), task_id=tid, rejected_by=actor(request), reason=b.reason or "rejected"
    )
    return await _task_reply(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/input",
    "Answer the question a task waits on (input_required; operator)",
    body=InputBody,
    response=TaskReply,
    errors=(404, 409, 422),
)
async def provide_input(request: web.Request) -> web.Response:
    b = await body_as(request, InputBody)
    tid = request.match_info["id"]
    cmd = C.ProvideInput(
        id=request_id(request),
        task_id=tid,
        answer=b.answer,
        answered_by=actor(request),
        request_id=b.request_id,
    )
    return await _task_reply(request, cmd, tid)


@route(
    "POST",
    "/api/tasks/{id}/input-request",
    "Agent report: ask a person a question (the task waits in input_required; poll it for last_input)",
    body=InputRequestBody,
    response=TaskReply,
    errors=(404, 409, 422),
)
async def request_input(request: web.Request) -> web.Response:
    b = await body_as(request, InputRequestBody)
    tid = request.match_info["id"]
    cmd = codec.report_command(b, rid=request_id(request), task_id=tid, agent_id=b.agent_id)
    return await _task_reply(request, cmd, tid)


# ----------------------------------------------------------------- events


@route(
    "GET",
    "/api/events",
    "Catch up on the event log over HTTP",
    response=EventPage,
    query={
        "since": "return events after this sequence (at most the head: 400 cursor_out_of_range)",
        "types": "comma-separated event types",
        "limit": "1..10000",
    },
    errors=(400,),
)
async def list_events(request: web.Request) -> web.Response:
    since = codec.parse_since(request.query.get("since")) or 0
    limit = q_int(request, "limit", 1000, 1, 10_000)
    types = codec.parse_types(request.query.get("types"))
    s = svc(request)
    out: list[bytes] = []
    cursor = since
    ceiling = s.published_seq
    codec.check_since(since, ceiling)
    while len(out) < limit and cursor < ceiling:
        rows = await s.store.read(cursor, min(5000, max(limit, 100)))
        if not rows:
            break
        for r in rows:
            if r.sequence > ceiling:
                break
            cursor = r.sequence
            if types is None or r.type in types:
                out.append(r.body)
                if len(out) >= limit:
                    break
        if rows[-1].sequence >= ceiling:
            break
    # stored bytes are the envelopes already: splice them, no re-encoding
    body = b'{"events":[' + b",".join(out) + b'],"next_since":' + str(cursor).encode() + b"}"
    return web.Response(body=body, content_type="application/json")
