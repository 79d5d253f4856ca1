"""``hive quotas set|list|delete`` and ``hive budgets set|list|delete``.

A quota pool paces the model calls of the agents that name it (``hive agent
--quota NAME``): requests and tokens per minute, calls at once. A budget caps
what one owner (a token's name, or ``anonymous``) spends per UTC day. Both are
logged, so they survive a restart.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .. import argtypes as A
from .render import consoles, print_json, table, when
from .runner import EXIT_OK, UsageError, command

if TYPE_CHECKING:
    from ..client import HiveClient

LIMIT = A.integer(1, 10**12)
COST = A.number(0, 10**9, lo_open=True)


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    quotas = sub.add_parser("quotas", help="set, list or delete quota pools (provider rate limits)")
    qsub = quotas.add_subparsers(dest="quotas_command", required=True, metavar="{set,list,delete}")
    p = qsub.add_parser("set", parents=parents, help="create or replace a pool (unset limits: unlimited)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--rpm", type=LIMIT, default=None, metavar="N", help="requests per minute")
    p.add_argument("--tpm", type=LIMIT, default=None, metavar="N", help="tokens per minute")
    p.add_argument("--max-concurrent", type=LIMIT, default=None, metavar="N", help="calls at once")
    p.set_defaults(func=command(cmd_quotas_set))
    p = qsub.add_parser("list", parents=parents, help="every pool, its use and its agents")
    p.set_defaults(func=command(cmd_quotas_list))
    p = qsub.add_parser("delete", parents=parents, help="delete a pool no registered agent names")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=command(cmd_quotas_delete))

    budgets = sub.add_parser("budgets", help="set, list or delete per-owner daily budgets")
    bsub = budgets.add_subparsers(dest="budgets_command", required=True, metavar="{set,list,delete}")
    p = bsub.add_parser("set", parents=parents, help="set an owner's daily budget (UTC days)")
    p.add_argument("owner", metavar="OWNER", help="a token's name, or 'anonymous'")
    p.add_argument("--tokens-per-day", type=LIMIT, default=None, metavar="N")
    p.add_argument("--cost-per-day", type=COST, default=None, metavar="USD")
    p.set_defaults(func=command(cmd_budgets_set))
    p = bsub.add_parser("list", parents=parents, help="every budget with today's spending")
    p.set_defaults(func=command(cmd_budgets_list))
    p = bsub.add_parser("delete", parents=parents, help="remove an owner's budget")
    p.add_argument("owner", metavar="OWNER")
    p.set_defaults(func=command(cmd_budgets_delete))


def _limit(v: Any) -> str:
    return "-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}"


def _usd(v: Any) -> str:
    return "-" if v is None else f"${float(v):.4f}"


def quotas_table(quotas: list[dict[str, Any]]) -> Any:
    t = table(f"{len(quotas)} quota pool(s)")
    for col in ("NAME", "RPM", "TPM", "CONCURRENT", "IN FLIGHT", "PAUSED UNTIL", "AGENTS"):
        t.add_column(col, no_wrap=col != "AGENTS", justify="right" if col in ("RPM", "TPM") else "left")
    for q in quotas:
        t.add_row(
            f"[bold]{q['name']}[/]",
            _limit(q.get("requests_per_minute")),
            _limit(q.get("tokens_per_minute")),
            _limit(q.get("max_concurrent")),
            str(q.get("in_flight", 0)),
            when(q.get("paused_until")),
            ", ".join(q.get("agents") or []) or "-",
        )
    return t


def budgets_table(budgets: list[dict[str, Any]]) -> Any:
    t = table(f"{len(budgets)} budget(s), spent today (UTC)")
    for col in (
        "OWNER",
        "DAY",
        "TOKENS/DAY",
        "SPENT",
        "RESERVED",
        "COST/DAY",
        "SPENT $",
        "RESERVED $",
        "STATE",
    ):
        t.add_column(col, no_wrap=True)
    for b in budgets:
        t.add_row(
            f"[bold]{b['owner']}[/]",
            str(b.get("day") or "-"),
            _limit(b.get("tokens_per_day")),
            _limit(b.get("spent_tokens", 0)),
            _limit(b.get("reserved_tokens", 0)),
            _usd(b.get("cost_usd_per_day")),
            _usd(b.get("spent_cost_usd", 0)),
            _usd(b.get("reserved_cost_usd", 0)),
            "[bold red]blocked[/]" if b.get("blocked") else "[green]ok[/]",
        )
    return t


async def cmd_quotas_set(c: HiveClient, args: argparse.Namespace) -> int:
    if args.rpm is None and args.tpm is None and args.max_concurrent is None:
        raise UsageError("give at least one of --rpm, --tpm, --max-concurrent")
    q = await c.set_quota(
        args.name,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        max_concurrent=args.max_concurrent,
    )
    if args.json:
        print_json(q)
    else:
        consoles()[0].print(quotas_table([q]))
    return EXIT_OK


async def cmd_quotas_list(c: HiveClient, args: argparse.Namespace) -> int:
    quotas = await c.list_quotas()
    if args.json:
        print_json(quotas)
    else:
        consoles()[0].print(quotas_table(quotas))
    return EXIT_OK


async def cmd_quotas_delete(c: HiveClient, args: argparse.Namespace) -> int:
    reply = await c.delete_quota(args.name)
    if args.json:
        print_json(reply)
    else:
        consoles()[0].print(f"[green]deleted[/] quota pool [bold]{args.name}[/]")
    return EXIT_OK


async def cmd_budgets_set(c: HiveClient, args: argparse.Namespace) -> int:
    if args.tokens_per_day is None and args.cost_per_day is None:
        raise UsageError("give at least one of --tokens-per-day, --cost-per-day")
    b = await c.set_budget(args.owner, tokens_per_day=args.tokens_per_day, cost_usd_per_day=args.cost_per_day)
    if args.json:
        print_json(b)
    else:
        consoles()[0].print(budgets_table([b]))
    return EXIT_OK


async def cmd_budgets_list(c: HiveClient, args: argparse.Namespace) -> int:
    budgets = await c.list_budgets()
    if args.json:
        print_json(budgets)
    else:
        consoles()[0].print(budgets_table(budgets))
    return EXIT_OK


async def cmd_budgets_delete(c: HiveClient, args: argparse.Namespace) -> int:
    reply = await c.delete_budget(args.owner)
    if args.json:
        print_json(reply)
    else:
        consoles()[0].print(f"[green]deleted[/] the budget of [bold]{args.owner}[/]")
    return EXIT_OK
