"""Background jobs that turn published events into follow-up commands.

- Learning: a ``learning_cycle_started`` is completed by running the core's
  learning update (``CompleteLearning``) as soon as the start is durable; the
  cycle's ``duration_ms`` is the real time between the two.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..core import commands as C
from ..core.errors import HiveError
from .service import HubService, Published

log = logging.getLogger("hivehub.background")


class LearningRunner:
    def __init__(self, service: HubService, bus: Any = None) -> None:
        self.service = service
        self.bus = bus
        self._tasks: set[asyncio.Task[Any]] = set()
        service.listeners.append(self.on_published)

    def on_published(self, batch: list[Published]) -> None:
        if self.service.role != "leader":
            return  # the leader completes learning cycles
        for p in batch:
            if p.type == "learning_cycle_started":
                d: Any = p.event.data
                if self.bus is not None:
                    self.bus.send(
                        "agent_management",
                        "background_processes",
                        "LearningCycleStarted",
                        {
                            "cycle_id": d.cycle_id,
                            "agent_id": d.agent_id,
                            "target_capability": d.target_capability,
                        },
                        lambda cid=d.cycle_id: self._start(cid),
                    )
                else:
                    self._start(d.cycle_id)

    def _start(self, cycle_id: str) -> None:
        t = asyncio.get_running_loop().create_task(self._complete(cycle_id))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _complete(self, cycle_id: str) -> None:
        try:
            await self.service.execute(C.CompleteLearning(id=f"learning:{cycle_id}", cycle_id=cycle_id))
        except HiveError as exc:
            log.warning("learning cycle %s not completed: %s", cycle_id, exc)
