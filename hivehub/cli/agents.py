"""``hive agents list|show|remove|reset-learning``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .. import argtypes as A
from .render import caps, consoles, kv_table, pretty, print_json, styled, table, when
from .runner import EXIT_OK, command

if TYPE_CHECKING:
    from ..client import HiveClient


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    agents = sub.add_parser("agents", help="list, show or remove agents, or reset what the hub learned")
    asub = agents.add_subparsers(
        dest="agents_command", required=True, metavar="{list,show,remove,reset-learning}"
    )
    p = asub.add_parser("list", parents=parents, help="list agents")
    p.add_argument("--status", choices=["idle", "active", "learning", "offline", "failed"])
    p.add_argument("--type", choices=["worker", "coordinator", "specialist", "learner"])
    p.add_argument("--capability", help="only agents with this capability")
    p.add_argument("--limit", type=A.POSITIVE_INT, help="at most N agents")
    p.set_defaults(func=command(cmd_agents_list))
    p = asub.add_parser("show", parents=parents, help="one agent in detail")
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(func=command(cmd_agents_show))
    p = asub.add_parser("remove", parents=parents, help="remove an agent (its tasks are reassigned)")
    p.add_argument("agent_id", metavar="ID")
    p.set_defaults(func=command(cmd_agents_remove))
    p = asub.add_parser(
        "reset-learning", parents=parents, help="put learned proficiencies back to the declared ones (logged)"
    )
    p.add_argument("agent_id", metavar="ID")
    p.add_argument(
        "--capability",
        action="append",
        dest="capabilities",
        metavar="NAME",
        help="only this capability (repeatable)",
    )
    p.set_defaults(func=command(cmd_agents_reset_learning))


async def cmd_agents_list(c: HiveClient, args: argparse.Namespace) -> int:
    agents = [
        a
        async for a in c.list_agents(
            status=args.status, type=args.type, capability=args.capability, limit=args.limit
        )
    ]
    if args.json:
        print_json(agents)
        return EXIT_OK
    out, _ = consoles()
    t = table(f"{len(agents)} agent(s)")
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
            styled(a.get("status", "")),
            caps(a.get("capabilities", []), "proficiency"),
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
        print_json(a)
        return EXIT_OK

    out, _ = consoles()
    met = a.get("metrics") or {}
    rate = met.get("success_rate")
    avg = met.get("average_response_time_ms")
    out.print(
        kv_table(
            [
                ("id", a["id"]),
                ("name", a.get("name", "")),
                ("type", a.get("type", "")),
                ("status", styled(a.get("status", ""))),
                ("load", f"{len(a.get('current_tasks', []))}/{a.get('max_concurrent_tasks', 1)}"),
                ("current tasks", ", ".join(a.get("current_tasks", [])) or "-"),
                ("completed", str(met.get("tasks_completed", 0))),
                ("failed", str(met.get("tasks_failed", 0))),
                ("success rate", "-" if rate is None else f"{rate:.1%}"),
                ("avg response", "-" if avg is None else f"{avg:.0f} ms"),
                ("created", when(a.get("created_at"))),
                ("last seen", when(a.get("last_seen_at"))),
            ],
            title=f"Agent {a.get('name', a['id'])}",
        )
    )
    capabilities = a.get("capabilities") or []
    if capabilities:
        t = table("Capabilities")
        t.add_column("name")
        t.add_column("proficiency", justify="right")
        t.add_column("declared", justify="right")
        t.add_column("learning rate", justify="right")
        for cap in capabilities:
            declared = cap.get("declared_proficiency")
            t.add_row(
                cap["name"],
                f"{cap.get('proficiency', 0):.2f}",
                "-" if declared is None else f"{declared:.2f}",
                f"{cap.get('learning_rate', 0):.2f}",
            )
        out.print(t)
    if a.get("metadata"):
        out.print("[bold cyan]metadata[/]")
        out.print(pretty(a["metadata"]))
    return EXIT_OK


async def cmd_agents_remove(c: HiveClient, args: argparse.Namespace) -> int:
    removed = await c.remove_agent(args.agent_id)
    if args.json:
        print_json(removed)
        return EXIT_OK
    out, _ = consoles()
    summary = removed.get("cleanup_summary") or {}
    out.print(
        f"[green]removed[/] agent [bold]{args.agent_id}[/]: "
        f"{summary.get('tasks_reassigned', 0)} task(s) reassigned, {summary.get('tasks_failed', 0)} failed"
    )
    return EXIT_OK


async def cmd_agents_reset_learning(c: HiveClient, args: argparse.Namespace) -> int:
    a = await c.reset_learning(args.agent_id, args.capabilities)
    if args.json:
        print_json(a)
        return EXIT_OK
    out, _ = consoles()
    names = set(args.capabilities or [cap["name"] for cap in a.get("capabilities") or []])
    reset = ", ".join(
        f"{cap['name']}={cap.get('proficiency', 0):.2f}"
        for cap in a.get("capabilities") or []
        if cap["name"] in names
    )
    out.print(f"[green]reset[/] learning of agent [bold]{args.agent_id}[/]: {reset or 'no capabilities'}")
    return EXIT_OK
