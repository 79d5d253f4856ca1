"""Operator commands of ``hive``: ``status``, ``agents``, ``tasks``, ``watch``.

They talk to a running hub through :mod:`hivehub.client` and print with rich
(tables, colours, a progress bar while waiting), or plain JSON with ``--json``.

Every command takes ``--url`` (env ``HIVE_URL``, default ``http://127.0.0.1:3001``)
and ``--token`` (env ``HIVE_TOKEN``). Exit codes::

    0  success (``tasks submit --wait``: the task completed; ``watch``: stopped by Ctrl-C)
    1  the task failed or was cancelled (``--wait``), or the hub answered 5xx
    2  usage or validation error: bad arguments, or the hub refused the request (4xx)
    3  the hub cannot be reached
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import argtypes as A

if TYPE_CHECKING:
    from rich.console import Console

    from .client import HiveClient

DEFAULT_URL = "http://127.0.0.1:3001"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PRIORITY_LABEL = {1: "low", 2: "medium", 3: "high", 4: "critical"}

STATUS_STYLE = {
    # tasks
    "pending": "yellow",
    "assigned": "blue",
    "running": "bright_blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    # agents
    "idle": "green",
    "active": "bright_blue",
    "learning": "cyan",
    "offline": "dim",
    # hub / modules
    "healthy": "green",
    "degraded": "yellow",
    "unhealthy": "bold red",
    "critical": "bold red",
    "warning": "yellow",
}
TYPE_STYLE = {
    "task_created": "cyan",
    "task_assigned": "blue",
    "task_started": "bright_blue",
    "task_progress": "dim cyan",
    "task_completed": "bold green",
    "task_failed": "bold red",
    "task_cancelled": "magenta",
    "task_retried": "yellow",
    "task_released": "yellow",
    "agent_created": "green",
    "agent_status_changed": "bright_magenta",
    "agent_updated": "magenta",
    "agent_removed": "red",
    "agent_performance_updated": "dim magenta",
    "hive_status_update": "dim",
    "system_alert": "bold yellow",
    "resource_alert": "yellow",
    "module_status_changed": "bright_yellow",
    "coordination_event": "dim blue",
    "inter_module_message": "dim",
    "learning_cycle_started": "cyan",
    "learning_cycle_completed": "bold cyan",
    "agent_learning_reset": "yellow",
    "error_occurred": "red",
    "error": "bold red",
    "snapshot": "bold",
}


class UsageError(Exception):
    """A mistake in the arguments found after parsing (exit 2)."""


# ------------------------------------------------------------------ argument types


def _priority(raw: str) -> int | str:
    s = raw.strip().lower()
    if s in ("low", "medium", "high", "critical"):
        return s
    if s.isdigit() and 1 <= int(s) <= 4:
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


# range-checked and finite (``nan`` and ``inf`` are usage errors too): hivehub/argtypes.py
_positive_float = A.SECONDS
_non_negative_int = A.NON_NEGATIVE_INT
_positive_int = A.POSITIVE_INT


# ------------------------------------------------------------------ parser


def add_commands(sub: Any) -> None:
    """Add ``status``, ``agents``, ``tasks`` and ``watch`` to the ``hive`` subparsers."""
    hub = argparse.ArgumentParser(add_help=False)
    g = hub.add_argument_group("hub connection")
    g.add_argument("--url", default=os.environ.get("HIVE_URL") or DEFAULT_URL,
                   help="hub address (env HIVE_URL, default %(default)s)")
    g.add_argument("--token", default=os.environ.get("HIVE_TOKEN") or None,
                   help="access token (env HIVE_TOKEN)")
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="print JSON instead of tables (for scripts)")
    both = [hub, js]

    p = sub.add_parser("status", parents=both, help="hive status: metrics, modules, alerts")
    p.set_defaults(func=_command(cmd_status))

    # --- agents
    agents = sub.add_parser("agents", help="list, show or remove agents, or reset what the hub learned")
    asub = agents.add_subparsers(dest="agents_command", required=True, metavar="{list,show,remove,reset-learning}")
    p = asub.add_parser("list", parents=both, help="list agents")
    p.add_argument("--status", choices=["idle", "active", "learning", "offline", "failed"])
    p.add_argument("--type", choices=["worker", "coordinator", "specialist", "learner"])
    p.add_argument("--capability", help="only agents with this capability")
    p.add_argument("--limit", type=_positive_int, help="at most N agents")
    p.set_defaults(func=_command(cmd_agents_list))
    p = asub.add_parser("show", parents=both, help="one agent in detail")
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(func=_command(cmd_agents_show))
    p = asub.add_parser("remove", parents=both, help="remove an agent (its tasks are reassigned)")
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(func=_command(cmd_agents_remove))
    p = asub.add_parser(
        "reset-learning", parents=both, help="put learned proficiencies back to the declared ones (logged)"
    )
    p.add_argument("agent_id", metavar="ID")
    p.add_argument(
        "--capability", action="append", dest="capabilities", metavar="NAME", help="only this capability (repeatable)"
    )
    p.set_defaults(func=_command(cmd_agents_reset_learning))

    # --- tasks
    tasks = sub.add_parser("tasks", help="submit, list, show, cancel or retry tasks")
    tsub = tasks.add_subparsers(dest="tasks_command", required=True, metavar="{submit,list,show,cancel,retry}")
    p = tsub.add_parser("submit", parents=both, help="submit a task (optionally wait for it)")
    p.add_argument("--type", required=True, help="task type")
    p.add_argument("--description", default=None)
    p.add_argument("--priority", type=_priority, default=None, help="low|medium|high|critical or 1..4")
    p.add_argument("--require", type=_requirement, nargs="+", action="extend", default=[], metavar="CAP[:MIN]",
                   help="required capability with minimum proficiency 0..1 (repeatable)")
    inp = p.add_mutually_exclusive_group()
    inp.add_argument("--input", help="task input as JSON")
    inp.add_argument("--input-file", metavar="FILE", help="task input from a JSON file ('-' for stdin)")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="S", help="task timeout in seconds")
    p.add_argument("--max-retries", type=_non_negative_int, default=None, metavar="N")
    p.add_argument("--depends-on", nargs="+", action="extend", default=[], metavar="ID", help="task ids that must complete first")
    p.add_argument("--id", default=None, help="choose the task id (default: the hub assigns one)")
    p.add_argument("--wait", action="store_true",
                   help="follow the task with a progress bar until it ends; exit 0 if completed, 1 if failed/cancelled")
    p.add_argument("--wait-timeout", type=_positive_float, default=None, metavar="S", help="stop waiting after S seconds (exit 1)")
    p.set_defaults(func=_command(cmd_tasks_submit))
    p = tsub.add_parser("list", parents=both, help="list tasks, newest first")
    p.add_argument("--status", choices=["pending", "assigned", "running", "completed", "failed", "cancelled"])
    p.add_argument("--type")
    p.add_argument("--agent", help="assigned to this agent")
    p.add_argument("--priority", type=_priority)
    p.add_argument("--limit", type=_positive_int, default=100, help="at most N tasks (default %(default)s)")
    p.set_defaults(func=_command(cmd_tasks_list))
    p = tsub.add_parser("show", parents=both, help="one task in detail")
    p.add_argument("task_id", metavar="ID")
    p.set_defaults(func=_command(cmd_tasks_show))
    p = tsub.add_parser("cancel", parents=both, help="cancel a pending, assigned or running task")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=_command(cmd_tasks_cancel))
    p = tsub.add_parser("retry", parents=both, help="put a failed or cancelled task back in the queue")
    p.add_argument("task_id", metavar="ID")
    p.set_defaults(func=_command(cmd_tasks_retry))

    # --- watch
    p = sub.add_parser("watch", parents=[hub], help="follow the live event stream (resumes after disconnects)")
    p.add_argument("--types", help="comma-separated event types")
    p.add_argument("--agent", help="only events about this agent")
    p.add_argument("--task", help="only events about this task")
    p.add_argument("--since", type=_non_negative_int, default=None, metavar="N",
                   help="replay the events after sequence N first (0: the whole log)")
    p.add_argument("--json", action="store_true", help="one raw JSON message per line")
    p.set_defaults(func=_command(cmd_watch, interrupted=EXIT_OK))


# ------------------------------------------------------------------ running


def _consoles() -> tuple[Console, Console]:
    from rich.console import Console

    # piped output is not cut at 80 columns (COLUMNS still wins when set)
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return (
        Console(highlight=False, soft_wrap=True, width=width),
        Console(stderr=True, highlight=False, soft_wrap=True),
    )


def _table(title: str) -> Any:
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True)


def _command(fn: Callable[[HiveClient, argparse.Namespace], Awaitable[int]], interrupted: int = EXIT_INTERRUPTED) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return execute(fn, args, interrupted)

    run.__name__ = fn.__name__
    return run


def execute(fn: Callable[[HiveClient, argparse.Namespace], Awaitable[int]], args: argparse.Namespace, interrupted: int = EXIT_INTERRUPTED) -> int:
    """Run one command: the client, error reporting and exit codes in one place."""
    from rich.markup import escape

    from .client import HiveClient, HiveError, HubUnreachable

    _, err = _consoles()

    async def main() -> int:
        async with HiveClient(args.url, args.token) as client:
            return await fn(client, args)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return interrupted
    except UsageError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except HubUnreachable as exc:
        err.print(f"[bold red]hub_unreachable[/]: {escape(exc.message)}")
        return EXIT_UNREACHABLE
    except HiveError as exc:
        status = getattr(exc, "status", None)
        err.print(f"[bold red]{escape(exc.code)}[/]: {escape(exc.message)}" + (f" [dim](HTTP {status})[/]" if status else ""))
        if exc.details:
            err.print(f"[red]  details:[/] {escape(json.dumps(exc.details, default=str))}")
        return EXIT_USAGE if status is None or 400 <= status < 500 else EXIT_FAILED
    except BrokenPipeError:
        # the reader went away (``hive watch --json | head``): not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except ValueError as exc:  # e.g. an invalid --url
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ formatting helpers


def _styled(value: Any) -> str:
    from rich.markup import escape

    s = str(value)
    style = STATUS_STYLE.get(s)
    return f"[{style}]{escape(s)}[/]" if style else escape(s)


def _when(ts: Any, short: bool = False) -> str:
    if not ts:
        return "-"
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00")).astimezone()
    except ValueError:
        return str(ts)
    if short and dt.date() == datetime.now().astimezone().date():
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m}m {sec}s" if h else (f"{m}m {sec}s" if m else f"{seconds:.1f}s")


def _caps(items: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{c['name']}:{c.get(key, 0):g}" for c in items) or "-"


def _kv_table(rows: list[tuple[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table

    t = Table(show_header=False, box=None, title=title, title_justify="left", title_style="bold", pad_edge=False)
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, v if isinstance(v, str) or hasattr(v, "__rich_console__") else str(v))
    return t


def _pretty(value: Any) -> Any:
    from rich.json import JSON

    return JSON(json.dumps(value, default=str))


# ------------------------------------------------------------------ status


async def cmd_status(c: HiveClient, args: argparse.Namespace) -> int:
    st = await c.status()
    alerts = await c.alerts()
    if args.json:
        _print_json({**st, "alerts": alerts})
        return EXIT_OK
    from rich.table import Table

    out, _ = _consoles()
    m = st.get("metrics", {})
    out.print(
        f"[bold]Hive Hub[/] {c.url}  {_styled(st.get('status', '?'))}  "
        f"sequence [bold]{st.get('published_sequence', st.get('sequence'))}[/]  "
        f"uptime {_duration(float(st.get('uptime_seconds', 0)))}"
    )
    agents = _kv_table(
        [
            ("total", str(m.get("total_agents", 0))),
            ("online", str(m.get("online_agents", 0))),
            ("active", f"[bright_blue]{m.get('active_agents', 0)}[/]"),
            ("idle", f"[green]{m.get('idle_agents', 0)}[/]"),
            ("offline", f"[dim]{m.get('offline_agents', 0)}[/]"),
            ("connected", str(st.get("connected_agents", 0))),
        ],
        title="Agents",
    )
    tasks = _kv_table(
        [
            ("total", str(m.get("total_tasks", 0))),
            ("pending", f"[yellow]{m.get('pending_tasks', 0)}[/]"),
            ("assigned", f"[blue]{m.get('assigned_tasks', 0)}[/]"),
            ("running", f"[bright_blue]{m.get('running_tasks', 0)}[/]"),
            ("completed", f"[green]{m.get('completed_tasks', 0)}[/] ({m.get('completed_tasks_today', 0)} today)"),
            ("failed", f"[red]{m.get('failed_tasks', 0)}[/] ({m.get('failed_tasks_today', 0)} today)"),
            ("cancelled", f"[magenta]{m.get('cancelled_tasks', 0)}[/]"),
            ("system load", f"{float(m.get('system_load', 0)):.2f}"),
        ],
        title="Tasks",
    )
    grid = Table.grid(padding=(0, 6))
    grid.add_row(agents, tasks)
    out.print(grid)
    modules = st.get("modules") or {}
    if modules:
        t = _table("Modules")
        t.add_column("module", no_wrap=True)
        t.add_column("status", no_wrap=True)
        t.add_column("reason")
        for name, info in modules.items():
            t.add_row(name, _styled(info.get("status", "?")), str(info.get("reason", "")))
        out.print(t)
    if alerts:
        t = _table("Active alerts")
        for col in ("level", "title", "message"):
            t.add_column(col)
        for a in alerts:
            t.add_row(_styled(a.get("level", "")), str(a.get("title", a.get("alert_key", ""))), str(a.get("message", "")))
        out.print(t)
    out.print(f"[dim]stream subscribers: {st.get('subscribers', 0)}[/]")
    return EXIT_OK


# ------------------------------------------------------------------ agents


async def cmd_agents_list(c: HiveClient, args: argparse.Namespace) -> int:
    agents = [a async for a in c.list_agents(status=args.status, type=args.type, capability=args.capability, limit=args.limit)]
    if args.json:
        _print_json(agents)
        return EXIT_OK
    out, _ = _consoles()
    t = _table(f"{len(agents)} agent(s)")
    t.add_column("ID", no_wrap=True, style="bold")
    t.add_column("NAME", min_width=4)
    t.add_column("TYPE", min_width=6)
    t.add_column("STATUS", no_wrap=True)
    t.add_column("CAPABILITIES", min_width=8)
    t.add_column("LOAD", justify="right", no_wrap=True)
    t.add_column("DONE", justify="right")
    t.add_column("FAILED", justify="right")
    t.add_column("SUCCESS", justify="right")
    for a in agents:
        met = a.get("metrics") or {}
        rate = met.get("success_rate")
        t.add_row(
            a["id"],
            a.get("name", ""),
            a.get("type", ""),
            _styled(a.get("status", "")),
            _caps(a.get("capabilities", []), "proficiency"),
            f"{len(a.get('current_tasks', []))}/{a.get('max_concurrent_tasks', 1)}",
            str(met.get("tasks_completed", 0)),
            str(met.get("tasks_failed", 0)),
            "-" if rate is None else f"{rate:.0%}",
        )
    out.print(t)
    return EXIT_OK


async def cmd_agents_show(c: HiveClient, args: argparse.Namespace) -> int:
    a = await c.get_agent(args.agent_id)
    if args.json:
        _print_json(a)
        return EXIT_OK

    out, _ = _consoles()
    met = a.get("metrics") or {}
    rate = met.get("success_rate")
    avg = met.get("average_response_time_ms")
    out.print(
        _kv_table(
            [
                ("id", a["id"]),
                ("name", a.get("name", "")),
                ("type", a.get("type", "")),
                ("status", _styled(a.get("status", ""))),
                ("load", f"{len(a.get('current_tasks', []))}/{a.get('max_concurrent_tasks', 1)}"),
                ("current tasks", ", ".join(a.get("current_tasks", [])) or "-"),
                ("completed", str(met.get("tasks_completed", 0))),
                ("failed", str(met.get("tasks_failed", 0))),
                ("success rate", "-" if rate is None else f"{rate:.1%}"),
                ("avg response", "-" if avg is None else f"{avg:.0f} ms"),
                ("created", _when(a.get("created_at"))),
                ("last seen", _when(a.get("last_seen_at"))),
            ],
            title=f"Agent {a.get('name', a['id'])}",
        )
    )
    caps = a.get("capabilities") or []
    if caps:
        t = _table("Capabilities")
        t.add_column("name")
        t.add_column("proficiency", justify="right")
        t.add_column("declared", justify="right")
        t.add_column("learning rate", justify="right")
        for cap in caps:
            declared = cap.get("declared_proficiency")
            t.add_row(
                cap["name"],
                f"{cap.get('proficiency', 0):.3f}",
                "-" if declared is None else f"{declared:.3f}",
                f"{cap.get('learning_rate', 0):.2f}",
            )
        out.print(t)
    if a.get("metadata"):
        out.print("[bold cyan]metadata[/]")
        out.print(_pretty(a["metadata"]))
    return EXIT_OK


async def cmd_agents_remove(c: HiveClient, args: argparse.Namespace) -> int:
    removed = await c.remove_agent(args.agent_id)
    if args.json:
        _print_json(removed)
        return EXIT_OK
    out, _ = _consoles()
    summary = removed.get("cleanup_summary") or {}
    out.print(
        f"[green]removed[/] agent [bold]{args.agent_id}[/]: "
        f"{summary.get('tasks_reassigned', 0)} task(s) reassigned, {summary.get('tasks_failed', 0)} failed"
    )
    return EXIT_OK


async def cmd_agents_reset_learning(c: HiveClient, args: argparse.Namespace) -> int:
    a = await c.reset_learning(args.agent_id, args.capabilities)
    if args.json:
        _print_json(a)
        return EXIT_OK
    out, _ = _consoles()
    names = set(args.capabilities or [cap["name"] for cap in a.get("capabilities") or []])
    reset = ", ".join(
        f"{cap['name']}={cap.get('proficiency', 0):.3f}" for cap in a.get("capabilities") or [] if cap["name"] in names
    )
    out.print(f"[green]reset[/] learning of agent [bold]{args.agent_id}[/]: {reset or 'no capabilities'}")
    return EXIT_OK


# ------------------------------------------------------------------ tasks


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
    out, err = _consoles()
    if not args.wait:
        if args.json:
            _print_json(task)
        else:
            out.print(f"[green]submitted[/] task [bold]{task['id']}[/] ({_styled(task['status'])}, priority {PRIORITY_LABEL.get(task['priority'], task['priority'])})")
        return EXIT_OK
    if not args.json:
        err.print(f"submitted task [bold]{task['id']}[/]; waiting (Ctrl-C stops waiting, the task continues)")
    final = await _follow(c, task, since, args.wait_timeout, err)
    if final is None:
        if args.json:
            _print_json(await c.get_task(task["id"]))
        return EXIT_FAILED
    if args.json:
        _print_json(final)
    else:
        _print_outcome(out, final)
    return EXIT_OK if final["status"] == "completed" else EXIT_FAILED


async def _follow(c: HiveClient, task: dict[str, Any], since: int | None, timeout: float | None, err: Console) -> dict[str, Any] | None:
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
        typ, d = ev.get("type"), ev.get("data") or {}
        if typ == "task_assigned":
            progress.update(bar, state="assigned", description=f"agent {d.get('agent_id')}")
        elif typ == "task_started":
            progress.update(bar, state="running", description=f"agent {d.get('agent_id')}, attempt {d.get('attempt_number', 1)}")
        elif typ == "task_progress":
            p = float(d.get("progress") or 0.0)
            progress.update(bar, state="running", completed=p * 100, description=str(d.get("current_step") or ""))
        elif typ == "task_failed":
            e = d.get("error") or {}
            if d.get("retry_scheduled"):
                progress.update(bar, state="retrying", completed=0, description=f"attempt {d.get('attempt_number')} failed: {e.get('code')}")
            else:
                progress.update(bar, state="failed", description=f"{e.get('code')}: {e.get('message')}")
        elif typ == "task_completed":
            progress.update(bar, state="completed", completed=100, description=f"by {d.get('agent_id')}")
        elif typ == "task_cancelled":
            progress.update(bar, state="cancelled", description=str(d.get("reason", "")))
        elif typ in ("task_retried", "task_released"):
            progress.update(bar, state="pending", completed=0, description=typ.replace("task_", ""))

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
    out.print(f"task [bold]{t['id']}[/] {_styled(status)}{who if status == 'completed' else ''}{took if status == 'completed' else ''}")
    if status == "completed":
        out.print("[bold cyan]result[/]")
        out.print(_pretty(t.get("result")))
    elif t.get("error"):
        e = t["error"]
        out.print(f"[red]{e.get('code')}[/]: {e.get('message')}")
        if e.get("details"):
            out.print(_pretty(e["details"]))


async def cmd_tasks_list(c: HiveClient, args: argparse.Namespace) -> int:
    tasks = [t async for t in c.list_tasks(status=args.status, type=args.type, agent_id=args.agent, priority=args.priority, limit=args.limit)]
    if args.json:
        _print_json(tasks)
        return EXIT_OK
    out, _ = _consoles()
    t = _table(f"{len(tasks)} task(s), newest first")
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
            _styled(task.get("status", "")),
            # narrow terminal: the agent's id prefix (the task id stays whole, to copy)
            (task.get("assigned_agent_id") or "-")[: None if out.width >= 120 else 8],
            f"{float(task.get('progress') or 0):.0%}",
            str(task.get("attempt", 0)),
            _when(task.get("created_at"), short=True),
        )
    out.print(t)
    return EXIT_OK


async def cmd_tasks_show(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.get_task(args.task_id)
    if args.json:
        _print_json(t)
        return EXIT_OK
    _show_task(t)
    return EXIT_OK


def _show_task(t: dict[str, Any]) -> None:
    out, _ = _consoles()
    rows: list[tuple[str, Any]] = [
        ("id", t["id"]),
        ("type", t.get("type", "")),
        ("description", t.get("description") or "-"),
        ("status", _styled(t.get("status", ""))),
        ("priority", PRIORITY_LABEL.get(t.get("priority", 0), str(t.get("priority")))),
        ("requires", _caps(t.get("required_capabilities", []), "min_proficiency")),
        ("agent", t.get("assigned_agent_id") or "-"),
        ("progress", f"{float(t.get('progress') or 0):.0%}" + (f"  {t['current_step']}" if t.get("current_step") else "")),
        ("attempt", f"{t.get('attempt', 0)} ({t.get('failures', 0)} failed of max {t.get('max_retries', 0)} retries)"),
        ("timeout", f"{t.get('timeout_seconds')}s"),
        ("depends on", ", ".join(t.get("depends_on") or []) or "-"),
        ("created", f"{_when(t.get('created_at'))} by {t.get('created_by') or '-'}"),
        ("started", _when(t.get("started_at"))),
        ("finished", _when(t.get("completed_at"))),
    ]
    if t.get("next_retry_at"):
        rows.append(("next retry", _when(t["next_retry_at"])))
    if t.get("cancelled_by"):
        rows.append(("cancelled by", t["cancelled_by"]))
    out.print(_kv_table(rows, title=f"Task {t['id']}"))
    if t.get("input") is not None:
        out.print("[bold cyan]input[/]")
        out.print(_pretty(t["input"]))
    if t.get("result") is not None:
        out.print("[bold cyan]result[/]")
        out.print(_pretty(t["result"]))
    if t.get("error"):
        e = t["error"]
        out.print(f"[bold cyan]error[/] [red]{e.get('code')}[/]: {e.get('message')}")
        if e.get("details"):
            out.print(_pretty(e["details"]))


async def cmd_tasks_cancel(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.cancel_task(args.task_id, args.reason)
    if args.json:
        _print_json(t)
    else:
        out, _ = _consoles()
        out.print(f"task [bold]{t['id']}[/] {_styled(t['status'])}")
    return EXIT_OK


async def cmd_tasks_retry(c: HiveClient, args: argparse.Namespace) -> int:
    t = await c.retry_task(args.task_id)
    if args.json:
        _print_json(t)
    else:
        out, _ = _consoles()
        out.print(f"task [bold]{t['id']}[/] re-queued ({_styled(t['status'])})")
    return EXIT_OK


# ------------------------------------------------------------------ watch


def _sid(v: Any) -> str:
    return str(v) if v else "-"


def summarize(ev: dict[str, Any]) -> str:
    """One human line for an event's data."""
    typ, d = ev.get("type", ""), ev.get("data") or {}
    if typ == "task_created":
        t = d.get("task") or {}
        return f"task {t.get('id')} type={t.get('type')} priority={PRIORITY_LABEL.get(t.get('priority', 0), t.get('priority'))} matching_agents={d.get('matching_agents')}"
    if typ == "task_assigned":
        extra = f", from {d['previous_agent_id']}" if d.get("previous_agent_id") else ""
        return f"task {d.get('task_id')} -> agent {d.get('agent_id')} ({d.get('assignment_reason')}, score {float(d.get('score') or 0):.2f}, attempt {d.get('attempt_number', 1)}{extra})"
    if typ == "task_started":
        return f"task {d.get('task_id')} on agent {d.get('agent_id')} (attempt {d.get('attempt_number')})"
    if typ == "task_progress":
        step = f" {d['current_step']}" if d.get("current_step") else ""
        return f"task {d.get('task_id')} {float(d.get('progress') or 0):.0%}{step}"
    if typ == "task_completed":
        return f"task {d.get('task_id')} by agent {d.get('agent_id')} in {float(d.get('execution_time_ms') or 0):.0f} ms"
    if typ == "task_failed":
        e = d.get("error") or {}
        then = "retry scheduled" if d.get("retry_scheduled") else "final"
        return f"task {d.get('task_id')} on {_sid(d.get('agent_id'))}: {e.get('code')}: {e.get('message')} ({d.get('failure_kind')}, {then})"
    if typ == "task_cancelled":
        return f"task {d.get('task_id')} ({d.get('reason')}, by {d.get('cancelled_by')})"
    if typ == "task_retried":
        return f"task {d.get('task_id')} re-queued from {d.get('previous_status')} by {d.get('requested_by')}"
    if typ == "task_released":
        return f"task {d.get('task_id')} released by agent {d.get('agent_id')} ({d.get('reason')})"
    if typ == "agent_created":
        a = d.get("agent") or {}
        return f"agent {a.get('id')} {a.get('name')} ({a.get('type')}) {_caps(a.get('capabilities', []), 'proficiency')}"
    if typ == "agent_status_changed":
        return f"agent {d.get('agent_id')} {d.get('old_status')} -> {d.get('new_status')} ({d.get('reason')})"
    if typ == "agent_removed":
        s = d.get("cleanup_summary") or {}
        return f"agent {d.get('agent_id')} ({d.get('reason')}; {s.get('tasks_reassigned', 0)} task(s) reassigned)"
    if typ == "agent_performance_updated":
        m = d.get("metrics") or {}
        return f"agent {d.get('agent_id')} done={m.get('tasks_completed')} success={float(m.get('success_rate') or 0):.0%} avg={float(m.get('average_response_time_ms') or 0):.0f}ms"
    if typ == "hive_status_update":
        m = d.get("metrics") or {}
        return f"{d.get('status')} agents {m.get('active_agents')}/{m.get('total_agents')} active, {m.get('pending_tasks')} pending, {m.get('running_tasks', 0)} running, load {float(m.get('system_load') or 0):.2f}"
    if typ == "system_alert":
        return f"{d.get('level')} [{d.get('state', 'active')}] {d.get('title')}: {d.get('message')}"
    if typ == "resource_alert":
        return f"{d.get('resource')} {float(d.get('usage_percent') or 0):.1f}% (threshold {float(d.get('threshold_percent') or 0):.0f}%, {d.get('trend')}) [{d.get('state', 'active')}]"
    if typ == "module_status_changed":
        return f"{d.get('module')} {d.get('old_status')} -> {d.get('new_status')} ({d.get('reason')})"
    if typ == "error":
        return f"{d.get('code')}: {d.get('message')}"
    if typ == "snapshot":
        return f"state at sequence {d.get('sequence')}: {len(d.get('agents') or [])} agent(s), {len(d.get('tasks') or [])} task(s)"
    rest = {k: v for k, v in d.items() if k not in ("timestamp", "caused_by")}
    text = json.dumps(rest, default=str, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


def _event_style(ev: dict[str, Any]) -> str:
    typ = str(ev.get("type", ""))
    d = ev.get("data") or {}
    if typ == "system_alert" and d.get("level") in ("error", "critical"):
        return "bold red"
    if typ in ("system_alert", "resource_alert") and d.get("state") == "cleared":
        return "green"
    return TYPE_STYLE.get(typ, "white")


def format_event(ev: dict[str, Any]) -> Any:
    from rich.text import Text

    seq = ev.get("sequence")
    ts = ev.get("timestamp") or ""
    clock = str(ts)[11:23] if len(str(ts)) >= 23 else str(ts)
    line = Text()
    line.append(f"{seq if seq else '-':>7} ", style="dim")
    line.append(f"{clock:<12} ", style="dim")
    style = _event_style(ev)
    line.append(f"{ev.get('type', '?'):<26}", style=style)
    line.append(" " + summarize(ev), style=style if ev.get("type") in ("task_failed", "error") else None)
    return line


async def cmd_watch(c: HiveClient, args: argparse.Namespace) -> int:
    import msgspec
    from rich.markup import escape

    out, err = _consoles()
    state = {"outage": False, "first": True}

    def note(kind: str, info: dict[str, Any]) -> None:
        if kind == "connected":
            if state["first"]:
                if not args.json:
                    since = info.get("since")
                    err.print(f"[dim]watching {escape(c.ws_url)}" + (f" from sequence {since}" if since is not None else "") + " (Ctrl-C to stop)[/]")
            elif state["outage"]:
                err.print(f"[green]reconnected[/] [dim](resuming after sequence {info.get('since')})[/]")
            state["first"] = False
            state["outage"] = False
        elif kind == "disconnected" and not state["outage"]:
            state["outage"] = True
            why = info.get("error") or f"closed {info.get('code')} {info.get('reason') or ''}".strip()
            err.print(f"[yellow]disconnected[/] [dim]({escape(str(why))}); reconnecting...[/]")

    stream = c.stream(types=args.types, agent_id=args.agent, task_id=args.task, since=args.since, on_state=note)
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(stream.close()))
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
        pass
    enc = msgspec.json.Encoder()
    async with stream:
        async for ev in stream:
            if args.json:
                sys.stdout.buffer.write(enc.encode(ev) + b"\n")
                sys.stdout.flush()
            else:
                out.print(format_event(ev))
    return EXIT_OK


__all__ = ["add_commands", "execute", "format_event", "summarize"]
