"""The ``hive`` command, one module per command group:

==========================  =================================================
``serve.py``                ``hive serve``: run the hub
``agent.py``                ``hive agent``: run an agent with Python handlers
``tokens.py``               ``hive token``: create, list, revoke access tokens
``status.py``               ``hive status``
``agents.py``               ``hive agents list|show|remove|reset-learning``
``tasks.py``                ``hive tasks submit|list|show|cancel|retry|watch``
``follow.py``               ``hive tasks watch``: one task live, its streamed output
``human.py``                ``hive approve|reject|answer|inbox``: the person in the loop
``limits.py``               ``hive quotas|budgets set|list|delete``
``watch.py``                ``hive watch``: the live event stream
``mcp.py``                  ``hive mcp``: the hive's MCP server over stdio
``a2a.py``                  ``hive a2a-bridge``: A2A agents as hive agents
``runner.py``               how operator commands run: connection options,
                            errors to exit codes
``helptext.py``             what ``--help`` adds: defaults and examples
``render.py``               styles and formatting of the operator commands
==========================  =================================================
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from . import a2a, agents, human, limits, mcp, serve, status, tasks, tokens, watch
from .helptext import polish
from .runner import connection_options

__all__ = ["add_commands", "build_parser", "main"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator commands (``status``, ``agents``, ``tasks``, ``approve``, ``reject``,
    ``answer``, ``inbox``, ``quotas``, ``budgets``, ``watch``) to ``sub``."""
    hub, js = connection_options()
    status.add_parser(sub, [hub, js])
    agents.add_parser(sub, [hub, js])
    tasks.add_parser(sub, [hub, js])
    human.add_parser(sub, [hub, js])
    limits.add_parser(sub, [hub, js])
    watch.add_parser(sub, hub)


def build_parser() -> argparse.ArgumentParser:
    """The ``hive`` parser (``hive agent`` has its own: :func:`hivehub.cli.agent.build_parser`)."""
    parser = argparse.ArgumentParser(
        prog="hive", description="Hive Hub: real-time orchestration for AI agents"
    )
    parser.add_argument("--version", action="version", version=f"hive {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(sub)
    sub.add_parser("agent", help="run an agent (see 'hive agent --help')")
    tokens.add_parser(sub)
    add_commands(sub)
    mcp.add_parser(sub)
    a2a.add_parser(sub)
    polish(parser)
    return parser


#: options every operator command takes, also accepted before the command's name
GLOBAL_OPTIONS = ("--url", "--token")


def hoist(argv: list[str]) -> list[str]:
    """``hive --url U tasks list`` as ``hive tasks list --url U``: the global options
    given before the command move after it (before a ``--``, if any)."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-h", "--help", "--version", "--"):
        arg = argv[i]
        name = arg.split("=", 1)[0]
        if name not in GLOBAL_OPTIONS:
            break
        if "=" in arg or i + 1 >= len(argv):
            moved.append(arg)
            i += 1
        else:
            moved += [arg, argv[i + 1]]
            i += 2
    rest = argv[i:]
    if not moved or not rest:
        return argv
    if "--" in rest:
        at = rest.index("--")
        return rest[:at] + moved + rest[at:]
    return rest + moved


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``hive``; returns the exit status."""
    argv = hoist(list(sys.argv[1:] if argv is None else argv))
    if not argv:
        build_parser().print_help()
        return 0
    if argv[0] == "agent":
        from .agent import cli_main

        return int(cli_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
