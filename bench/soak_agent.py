"""The agents of the soak bench: real SDK agents (``hivehub.agent.Agent`` over
WebSocket) in one process, each with a stable id so a reconnect resumes it.

``python -m bench.soak_agent --url ws://127.0.0.1:P --token T --max-seconds S [--fast 2 --flaky 1 --slow 1]``

* ``soak.fast``: returns at once;
* ``soak.flaky``: fails its first attempt (``TaskFailure``, retryable), completes
  the next one, so every flaky task is retried once with the hub's backoff;
* ``soak.slow``: reports progress three times, ``--slow-step`` seconds apart, then
  completes.

Stops by itself after ``--max-seconds`` (bounded), or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any


async def main_async(a: argparse.Namespace) -> None:
    from hivehub.agent import Agent, TaskContext, TaskFailure

    agents: list[Agent] = []

    def make(kind: str, i: int, concurrency: int) -> Agent:
        ag = Agent(
            f"soak-{kind}-{i}",
            {f"soak.{kind}": 0.9},
            url=a.url,
            token=a.token or None,
            agent_id=f"soak-{kind}-{i}",
            max_concurrent_tasks=concurrency,
            ping_interval=None,
        )
        agents.append(ag)
        return ag

    for i in range(a.fast):
        ag = make("fast", i, 32)

        @ag.handler("soak.fast")
        async def fast(ctx: TaskContext) -> dict[str, Any]:
            return {"ok": True}

    for i in range(a.flaky):
        ag = make("flaky", i, 32)

        @ag.handler("soak.flaky")
        async def flaky(ctx: TaskContext) -> dict[str, Any]:
            if ctx.attempt == 1:
                raise TaskFailure("SOAK_FLAKY", "first attempts of flaky tasks fail", retryable=True)
            return {"ok": True, "attempt": ctx.attempt}

    for i in range(a.slow):
        ag = make("slow", i, 64)

        @ag.handler("soak.slow")
        async def slow(ctx: TaskContext) -> dict[str, Any]:
            for k in range(1, 4):
                await asyncio.sleep(a.slow_step)
                await ctx.progress(k / 4, f"step {k} of 3")
            return {"ok": True}

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners = [asyncio.create_task(ag.run()) for ag in agents]
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({*runners, waiter}, timeout=a.max_seconds, return_when=asyncio.FIRST_COMPLETED)
    for ag in agents:
        try:
            await asyncio.wait_for(ag.stop(grace=2), 10)
        except (TimeoutError, Exception):  # noqa: BLE001 - stopping: nothing more to do
            pass
    for r in runners:
        r.cancel()
    await asyncio.gather(*runners, return_exceptions=True)
    waiter.cancel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--fast", type=int, default=2)
    ap.add_argument("--flaky", type=int, default=1)
    ap.add_argument("--slow", type=int, default=1)
    ap.add_argument("--slow-step", type=float, default=0.3)
    ap.add_argument("--max-seconds", type=float, default=4000)
    a = ap.parse_args()
    import uvloop

    uvloop.run(main_async(a))


if __name__ == "__main__":
    main()
