"""A no-op agent process for the tasks bench: the real SDK (``hivehub.agent.Agent``)
over WebSocket, one handler for type ``noop`` that returns at once.

``python -m bench.noop_agent --url ws://127.0.0.1:P --name N --concurrency C --max-seconds S``

Stops by itself after ``--max-seconds`` (bounded), or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal


async def main_async(a: argparse.Namespace) -> None:
    from hivehub.agent import Agent

    agent = Agent(a.name, {"noop": 1.0}, url=a.url, max_concurrent_tasks=a.concurrency, ping_interval=None)

    @agent.handler("noop")
    async def noop(ctx: object) -> None:
        return None

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(agent.run())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, waiter}, timeout=a.max_seconds, return_when=asyncio.FIRST_COMPLETED)
    if not runner.done():
        await agent.stop(grace=2)
        try:
            await asyncio.wait_for(runner, 10)
        except (TimeoutError, asyncio.CancelledError, Exception):
            pass
    waiter.cancel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    import uvloop

    uvloop.run(main_async(a))


if __name__ == "__main__":
    main()
