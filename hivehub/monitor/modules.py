"""Module health derived from real signals, folded into ``/health``.

Each module's state comes from something measured: the event-loop lag probe,
the store's last commit (and whether it failed), subscriber backlogs, and
whether the background tasks are alive.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from ..core.model import TaskStatus
from ..server.config import ServerConfig
from ..server.service import HubService
from ..server.stream import StreamHub

RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}
MODULES = (
    "task_management",
    "agent_management",
    "metrics_collection",
    "background_processes",
    "coordinator",
    "persistence",
    "event_stream",
)


class ModuleMonitor:
    def __init__(
        self, service: HubService, stream: StreamHub, config: ServerConfig, lag_interval: float = 0.5
    ) -> None:
        self.service = service
        self.stream = stream
        self.config = config
        self.lag_interval = lag_interval
        self.loop_lag_ms = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe(), name="hive-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.lag_interval)
            self.loop_lag_ms = max(0.0, (loop.time() - t0 - self.lag_interval) * 1000)

    def states(self) -> dict[str, dict[str, Any]]:
        svc, stream, cfg = self.service, self.stream, self.config
        out: dict[str, dict[str, Any]] = {}

        def put(name: str, status: str, reason: str, **signals: Any) -> None:
            out[name] = {"status": status, "reason": reason, "signals": signals}

        if not svc.store_ok:
            # degraded, not unhealthy: reads and the stream keep working, writes get 503
            put(
                "persistence",
                "degraded",
                f"event log writes failing: {svc.store_error}",
                last_commit_ms=svc.last_commit_ms,
            )
        elif svc.last_commit_ms > 500:
            put("persistence", "degraded", "slow commits", last_commit_ms=round(svc.last_commit_ms, 3))
        else:
            put("persistence", "healthy", "commits ok", last_commit_ms=round(svc.last_commit_ms, 3))
        backlog = stream.max_backlog()
        if backlog > cfg.subscriber_buffer // 2:
            put(
                "event_stream",
                "degraded",
                "a subscriber is far behind",
                max_backlog=backlog,
                subscribers=stream.count(),
            )
        else:
            put(
                "event_stream",
                "healthy",
                "subscribers keeping up",
                max_backlog=backlog,
                subscribers=stream.count(),
            )
        dead = [t.get_name() for t in svc._tasks if t.done()]
        lag = round(self.loop_lag_ms, 3)
        if dead:
            put("background_processes", "unhealthy", f"stopped: {', '.join(dead)}", loop_lag_ms=lag)
        elif lag > 250:
            put("background_processes", "degraded", "event loop lagging", loop_lag_ms=lag)
        else:
            put("background_processes", "healthy", "running", loop_lag_ms=lag)
        writes = "healthy" if svc.store_ok else "degraded"
        why = "accepting commands" if svc.store_ok else "writes rejected while the log is unavailable"
        reader = svc.reader()
        put("task_management", writes, why, pending=reader.task_count(TaskStatus.PENDING))
        put("agent_management", writes, why, agents=len(reader.agents()))
        put("metrics_collection", "healthy", "folded from the log", sequence=svc.published_seq)
        due = reader.next_deadline()  # monotonic; shown as the wall time it stands for
        when = None if due is None else svc.clock() + timedelta(seconds=due - svc.monotonic())
        put("coordinator", "healthy", "scheduler running", next_deadline=str(when))
        return out

    def report(self) -> dict[str, Any]:
        mods = self.states()
        worst = max((m["status"] for m in mods.values()), key=RANK.__getitem__)
        return {"status": worst, "modules": mods}
