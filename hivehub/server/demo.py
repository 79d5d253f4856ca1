"""Demo agents and a gentle workload for ``make run``, started inside ``hive serve``.

The agents are ordinary SDK agents connecting over the real /agents/ws
protocol on loopback; the workload submits tasks through the same service
path as REST. ``hive serve --no-demo`` switches both off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from ..core import commands as C
from .hub import HUB

log = logging.getLogger("hivehub.demo")


def start_demo(app: web.Application, config: Any) -> None:
    from ..demo import demo_agents, demo_workload

    url = f"ws://127.0.0.1:{config.port}"
    agents = demo_agents(url, token=app[HUB].tokens.add_internal())
    bg: list[asyncio.Task[Any]] = app[HUB].background
    for a in agents:
        bg.append(asyncio.create_task(a.run(), name=f"demo-agent-{a.name}"))
    app[HUB].demo_agents = agents

    if config.demo_workload:
        service = app[HUB].service

        async def submit(spec: dict[str, Any]) -> None:
            import msgspec

            await service.execute(
                C.SubmitTask(id="demo-workload", spec=msgspec.convert(spec, C.TaskSpec), created_by="demo")
            )

        bg.append(asyncio.create_task(demo_workload(submit), name="demo-workload"))
    log.info("demo: %d agents%s", len(agents), " and a workload" if config.demo_workload else "")
