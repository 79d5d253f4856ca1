"""``hive mcp``: the hive's MCP server over stdio, for an AI assistant that launches
a command (Claude Desktop, IDE agents). The same tools are served over HTTP at
``/mcp`` on the hub's port. See ``docs/mcp.md``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from .runner import EXIT_OK, EXIT_USAGE, connection_options


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hub, _ = connection_options()
    p = sub.add_parser(
        "mcp",
        parents=[hub],
        help="serve the hive's MCP tools over stdio (for AI assistants)",
        description="Serve the hive's MCP tools (submit_task, wait_for_task, list_tasks, ...) over "
        "stdin/stdout. Every tool calls the hub at --url with --token, so that token's role applies.",
    )
    p.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default %(default)s)",
    )
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    from ..client.urls import http_url
    from ..mcp.stdio import serve_stdio

    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        url = http_url(args.url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve_stdio(url, args.token))
    except KeyboardInterrupt:
        pass
    return EXIT_OK
