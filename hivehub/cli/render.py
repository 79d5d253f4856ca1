"""Styles and formatting shared by the operator commands (rich markup, tables, JSON)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

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
    "task_recalled": "yellow",
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
    "task_approval_requested": "bold yellow",
    "task_approved": "green",
    "task_rejected": "magenta",
    "task_input_required": "bold yellow",
    "task_input_received": "green",
    "quota_set": "blue",
    "quota_deleted": "blue",
    "budget_set": "blue",
    "budget_deleted": "blue",
    "error": "bold red",
    "snapshot": "bold",
}


def consoles() -> tuple[Console, Console]:
    """``(stdout, stderr)`` rich consoles."""
    from rich.console import Console

    # piped output is not cut at 80 columns (COLUMNS still wins when set)
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
    return (
        Console(highlight=False, soft_wrap=True, width=width),
        Console(stderr=True, highlight=False, soft_wrap=True),
    )


def table(title: str) -> Any:
    from rich import box
    from rich.table import Table

    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def styled(value: Any) -> str:
    from rich.markup import escape

    s = str(value)
    style = STATUS_STYLE.get(s)
    return f"[{style}]{escape(s)}[/]" if style else escape(s)


def when(ts: Any, short: bool = False) -> str:
    if not ts:
        return "-"
    try:
        dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00")).astimezone()
    except ValueError:
        return str(ts)
    if short and dt.date() == datetime.now().astimezone().date():
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m}m {sec}s" if h else (f"{m}m {sec}s" if m else f"{seconds:.1f}s")


def caps(items: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{c['name']}:{c.get(key, 0):g}" for c in items) or "-"


def money(usd: float) -> str:
    """Dollars for people: cents from a cent up, else the digits that matter ($0.000012)."""
    if usd >= 0.01 or usd == 0:
        return f"${usd:,.2f}"
    return "$" + f"{usd:.8f}".rstrip("0")


def kv_table(rows: list[tuple[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table

    t = Table(
        show_header=False, box=None, title=title, title_justify="left", title_style="bold", pad_edge=False
    )
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, v if isinstance(v, str) or hasattr(v, "__rich_console__") else str(v))
    return t


def pretty(value: Any) -> Any:
    from rich.json import JSON

    return JSON(json.dumps(value, default=str))
