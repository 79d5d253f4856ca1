"""Demo agents and a workload for ``make run``, started inside ``hive serve``.

The agents are ordinary SDK agents connecting over the real /agents/ws
protocol on loopback; the workload submits tasks through the same service
path as REST. ``hive serve --no-demo`` switches both off, ``--no-demo-workload``
the workload.

The order is part of the demo (``hivehub/demo/workload.py``): DataProcessor-1 and
TextAnalyst-1 connect first, the workload opens with a burst that queues on
DataProcessor-1, and Generalist-1 comes online :data:`GENERALIST_JOINS_AFTER`
seconds later, when the coordinator moves the waiting work to it. The hub's own
settings (learning, rebalancing) are the user's: the demo changes none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from ..core import commands as C
from .hub import HUB

log = logging.getLogger("hivehub.demo")

#: seconds between the workload's opening burst and Generalist-1 coming online: the
#: burst's first profile runs on DataProcessor-1 and its second waits there,
#: prefetched (each takes about a second or more), so the joining Generalist-1 takes
#: the third from the queue and the hub recalls the waiting second one for its other
#: slot (``core/prefetch.py``)
GENERALIST_JOINS_AFTER = 0.5


def start_demo(app: web.Application, config: Any) -> None:
    from ..demo import demo_agents, demo_workload
    from ..demo.text import load_dictionaries

    url = f"ws://127.0.0.1:{config.port}"
    agents = demo_agents(url, token=app[HUB].tokens.add_internal())
    first, late = agents[:2], agents[2]
    bg: list[asyncio.Task[Any]] = app[HUB].background
    app[HUB].demo_agents = agents
    service = app[HUB].service

    def run(agent: Any) -> None:
        bg.append(asyncio.create_task(agent.run(), name=f"demo-agent-{agent.name}"))

    async def submit(spec: dict[str, Any]) -> None:
        import msgspec

        await service.execute(
            C.SubmitTask(id="demo-workload", spec=msgspec.convert(spec, C.TaskSpec), created_by="demo")
        )

    async def sequence() -> None:
        for a in first:
            run(a)
        if not config.demo_workload:
            run(late)
            return
        # the text handlers' dictionaries, before any task: the opening's timing
        # (workload.py) should not depend on who happens to load them first
        await asyncio.to_thread(load_dictionaries)
        for a in first:
            with contextlib.suppress(TimeoutError):
                await a.wait_registered(30)
        workload = asyncio.create_task(demo_workload(submit), name="demo-workload")
        bg.append(workload)
        await asyncio.sleep(GENERALIST_JOINS_AFTER)
        run(late)

    bg.append(asyncio.create_task(sequence(), name="demo-start"))
    log.info("demo: %d agents%s", len(agents), " and a workload" if config.demo_workload else "")
