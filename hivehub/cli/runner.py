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


def command(fn: Command, interrupted: int = EXIT_INTERRUPTED) -> Callable[[argparse.Namespace], int]:
    """``fn`` as an argparse ``func``: parsed arguments in, exit status out (see :func:`execute`)."""

    def run(args: argparse.Namespace) -> int:
        return execute(fn, args, interrupted)

    run.__name__ = fn.__name__
    return run


def execute(fn: Command, args: argparse.Namespace, interrupted: int = EXIT_INTERRUPTED) -> int:
    """Run one command: the client, error reporting and exit codes in one place."""
    from rich.markup import escape

    from ..client import HiveClient, HiveError, HubUnreachable

    _, err = consoles()

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
