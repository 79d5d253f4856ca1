"""``hive approve|reject|answer|inbox``: the person in the loop.

A task submitted with ``requires_approval`` waits in ``awaiting_approval`` until
``hive approve ID`` (or ``hive reject ID``); a running handler that asks a
question (``ctx.ask``) puts its task in ``input_required`` until ``hive answer ID
TEXT``. ``hive inbox`` lists both kinds of waiting task, with the question and
its choices.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .. import argtypes as A
from .render import consoles, print_json, styled, table, when
from .runner import EXIT_OK, command

if TYPE_CHECKING:
    from ..client import HiveClient


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("approve", parents=parents, help="let a task awaiting approval run")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--comment", default=None, help="logged with the approval")
    p.set_defaults(func=command(cmd_approve))
    p = sub.add_parser("reject", parents=parents, help="refuse a task awaiting approval (it is cancelled)")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("--reason", default=None, help="logged with the rejection")
    p.set_defaults(func=command(cmd_reject))
    p = sub.add_parser("answer", parents=parents, help="answer the question of a task in input_required")
    p.add_argument("task_id", metavar="ID")
    p.add_argument("text", metavar="TEXT", help="the answer (one of the choices, if the question has them)")
    p.add_argument("--request-id", default=None, help="the question answered (default: the one open now)")
    p.set_defaults(func=command(cmd_answer))
    p = sub.add_parser("inbox", parents=parents, help="tasks waiting for a person: approvals and questions")
    p.add_argument(
        "--limit", type=A.POSITIVE_INT, default=100, help="at most N tasks of each kind (default %(default)s)"
    )
    p.set_defaults(func=command(cmd_inbox))


def _done(task: dict[str, Any], what: str, args: argparse.Namespace) -> int:
    if args.json:
        print_json(task)
    else:
        out, _ = consoles()
        out.print(f"task [bold]{task['id']}[/] {what} ({styled(task.get('status', '?'))})")
    return EXIT_OK


async def cmd_approve(c: HiveClient, args: argparse.Namespace) -> int:
    return _done(await c.approve_task(args.task_id, args.comment), "[green]approved[/]", args)


async def cmd_reject(c: HiveClient, args: argparse.Namespace) -> int:
    return _done(await c.reject_task(args.task_id, args.reason), "[magenta]rejected[/]", args)


async def cmd_answer(c: HiveClient, args: argparse.Namespace) -> int:
    return _done(await c.answer_task(args.task_id, args.text, args.request_id), "[green]answered[/]", args)


def inbox_table(tasks: list[dict[str, Any]]) -> Any:
    """The inbox as a table: what each task waits for, and how to act on it."""
    from rich.markup import escape

    t = table(f"{len(tasks)} task(s) waiting for a person")
    t.add_column("ID", no_wrap=True, style="bold")
    t.add_column("TYPE", min_width=4)
    t.add_column("WAITS FOR", no_wrap=True)
    t.add_column("OWNER", no_wrap=True)
    t.add_column("QUESTION / DESCRIPTION", overflow="fold")
    t.add_column("SINCE", no_wrap=True)
    for task in tasks:
        q = task.get("pending_input") or {}
        if task.get("status") == "input_required" and q:
            what = escape(str(q.get("question", "")))
            if q.get("choices"):
                what += "\n[cyan]choices:[/] " + " | ".join(escape(str(x)) for x in q["choices"])
            since = q.get("requested_at")
            waits = "[yellow]answer[/]"
        else:
            what = escape(str(task.get("description") or "-"))
            since = task.get("created_at")
            waits = "[yellow]approval[/]"
        t.add_row(
            task["id"],
            escape(str(task.get("type", ""))),
            waits,
            escape(str(task.get("created_by") or "anonymous")),
            what,
            when(since, short=True),
        )
    return t


async def cmd_inbox(c: HiveClient, args: argparse.Namespace) -> int:
    tasks = await c.inbox(limit=args.limit)
    if args.json:
        print_json(tasks)
        return EXIT_OK
    out, _ = consoles()
    out.print(inbox_table(tasks))
    if tasks:
        out.print("[dim]hive approve ID | hive reject ID --reason R | hive answer ID TEXT[/]")
    return EXIT_OK
