"""The MCP tools: each one's JSON schema, description and call to the hub's API.

Every tool is one call (or a few) through ``HiveClient`` with the caller's own
token, so the hub's roles, limits and errors apply exactly as for any client: a
viewer token can read, and a write tool answers the hub's ``forbidden``. Arguments
are checked against the tool's own input schema (the one ``tools/list`` shows)
before anything reaches the hub, so the schema is the one contract of a tool.

Failures are :class:`ToolFailure` (``code``, ``message``, ``details``), built from
the hub's error table (``HiveError.code``: ``task_not_found``, ``forbidden``,
``invalid_transition``, ...), plus the codes only this adapter has:

==================  ===============================================
``invalid_input``   arguments that do not match the tool's schema
``unknown_tool``    a tool name this server does not have
``hub_unreachable`` the hub did not answer (``HubUnreachable``)
==================  ===============================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..client import TERMINAL_STATUSES, HiveClient, HiveError
from ..core.model import AgentStatus, AgentType, TaskStatus

#: ``progress(value, total, message)``: an MCP progress notification (a no-op when
#: the caller asked for none)
Progress = Callable[[float, float | None, str | None], Awaitable[None]]
Run = Callable[[HiveClient, dict[str, Any], Progress], Awaitable[dict[str, Any]]]

WAIT_DEFAULT_S = 30.0
WAIT_MAX_S = 300.0
PAGE_MAX = 1000


class ToolFailure(Exception):
    """A tool call that failed; ``code`` is the hub's (or this adapter's) stable code."""

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = dict(details or {})

    def body(self) -> dict[str, Any]:
        """The error as the hub's REST error body: ``{"error": {code, message, details}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    @classmethod
    def from_hive(cls, exc: HiveError, tool: Tool) -> ToolFailure:
        details = dict(exc.details)
        message = exc.message
        if exc.code == "forbidden" and tool.write:
            details.setdefault("tool", tool.name)
            details.setdefault("needs_role", "operator")
            message = f"{message} ({tool.name} changes the hive: it needs a token with the operator role)"
        status = getattr(exc, "status", None)
        if status is not None:
            details.setdefault("http_status", status)
        return cls(exc.code, message, details)


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    schema: dict[str, Any]
    run: Run
    #: changes the hive (needs the operator role)
    write: bool = False
    #: calling it twice has the effect of once
    idempotent: bool = False
    destructive: bool = False


# ----------------------------------------------------------------- schema pieces

_ID = {"type": "string", "minLength": 1, "maxLength": 200, "description": "the task id"}
_TASK_STATUS = [s.value for s in TaskStatus]
_PRIORITY: dict[str, Any] = {
    "description": "1..4 or low|medium|high|critical (default medium)",
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 4},
        {"type": "string", "enum": ["low", "medium", "high", "critical"]},
    ],
}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "description": "page size (default 50)"}
_CURSOR = {"type": "string", "minLength": 1, "description": "next_cursor of the previous page"}


def _object(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _task_id(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object({"task_id": _ID, **(extra or {})}, ["task_id"])


# ----------------------------------------------------------------- the calls


async def _submit(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    caps = a.pop("required_capabilities", None)
    if caps is not None:
        a["required_capabilities"] = caps  # {"name": min_proficiency} or the wire list
    task = await c.submit_task(a)
    return {"task_id": task["id"], "status": task["status"], "task": task}


async def _get(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": await c.get_task(a["task_id"])}


async def _wait(c: HiveClient, a: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Follow the task's events (``HiveClient.wait_for_task``) until it ends or the bound.

    The stream replays the task's events from its creation, so a waiter that comes
    late (or again, after a "still running") is told every step so far, then the live
    ones. MCP requires each progress value to grow; a task's own progress falls back
    to 0 on a retry, so the value sent counts the task's events and the message
    carries the task's status and fraction."""
    task_id = a["task_id"]
    timeout = float(a.get("timeout_s", WAIT_DEFAULT_S))
    seen = 0
    first = await c.get_task(task_id)
    if first["status"] in TERMINAL_STATUSES:
        return _ended(first)
    since = max(0, int(first.get("created_sequence") or 1) - 1)

    async def on_event(ev: dict[str, Any]) -> None:
        nonlocal seen
        typ, data = str(ev.get("type", "")), ev.get("data") or {}
        if typ.startswith("task_"):
            seen += 1
            await progress(float(seen), None, _progress_message(typ, data))

    try:
        task = await c.wait_for_task(task_id, timeout, on_event=on_event, since=since)
    except TimeoutError:
        task = await c.get_task(task_id)
        if task["status"] in TERMINAL_STATUSES:  # it ended just at the bound
            return _ended(task)
        return {
            "done": False,
            "status": task["status"],
            "message": f"task {task_id} is still {task['status']} after {timeout:g} s; "
            "call wait_for_task again to keep waiting, or get_task to look at it",
            "task": task,
        }
    return _ended(task)


def _progress_message(typ: str, data: dict[str, Any]) -> str:
    what = typ.removeprefix("task_")
    if typ == "task_progress":
        pct = float(data.get("progress") or 0.0) * 100
        step = data.get("current_step")
        return f"progress {pct:.0f}%" + (f": {step}" if step else "")
    if typ == "task_failed" and data.get("retry_scheduled"):
        return "failed, retry scheduled"
    if typ == "task_input_required":
        return f"waiting for input: {data.get('question', '')}"
    return what.replace("_", " ")


def _ended(task: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"done": True, "status": task["status"], "task": task}
    if task["status"] == "completed":
        out["result"] = task.get("result")
    elif task.get("error") is not None:
        out["error"] = task.get("error")
    return out


async def _cancel(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": _inner(await c.cancel_task(a["task_id"], a.get("reason")))}


async def _retry(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": _inner(await c.retry_task(a["task_id"]))}


async def _page(
    c: HiveClient, path: str, key: str, filters: tuple[str, ...], a: dict[str, Any]
) -> dict[str, Any]:
    """One page of a list route: the tool's filters as the query, then ``limit`` and ``cursor``."""
    params = {k: str(v) for k, v in a.items() if k in filters}
    params["limit"] = str(a.get("limit", 50))
    if a.get("cursor"):
        params["cursor"] = a["cursor"]
    page = await c.request_object("GET", path, params=params)
    return {key: page.get(key, []), "next_cursor": page.get("next_cursor")}


async def _list_tasks(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return await _page(c, "/api/tasks", "tasks", ("status", "type", "agent_id", "priority", "order"), a)


async def _list_agents(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return await _page(c, "/api/agents", "agents", ("status", "type", "capability"), a)


async def _status(c: HiveClient, _a: dict[str, Any], _: Progress) -> dict[str, Any]:
    status, alerts = await asyncio.gather(c.status(), c.alerts())
    return {"status": status, "alerts": alerts}


async def _approve(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": await c.approve_task(a["task_id"], a.get("comment"))}


async def _reject(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": await c.reject_task(a["task_id"], a.get("reason"))}


async def _answer(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    return {"task": await c.answer_task(a["task_id"], a["answer"], a.get("request_id"))}


async def _inbox(c: HiveClient, a: dict[str, Any], _: Progress) -> dict[str, Any]:
    tasks = await c.inbox(limit=int(a.get("limit", 50)))
    return {
        "tasks": [
            {
                "task_id": t["id"],
                "waits_for": "input" if t.get("status") == "input_required" else "approval",
                "type": t.get("type"),
                "description": t.get("description"),
                "question": t.get("pending_input"),
                "created_by": t.get("created_by"),
                "task": t,
            }
            for t in tasks
        ]
    }


def _inner(reply: dict[str, Any]) -> Any:
    inner = reply.get("task")
    return inner if isinstance(inner, dict) else reply


# ----------------------------------------------------------------- the table

_CAPS: dict[str, Any] = {
    "description": 'what an agent must offer: {"nlp": 0.7} (capability: minimum proficiency 0..1) '
    'or [{"name": "nlp", "min_proficiency": 0.7}]',
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "min_proficiency": {"type": "number", "minimum": 0, "maximum": 1},
                },
                "required": ["name"],
            },
        },
    ],
}

TOOLS: tuple[Tool, ...] = (
    Tool(
        "submit_task",
        "Submit a task",
        "Submit one task to the hive and return its id at once (the task runs on an agent "
        "chosen by capability; follow it with wait_for_task or get_task). Only `type` is needed: "
        "the hub routes it to an agent whose capabilities meet `required_capabilities`, retries "
        "it up to `max_retries` times on failure and fails it after `timeout_seconds` per attempt.",
        _object(
            {
                "type": {"type": "string", "minLength": 1, "maxLength": 200, "description": "task type"},
                "description": {"type": "string", "maxLength": 10000},
                "input": {"description": "the task's input, any JSON the agents of this type expect"},
                "required_capabilities": _CAPS,
                "priority": _PRIORITY,
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "description": "per attempt"},
                "max_retries": {"type": "integer", "minimum": 0, "maximum": 100},
                "depends_on": {
                    "type": "array",
                    "items": _ID,
                    "description": "task ids that must complete first",
                },
                "requires_approval": {"type": "boolean", "description": "wait for an operator's approval"},
                "metadata": {"type": "object"},
                "id": {**_ID, "description": "choose the task id (default: the hub picks one)"},
            },
            ["type"],
        ),
        _submit,
        write=True,
    ),
    Tool(
        "get_task",
        "Get a task",
        "Read one task now: its status (pending, assigned, running, awaiting_approval, "
        "input_required, completed, failed, cancelled), progress, result or error, attempts.",
        _task_id(),
        _get,
        idempotent=True,
    ),
    Tool(
        "wait_for_task",
        "Wait for a task",
        "Wait until a task ends (completed, failed for good, or cancelled) and return its result "
        "or error, sending MCP progress notifications as its events arrive. The wait is bounded "
        f"by `timeout_s` (default {WAIT_DEFAULT_S:g}, at most {WAIT_MAX_S:g}): at the bound it answers "
        '`done: false` with the task as it is ("still running"); call it again to keep waiting.',
        _task_id(
            {
                "timeout_s": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": WAIT_MAX_S,
                    "description": f"seconds to wait at most (default {WAIT_DEFAULT_S:g})",
                }
            }
        ),
        _wait,
        idempotent=True,
    ),
    Tool(
        "cancel_task",
        "Cancel a task",
        "Cancel a task that has not ended; its agent is told to stop. Fails with "
        "invalid_transition if the task already ended.",
        _task_id({"reason": {"type": "string", "minLength": 1, "maxLength": 200}}),
        _cancel,
        write=True,
        destructive=True,
    ),
    Tool(
        "retry_task",
        "Retry a task",
        "Run a failed or cancelled task again (a new attempt, queued now).",
        _task_id(),
        _retry,
        write=True,
    ),
    Tool(
        "list_tasks",
        "List tasks",
        "List tasks in the hub's memory (every unfinished task and the newest finished ones), "
        "newest first, one page at a time: pass `next_cursor` back as `cursor` for the next page.",
        _object(
            {
                "status": {"type": "string", "enum": _TASK_STATUS},
                "type": {"type": "string", "minLength": 1},
                "agent_id": {"type": "string", "minLength": 1, "description": "assigned to this agent"},
                "priority": _PRIORITY,
                "order": {"type": "string", "enum": ["desc", "asc"]},
                "limit": _LIMIT,
                "cursor": _CURSOR,
            }
        ),
        _list_tasks,
        idempotent=True,
    ),
    Tool(
        "list_agents",
        "List agents",
        "List the hive's agents with their status, capabilities (declared and learned "
        "proficiency) and current load, one page at a time.",
        _object(
            {
                "status": {"type": "string", "enum": [s.value for s in AgentStatus]},
                "type": {"type": "string", "enum": [t.value for t in AgentType]},
                "capability": {"type": "string", "minLength": 1, "description": "offers this capability"},
                "limit": _LIMIT,
                "cursor": _CURSOR,
            }
        ),
        _list_agents,
        idempotent=True,
    ),
    Tool(
        "hive_status",
        "Hive status",
        "The hive's health at a glance: agents online, tasks by status, throughput, "
        "module states and the active alerts.",
        _object({}),
        _status,
        idempotent=True,
    ),
    Tool(
        "approve_task",
        "Approve a task",
        "Let a task waiting in awaiting_approval run (see inbox).",
        _task_id({"comment": {"type": "string", "maxLength": 1000}}),
        _approve,
        write=True,
    ),
    Tool(
        "reject_task",
        "Reject a task",
        "Refuse a task waiting in awaiting_approval: it is cancelled.",
        _task_id({"reason": {"type": "string", "minLength": 1, "maxLength": 200}}),
        _reject,
        write=True,
        destructive=True,
    ),
    Tool(
        "answer_task",
        "Answer a task's question",
        "Answer the question of a task in input_required (see inbox: the question and, if "
        "it has them, the choices the answer must be one of); the task then runs again.",
        _task_id(
            {
                "answer": {"type": "string", "maxLength": 10000},
                "request_id": {"type": "string", "minLength": 1, "description": "the question answered"},
            }
        )
        | {"required": ["task_id", "answer"]},
        _answer,
        write=True,
    ),
    Tool(
        "inbox",
        "Inbox",
        "The tasks waiting for a person: those awaiting approval (approve_task, reject_task) "
        "and those asking a question (answer_task), with the question and its choices.",
        _object({"limit": {**_LIMIT, "description": "at most N tasks of each kind (default 50)"}}),
        _inbox,
        idempotent=True,
    ),
)

BY_NAME: dict[str, Tool] = {t.name: t for t in TOOLS}


def check_arguments(tool: Tool, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments, checked against the tool's input schema.

    Raises:
        ToolFailure: ``invalid_input``, naming the argument at fault."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415 - loaded with the server only

    args = dict(arguments or {})
    errors = sorted(Draft202012Validator(tool.schema).iter_errors(args), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(arguments)"
        raise ToolFailure(
            "invalid_input",
            f"{tool.name}: {where}: {e.message}",
            {"tool": tool.name, "argument": where, "errors": len(errors)},
        )
    return args


async def call(client: HiveClient, name: str, arguments: Mapping[str, Any] | None, progress: Progress) -> Any:
    """Run tool ``name`` with ``client``; returns its structured result.

    Raises:
        ToolFailure: every failure, with its stable code."""
    tool = BY_NAME.get(name)
    if tool is None:
        raise ToolFailure(
            "unknown_tool", f"there is no tool {name!r}", {"tool": name, "tools": sorted(BY_NAME)}
        )
    args = check_arguments(tool, arguments)
    try:
        return await tool.run(client, args, progress)
    except HiveError as exc:  # HubUnreachable included: code hub_unreachable
        raise ToolFailure.from_hive(exc, tool) from exc
