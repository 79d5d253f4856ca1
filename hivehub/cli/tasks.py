"""``hive tasks submit|list|show|cancel|retry|watch``; ``submit --wait`` follows the task
with a progress bar fed by its events; ``watch`` (``follow.py``) shows its streamed output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import argtypes as A
from .follow import cmd_tasks_watch, question_lines, usage_line
from .render import PRIORITY_LABEL, caps, consoles, kv_table, pretty, print_json, styled, table, when
from .runner import EXIT_FAILED, EXIT_OK, UsageError, command

if TYPE_CHECKING:
    from rich.console import Console

    from ..client import HiveClient


TASK_STATUSES = [
    "pending",
    "awaiting_approval",
    "assigned",
    "running",
    "input_required",
    "completed",
    "failed",
    "cancelled",
]


def _priority(raw: str) -> int | str:
    s = raw.strip().lower()
    if s in ("low", "medium", "high", "critical"):
        return s
    if s in ("1", "2", "3", "4"):  # not isdigit(): "²" is a digit int() refuses
        return int(s)
    raise argparse.ArgumentTypeError(f"priority must be low|medium|high|critical or 1..4, not {raw!r}")


def _requirement(raw: str) -> dict[str, Any]:
    name, sep, level = raw.partition(":")
    name = name.strip()
    if not name:
        raise argparse.ArgumentTypeError(f"expected CAPABILITY[:MIN_PROFICIENCY], got {raw!r}")
    if not sep:
        return {"name": name, "min_proficiency": 0.0}
    try:
        value = float(level)
    except ValueError:
        raise argparse.ArgumentTypeError(f"min proficiency in {raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"min proficiency in {raw!r} must be between 0 and 1")
    return {"name": name, "min_proficiency": value}


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    tasks = sub.add_parser("tasks", help="submit, list, show, cancel, retry or watch tasks")
    tsub = tasks.add_subparsers(
        dest="tasks_command", required=True, metavar="{submit,list,show,cancel,retry,watch}"
    )
    p = tsub.add_parser("submit", parents=parents, help="submit a task (optionally wait for it)")
    p.add_argument("--type", required=True, help="task type")
    p.add_argument("--description", default=None)
    p.add_argument("--priority", type=_priority, default=None, help="low|medium|high|critical or 1..4")
    p.add_argument(
        "--require",
        type=_requirement,
        nargs="+",
        action="extend",
        default=[],
        metavar="CAP[:MIN]",
        help="required capability with minimum proficiency 0..1 (repeatable)",
    )
    inp = p.add_mutually_exclusive_group()
    inp.add_argument("--input", help="task input as JSON")
    inp.add_argument("--input-file", metavar="FILE", help="task input from a JSON file ('-' for stdin)")
    p.add_argument("--timeout", type=A.SECONDS, default=None, metavar="S", help="task timeout in seconds")
    p.add_argument("--max-retries", type=A.NON_NEGATIVE_INT, default=None, metavar="N")
    p.add_argument(
        "--depends-on",
        nargs="+",
        action="extend",
        default=[],
        metavar="ID",
        help="task ids that must complete first",
    )
    p.add_argument("--id", default=None, help="choose the task id (default: the hub assigns one)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="follow the task with a progress bar until it ends; exit 0 if completed, 1 if failed/cancelled",
    )
    p.add_argument(
        "--wait-timeout",
        type=A.SECONDS,
        default=None,
        metavar="S",
        help="stop waiting after S seconds (exit 1)",
    )
    p.set_defaults(func=command(cmd_tasks_submit))
    p = tsub.add_parser(
        "list",
        parents=parents,
        help="list tasks, newest first (--all: every task the log holds, paged)",
        description="List the tasks in the hub's memory, newest first; with --all (or any of --search, "
        "--owner, --since, --until, --cursor) every task the log holds, from /api/history/tasks, "
        "one page at a time.",
        epilog="examples:\n  hive tasks list --status running\n"
        "  hive tasks list --all --search 'primes' --since 2025-01-01 --limit 20\n"
        "  hive tasks list --all --cursor CURSOR   (the hint printed under the previous page)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--status", choices=TASK_STATUSES)
    p.add_argument("--type")
    p.add_argument("--agent", help="assigned to this agent")
    p.add_argument("--priority", type=_priority, help="(not with --all)")
    p.add_argument(
        "--limit",
        type=A.POSITIVE_INT,
        default=None,
        help="at most N tasks (default 100; with --all 50, at most 500)",
    )
    p.add_argument("--all", action="store_true", help="every task the log holds, not only those in memory")
    p.add_argument(
        "--search", metavar="TEXT", help="text in the id, type, description or error (implies --all)"
    )
    p.add_argument("--owner", help="submitted with this token name (anonymous without auth; implies --all)")
    p.add_argument(
        "--since", metavar="TIME", help="created at or after: ISO-8601 or unix seconds (implies --all)"
    )
    p.add_argument("--until", metavar="TIME", help="created before: ISO-8601 or unix seconds (implies --all)")
    p.add_argument("--cursor", help="the next page, as printed under the previous one (implies --all)")
    p.set_defaults(func=command(cmd_tasks_list))
    p = tsub.add_parser("show", parents=parents, help="one task in detail")
    p.add_argument("task_id", metavar="ID")
    p.set_defaults(func=command(cmd_tasks_show))
    p = tsub.add_parser("cancel", parents=parents, help="cancel a pending, assigned or running task")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=command(cmd_tasks_cancel))
    p = tsub.add_parser("retry", parents=parents, help="put a failed or cancelled task back in the queue")
    p.add_argument("task_id", metavar="ID")
    p.set_defaults(func=command(cmd_tasks_retry))
    p = tsub.add_parser(
        "watch",
        parents=parents,
        help="follow one task live: its streamed output on stdout, status, questions and usage on stderr",
    )
    p.add_argument("task_id", metavar="ID")
    p.set_defaults(func=command(cmd_tasks_watch, interrupted=EXIT_OK))


def _task_input(args: argparse.Namespace) -> Any:
    if args.input is not None:
        raw, where = args.input, "--input"
    elif args.input_file is not None:
        where = f"--input-file {args.input_file}"
        try:
            raw = sys.stdin.read() if args.input_file == "-" else Path(args.input_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {args.input_file}: {exc.strerror or exc}") from None
    else:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}") from None


async def cmd_tasks_submit(c: HiveClient, args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {
        "type": args.type,
        "description": args.description,
        "priority": args.priority,
        "required_capabilities": args.require or None,
        "input": _task_input(args),
        "timeout_seconds": args.timeout,
        "max_retries": args.max_retries,
        "depends_on": args.depends_on or None,
        "id": args.id,
    }
    task = await c.submit_task(**{k: v for k, v in spec.items() if v is not None})
    # replay the task's whole history (progress included) from just before its creation;
    # a hub without ``created_sequence`` makes the wait start from "now" (the end state
    # is still right, only earlier progress is not shown)
    since = int(task["created_sequence"]) - 1 if task.get("created_sequence") else None
    out, err = consoles()
    if not args.wait:
        if args.json:
            print_json(task)
        else:
            out.print(
                f"[green]submitted[/] task [bold]{task['id']}[/] ({styled(task['status'])}, priority {PRIORITY_LABEL.get(task['priority'], task['priority'])})"
            )
        return EXIT_OK
    if not args.json:
        err.print(f"submitted task [bold]{task['id']}[/]; waiting (Ctrl-C stops waiting, the task continues)")
    final = await _follow(c, task, since, args.wait_timeout, err)
    if final is None:
        if args.json:
            print_json(await c.get_task(task["id"]))
        return EXIT_FAILED
    if args.json:
        print_json(final)
    else:
        _print_outcome(out, final)
    return EXIT_OK if final["status"] == "completed" else EXIT_FAILED


# ------------------------------------------------------------------ the progress bar of --wait

#: ``(event type, data)`` -> the fields of the progress bar to change
BarUpdate = Callable[[str, dict[str, Any]], dict[str, Any]]


def _bar_assigned(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"state": "assigned", "description": f"agent {d.get('agent_id')}"}


def _bar_started(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": "running",
        "description": f"agent {d.get('agent_id')}, attempt {d.get('attempt_number', 1)}",
    }


def _bar_progress(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    p = float(d.get("progress") or 0.0)
    return {"state": "running", "completed": p * 100, "description": str(d.get("current_step") or "")}


def _bar_failed(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    e = d.get("error") or {}
    if d.get("retry_scheduled"):
        return {
            "state": "retrying",
            "completed": 0,
            "description": f"attempt {d.get('attempt_number')} failed: {e.get('code')}",
        }
    return {"state": "failed", "description": f"{e.get('code')}: {e.get('message')}"}


def _bar_completed(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"state": "completed", "completed": 100, "description": f"by {d.get('agent_id')}"}


def _bar_cancelled(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"state": "cancelled", "description": str(d.get("reason", ""))}


def _bar_requeued(typ: str, d: dict[str, Any]) -> dict[str, Any]:
    return {"state": "pending", "completed": 0, "description": typ.replace("task_", "")}


#: event type -> how it moves the bar (other events leave it alone)
BAR_UPDATES: dict[str, BarUpdate] = {
    "task_assigned": _bar_assigned,
    "task_started": _bar_started,
    "task_progress": _bar_progress,
    "task_failed": _bar_failed,
    "task_completed": _bar_completed,
    "task_cancelled": _bar_cancelled,
    "task_retried": _bar_requeued,
    "task_released": _bar_requeued,
}


async def _follow(
    c: HiveClient, task: dict[str, Any], since: int | None, timeout: float | None, err: Console
) -> dict[str, Any] | None:
    """Wait for the task with a progress bar fed by its events; ``None`` on timeout."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    tid = task["id"]
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[state]:<9}[/]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    bar = progress.add_task("", total=100.0, state=task["status"])

    def on_event(ev: dict[str, Any]) -> None:
        typ = str(ev.get("type", ""))
        bar_update = BAR_UPDATES.get(typ)
        if bar_update is not None:
            progress.update(bar, **bar_update(typ, ev.get("data") or {}))

    final: dict[str, Any] | None = None
    with progress:
        try:
            final = await c.wait_for_task(tid, timeout, on_event=on_event, since=since)
        except TimeoutError:
            progress.update(bar, description="still waiting; giving up")
        else:
            if final["status"] == "completed":
                progress.update(bar, state="completed", completed=100)
            else:
                progress.update(bar, state=final["status"])
    if final is None:
        err.print(f"[yellow]task {tid} did not finish within {timeout:g}s[/]")
    return final


def _print_outcome(out: Console, t: dict[str, Any]) -> None:
    status = t["status"]
    took = ""
    if t.get("started_at") and t.get("completed_at"):
        try:
            a = datetime.fromisoformat(t["started_at"].replace("Z", "+00:00"))
            b = datetime.fromisoformat(t["completed_at"].replace("Z", "+00:00"))
            took = f" in {(b - a).total_seconds() * 1000:.0f} ms"
        except ValueError:
            pass
    who = f" by {t['assigned_agent_id']}" if t.get("assigned_agent_id") else ""
    out.print(
        f"task [bold]{t['id']}[/] {styled(status)}{who if status == 'completed' else ''}{took if status == 'completed' else ''}"
    )
    if status == "completed":
        out.print("[bold cyan]result[/]")
        out.print(pretty(t.get("result")))
    elif t.get("error"):
        e = t["error"]
        out.print(f"[red]{e.get('code')}[/]: {e.get('message')}")
        if e.get("details"):
            out.print(pretty(e["details"]))


#: the options of ``tasks list`` that only the history answers
HISTORY_OPTIONS = ("search", "owner", "since", "until", "cursor")


async def cmd_tasks_list(c: HiveClient, args: argparse.Namespace) -> int:
    if args.all or any(getattr(args, k) is not None for k in HISTORY_OPTIONS):
        return await _history_list(c, args)
    tasks = [
        t
        async for t in c.list_tasks(
            status=args.status,
            type=args.type,
            agent_id=args.agent,
            priority=args.priority,
            limit=args.limit or 100,
        )
    ]
    if args.json:
        print_json(tasks)
        return EXIT_OK
    out, _ = consoles()
    t = table(f"{len(tasks)} task(s), newest first")
    t.add_column("ID", no_wrap=True, style="bold")
    t.add_column("TYPE", min_width=4)
    t.add_column("PRIO", no_wrap=True)
    t.add_column("STATUS", no_wrap=True)
    t.add_column("AGENT", no_wrap=True, min_width=8)
    t.add_column("PROG", justify="right", no_wrap=True)
    t.add_column("TRY", justify="right", no_wrap=True)
    t.add_column("CREATED", no_wrap=True)
    for task in tasks:
        t.add_row(
            task["id"],
            task.get("type", ""),
            PRIORITY_LABEL.get(task.get("priority", 0), str(task.get("priority"))),
            styled(task.get("status", "")),
            # narrow terminal: the agent's id prefix (the task id stays whole, to copy)
            (task.get("assigned_agent_id") or "-")[: None if out.width >= 120 else 8],
            f"{float(task.get('progress') or 0):.0%}",
            str(task.get("attempt", 0)),
            when(task.get("created_at"), short=True),
        )
    out.print(t)
    return EXIT_OK


async def _history_list(c: HiveClient, args: argparse.Namespace) -> int:
    """One page of ``GET /api/history/tasks``; the next page's cursor goes to stderr."""
    if args.priority is not None:
        raise UsageError("--priority is not a filter of the history (--all, --search, ...): leave one out")
    limit = args.limit or 50
    if limit > 500:
        raise UsageError("--limit is at most 500 with --all (page on with --cursor)")
    params = {
        k: v
        for k, v in {
            "status": args.status,
            "type": args.type,
            "agent_id": args.agent,
            "owner": args.owner,
            "q": args.search,
            "from": args.since,
            "to": args.until,
            "cursor": args.cursor,
            "limit": str(limit),
        }.items()
        if v is not None
    }
    page = await c.request_object("GET", "/api/history/tasks", params=params)
    tasks, nxt, total = page.get("tasks", []), page.get("next_cursor"), page.get("total")
    if args.json:
        print_json(page)
        return EXIT_OK
    out, err = consoles()
    of = f" of {total:,}" if isinstance(total, int) else ""
    if total is None and isinstance(page.get("total_exceeds"), int):
        of = f" of more than {page['total_exceeds']:,}"
    t = table(f"{len(tasks)}{of} task(s) from the log, newest first")
    t.add_column("ID", no_wrap=True, style="bold")
    t.add_column("TYPE", min_width=4)
    t.add_column("STATUS", no_wrap=True)
    t.add_column("AGENT", no_wrap=True, min_width=8)
    t.add_column("OWNER", no_wrap=True)
    t.add_column("TRY", justify="right", no_wrap=True)
    t.add_column("ERROR", no_wrap=True)
    t.add_column("CREATED", no_wrap=True)
    for task in tasks:
        t.add_row(
            task["id"],
            task.get("type", ""),
            styled(task.get("status", "")),
            (task.get("agent_id") or "-")[: None if out.width >= 120 else 8],
            task.get("owner") or "-",
            str(task.get("attempts", 0)),
            task.get("error_code") or "-",
            when(task.get("created_at"), short=True),
        )
    out.print(t)
    if nxt:
        err.print(
            f"next page: hive tasks list --all --cursor {nxt}  (with the same filters)", highlight=False
        )
    return EXIT_OK


async def cmd_tasks_show(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.get_task(args.task_id)
    attempts = (await c.task_attempts(t["id"]))["attempts"] if t.get("attempt") else []
    if args.json:
        print_json({**t, "attempts": attempts})
        return EXIT_OK
    _show_task(t)
    if attempts:
        consoles()[0].print(attempts_table(attempts))
    return EXIT_OK


def attempts_table(attempts: list[dict[str, Any]]) -> Any:
    """One row per attempt: agent, when, how long, how it ended."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="attempts", title_justify="left", header_style="bold", box=None, pad_edge=False)
    for col in ("#", "agent", "started", "took", "outcome"):
        table.add_column(col, justify="right" if col in ("#", "took") else "left")
    for a in attempts:
        took = a.get("execution_time_ms")
        outcome = styled(a.get("outcome", ""))
        if a.get("error"):
            e = a["error"]
            retry = ", retry scheduled" if a.get("retry_scheduled") else ""
            outcome += (
                f" {escape(str(e.get('code')))}: {escape(str(e.get('message')))} ({a.get('reason')}{retry})"
            )
        elif a.get("reason") and a.get("outcome") in ("cancelled", "released"):
            outcome += f" ({escape(str(a['reason']))})"
        if a.get("previous_agent_id"):
            outcome += f", moved from {escape(a['previous_agent_id'])}"
        table.add_row(
            str(a.get("attempt")),
            escape(a.get("agent_id") or "-"),
            when(a.get("started_at") or a.get("assigned_at")),
            "-" if took is None else f"{float(took):,.0f} ms",
            outcome,
        )
    return table


def _show_task(t: dict[str, Any]) -> None:
    out, _ = consoles()
    rows: list[tuple[str, Any]] = [
        ("id", t["id"]),
        ("type", t.get("type", "")),
        ("description", t.get("description") or "-"),
        ("status", styled(t.get("status", ""))),
        ("priority", PRIORITY_LABEL.get(t.get("priority", 0), str(t.get("priority")))),
        ("requires", caps(t.get("required_capabilities", []), "min_proficiency")),
        ("agent", t.get("assigned_agent_id") or "-"),
        (
            "progress",
            f"{float(t.get('progress') or 0):.0%}"
            + (f"  {t['current_step']}" if t.get("current_step") else ""),
        ),
        (
            "attempt",
            f"{t.get('attempt', 0)} ({t.get('failures', 0)} failed of max {t.get('max_retries', 0)} retries)",
        ),
        ("timeout", f"{t.get('timeout_seconds')}s"),
        ("depends on", ", ".join(t.get("depends_on") or []) or "-"),
        ("created", f"{when(t.get('created_at'))} by {t.get('created_by') or '-'}"),
        ("started", when(t.get("started_at"))),
        ("finished", when(t.get("completed_at"))),
    ]
    if t.get("next_retry_at"):
        rows.append(("next retry", when(t["next_retry_at"])))
    if t.get("cancelled_by"):
        rows.append(("cancelled by", t["cancelled_by"]))
    if t.get("blocked_reason"):
        rows.append(("waiting for", f"[yellow]{t['blocked_reason']}[/]"))
    if t.get("requires_approval"):
        rows.append(("approval", f"approved by {t['approved_by']}" if t.get("approved_by") else "required"))
    if usage_line(t.get("usage")):
        rows.append(("usage", usage_line(t.get("usage"))))
    out.print(kv_table(rows, title=f"Task {t['id']}"))
    if t.get("pending_input"):
        for line in question_lines(t["id"], t["pending_input"]):
            out.print(line)
    if t.get("output"):
        out.print("[bold cyan]output[/]")
        out.print(t["output"], markup=False)
    if t.get("input") is not None:
        out.print("[bold cyan]input[/]")
        out.print(pretty(t["input"]))
    if t.get("result") is not None:
        out.print("[bold cyan]result[/]")
        out.print(pretty(t["result"]))
    if t.get("error"):
        e = t["error"]
        out.print(f"[bold cyan]error[/] [red]{e.get('code')}[/]: {e.get('message')}")
        if e.get("details"):
            out.print(pretty(e["details"]))


async def cmd_tasks_cancel(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.cancel_task(args.task_id, args.reason)
    if args.json:
        print_json(t)
    else:
        out, _ = consoles()
        out.print(f"task [bold]{t['id']}[/] {styled(t['status'])}")
    return EXIT_OK


async def cmd_tasks_retry(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.retry_task(args.task_id)
    if args.json:
        print_json(t)
    else:
        out, _ = consoles()
        out.print(f"task [bold]{t['id']}[/] re-queued ({styled(t['status'])})")
    return EXIT_OK
