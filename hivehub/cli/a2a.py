"""``hive a2a-bridge``: run Agent2Agent (A2A) agents as hive agents.

::

    hive a2a-bridge --card http://127.0.0.1:9999 --card http://10.0.0.7:8000 \\
        --url ws://127.0.0.1:3001 --proficiency 0.6 --max-concurrent 4 --timeout 300

Environment: ``HIVE_URL``, ``HIVE_TOKEN``, ``HIVE_A2A_CARDS`` (card URLs, comma-separated,
used when no ``--card`` is given). See ``docs/a2a.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from .. import argtypes as A

__all__ = ["add_parser", "bridge_main"]

DEFAULT_URL = "ws://127.0.0.1:3001"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``hive a2a-bridge``."""
    p = sub.add_parser(
        "a2a-bridge",
        help="run A2A agents (their Agent Cards) as hive agents",
        description="Read each A2A agent's Agent Card and run it as one hive agent with one "
        "capability per skill; assigned tasks are sent to it as A2A messages.",
        epilog="Environment: HIVE_URL, HIVE_TOKEN, HIVE_A2A_CARDS (comma-separated card URLs). "
        "Example: hive a2a-bridge --card http://127.0.0.1:9999 --url ws://127.0.0.1:3001",
    )
    p.add_argument(
        "--card",
        action="append",
        default=[],
        metavar="URL",
        help="an A2A agent: its base URL (the card is read from /.well-known/agent-card.json) "
        "or its card's URL (repeatable; default: $HIVE_A2A_CARDS)",
    )
    p.add_argument("--url", default=None, help=f"hub URL (default: $HIVE_URL or {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="access token (default: $HIVE_TOKEN)")
    p.add_argument(
        "--proficiency",
        type=A.number(0, 1),
        default=0.5,
        metavar="P",
        help="the prior proficiency of every skill, 0..1 (default: 0.5; the hub learns from there)",
    )
    p.add_argument(
        "--max-concurrent",
        type=A.POSITIVE_INT,
        default=4,
        metavar="N",
        help="tasks each A2A agent is given at once (default: 4)",
    )
    p.add_argument(
        "--timeout",
        type=A.SECONDS,
        default=None,
        metavar="S",
        help="longest wait for an A2A agent to end a task or ask for input, then A2A_TIMEOUT "
        "(default: the task's timeout_seconds)",
    )
    p.add_argument(
        "--card-timeout",
        type=A.SECONDS,
        default=10.0,
        metavar="S",
        help="longest wait for a card, a connection or a cancellation (default: 10)",
    )
    p.add_argument(
        "--grace", type=A.NON_NEGATIVE, default=10.0, metavar="S", help="shutdown grace period (default: 10)"
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=bridge_main, _parser=p)


def bridge_main(args: argparse.Namespace) -> int:
    """Run the bridge until SIGINT/SIGTERM; 1 when no card could run, 2 on bad usage."""
    from ..a2a.bridge import Bridge, BridgeConfig

    parser: argparse.ArgumentParser = args._parser
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if args.log_level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    cards = args.card or [c.strip() for c in os.environ.get("HIVE_A2A_CARDS", "").split(",") if c.strip()]
    try:
        config = BridgeConfig(
            cards=cards,
            hub_url=args.url or os.environ.get("HIVE_URL") or DEFAULT_URL,
            token=args.token or os.environ.get("HIVE_TOKEN") or None,
            proficiency=args.proficiency,
            max_concurrent=args.max_concurrent,
            timeout=args.timeout,
            card_timeout=args.card_timeout,
        )
        bridge = Bridge(config)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"hive a2a-bridge: {len(cards)} card(s) -> {bridge.hub_ws}", file=sys.stderr)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stops: list[asyncio.Future[None]] = []

        def on_signal() -> None:
            stops.append(asyncio.ensure_future(bridge.stop(args.grace if not stops else 0.0)))

        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal)
        return await bridge.run()

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return 0
