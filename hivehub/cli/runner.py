"""How the operator commands run: the hub connection options, one client per command,
and the mapping from errors to exit codes.

Every operator command takes ``--url`` (env ``HIVE_URL``, default ``http://127.0.0.1:3001``)
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
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .render import consoles

if TYPE_CHECKING:
    from ..client import HiveClient

DEFAULT_URL = "http://127.0.0.1:3001"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: an operator command: the connected client and the parsed arguments in, the exit status out
Command = Callable[["HiveClient", argparse.Namespace], Awaitable[int]]


class UsageError(Exception):
    """A mistake in the arguments found after parsing (exit 2)."""


def connection_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The parent parsers of the operator commands: ``(hub connection, --json)``."""
    hub = argparse.ArgumentParser(add_help=False)
    g = hub.add_argument_group("hub connection")
    g.add_argument(
        "--url",
        default=os.environ.get("HIVE_URL") or DEFAULT_URL,
        help="hub address (env HIVE_URL, default %(default)s)",
    )
    g.add_argument(
        "--token", default=os.environ.get("HIVE_TOKEN") or None, help="access token (env HIVE_TOKEN)"
    )
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="print JSON instead of tables (for scripts)")
    return hub, js


#: the shortest id prefix looked up (shorter ones match too much to be meant)
MIN_PREFIX = 4


async def resolve_ids(client: HiveClient, args: argparse.Namespace) -> bool:
    """After a 404: a unique prefix of a task or agent id stands for the whole id
    (``hive tasks show 38f4db70``); ``args.task_id`` / ``args.agent_id`` are completed
    in place. True when one was. Several matches are a usage error that lists them."""
    changed = False
    task_ref = getattr(args, "task_id", None)
    if isinstance(task_ref, str) and len(task_ref) >= MIN_PREFIX:
        page = await client.request_object("GET", "/api/tasks", params={"id_prefix": task_ref, "limit": "11"})
        ids = [t["id"] for t in page["tasks"] if t["id"] != task_ref]
        if not ids:
            # not in memory: the history of every stored task (its search covers ids)
            found = await client.request_object(
                "GET", "/api/history/tasks", params={"q": task_ref, "limit": "50"}
            )
            ids = [t["id"] for t in found["tasks"] if t["id"].startswith(task_ref) and t["id"] != task_ref]
        args.task_id = _unique("task", task_ref, ids)
        changed = args.task_id != task_ref
    agent_ref = getattr(args, "agent_id", None)
    if isinstance(agent_ref, str) and len(agent_ref) >= MIN_PREFIX:
        ids = [a["id"] for a in (await client.request_object("GET", "/api/agents"))["agents"]]
        args.agent_id = _unique(
            "agent", agent_ref, [i for i in ids if i.startswith(agent_ref) and i != agent_ref]
        )
        changed = changed or args.agent_id != agent_ref
    return changed


def _unique(kind: str, ref: str, matches: list[str]) -> str:
    if len(matches) == 1:
        return matches[0]
    if not matches:
        return ref
    shown = ", ".join(matches[:10]) + (", ..." if len(matches) > 10 else "")
    raise UsageError(f"{kind} id prefix {ref!r} is ambiguous: {shown}")


def command(fn: Command, interrupted: int = EXIT_INTERRUPTED) -> Callable[[argparse.Namespace], int]:
    """``fn`` as an argparse ``func``: parsed arguments in, exit status out (see :func:`execute`)."""

    def run(args: argparse.Namespace) -> int:
        return execute(fn, args, interrupted)

    run.__name__ = fn.__name__
    return run


def execute(fn: Command, args: argparse.Namespace, interrupted: int = EXIT_INTERRUPTED) -> int:
    """Run one command: the client, error reporting and exit codes in one place."""
    from rich.markup import escape

    from ..client import HiveClient, HiveError, HubUnreachable, NotFound

    _, err = consoles()

    async def main() -> int:
        async with HiveClient(args.url, args.token) as client:
            try:
                return await fn(client, args)
            except NotFound:
                # nothing was done: if the id given is a unique prefix, run with the whole id
                if not await resolve_ids(client, args):
                    raise
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
        err.print(
            f"[bold red]{escape(exc.code)}[/]: {escape(exc.message)}"
            + (f" [dim](HTTP {status})[/]" if status else "")
        )
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
