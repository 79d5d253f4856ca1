"""``hive status``: the hub's metrics, modules and active alerts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .render import consoles, duration, kv_table, print_json, styled, table
from .runner import EXIT_OK, command

if TYPE_CHECKING:
    from ..client import HiveClient


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", parents=parents, help="hive status: metrics, modules, alerts")
    p.set_defaults(func=command(cmd_status))


async def cmd_status(c: HiveClient, args: argparse.Namespace) -> int:
    st = await c.status()
    alerts = await c.alerts()
    if args.json:
        print_json({**st, "alerts": alerts})
        return EXIT_OK
    from rich.table import Table

    out, _ = consoles()
    m = st.get("metrics", {})
    out.print(
        f"[bold]Hive Hub[/] {c.url}  {styled(st.get('status', '?'))}  "
        f"sequence [bold]{st.get('published_sequence', st.get('sequence'))}[/]  "
        f"uptime {duration(float(st.get('uptime_seconds', 0)))}"
    )
    agents = kv_table(
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
    tasks = kv_table(
        [
            ("total", str(m.get("total_tasks", 0))),
            ("pending", f"[yellow]{m.get('pending_tasks', 0)}[/]"),
            ("assigned", f"[blue]{m.get('assigned_tasks', 0)}[/]"),
            ("running", f"[bright_blue]{m.get('running_tasks', 0)}[/]"),
            (
                "completed",
                f"[green]{m.get('completed_tasks', 0)}[/] ({m.get('completed_tasks_today', 0)} today)",
            ),
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
        t = table("Modules")
        t.add_column("module", no_wrap=True)
        t.add_column("status", no_wrap=True)
        t.add_column("reason")
        for name, info in modules.items():
            t.add_row(name, styled(info.get("status", "?")), str(info.get("reason", "")))
        out.print(t)
    if alerts:
        t = table("Active alerts")
        for col in ("level", "title", "message"):
            t.add_column(col)
        for a in alerts:
            t.add_row(
                styled(a.get("level", "")),
                str(a.get("title", a.get("alert_key", ""))),
                str(a.get("message", "")),
            )
        out.print(t)
    out.print(f"[dim]stream subscribers: {st.get('subscribers', 0)}[/]")
    return EXIT_OK
