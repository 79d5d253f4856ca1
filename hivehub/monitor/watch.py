"""The hive watching itself: module health, resources, alerts, periodic status.

Every observation becomes an event through the normal path (``Observe`` ->
log -> /ws), so alerts and module states are folded from the log like
everything else. While the store cannot be written, observations are
published live without a sequence (``publish_transient``) and kept here, and a
durable record of the outage is logged once the store is back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from ..core import events as ev
from ..core.commands import Observe
from ..core.errors import HiveError
from ..core.model import ONLINE, TaskError
from ..core.observations import UNSERVABLE_KEY, status_alerts, unservable_alert
from ..server.service import HubService
from ..server.view import HiveReader
from .modules import RANK, ModuleMonitor
from .resources import ResourceWatch, Thresholds, recommendations, sample

log = logging.getLogger("hivehub.watch")

AFFECTED = {
    "persistence": ["event_log_append", "task_submission", "agent_registration", "state_recovery"],
    "event_stream": ["ws_broadcast", "event_replay"],
    "background_processes": ["ticker", "learning_cycle", "swarm_coordination", "resource_sampling"],
    "task_management": ["task_submission", "task_cancellation", "task_retry"],
    "agent_management": ["agent_registration", "heartbeats", "agent_removal"],
    "metrics_collection": ["hive_status", "prometheus_metrics"],
    "coordinator": ["scheduling", "swarm_coordination"],
}


class HiveWatch:
    def __init__(
        self,
        service: HubService,
        modules: ModuleMonitor,
        *,
        db: str,
        interval: float = 1.0,
        status_interval: float = 5.0,
        resource_interval: float = 5.0,
        thresholds: Thresholds | None = None,
        stall_seconds: float = 5.0,
    ) -> None:
        self.service = service
        #: the log's path: its disk is the one watched
        self.db = db
        self.modules = modules
        self.interval = interval
        self.status_interval = status_interval
        self.resource_interval = resource_interval
        self.th = thresholds or Thresholds()
        self.stall_seconds = stall_seconds
        self.watches = {
            "cpu": ResourceWatch("cpu", self.th.cpu, self.th.hysteresis, self.th.window),
            "memory": ResourceWatch("memory", self.th.memory, self.th.hysteresis, self.th.window),
            "disk": ResourceWatch("disk", self.th.disk, self.th.hysteresis, self.th.window),
            "event_loop_lag": ResourceWatch("event_loop_lag", 100.0, self.th.hysteresis, self.th.window),
        }
        self.last_sample: dict[str, float] = {}
        #: alerts that could not be logged (store down): key -> (data, raised at)
        self.transient: dict[str, ev.SystemAlert] = {}
        self._transient_mono: dict[str, float] = {}  # key -> when raised (monotonic)
        self._transient_modules: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._pending_reports: set[asyncio.Task[None]] = set()

    def set_thresholds(self, **values: float) -> None:
        """Change thresholds at run time; the next sample is judged against them."""
        for name, value in values.items():
            setattr(self.th, name, value)
            if name == "event_loop_lag_ms":
                continue
            self.watches[name].threshold = value

    def start(self) -> None:
        import psutil

        psutil.cpu_percent(interval=None)  # the first reading is meaningless: prime it
        self._task = asyncio.create_task(self._loop(), name="hive-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_status = loop.time() + self.status_interval
        next_sample = loop.time()
        while True:
            try:
                await self.check_store()
                await self.check_modules()
                await self.check_conditions()
                if loop.time() >= next_sample:
                    next_sample = loop.time() + self.resource_interval
                    await self.check_resources()
                if loop.time() >= next_status:
                    next_status = loop.time() + self.status_interval
                    await self.observe(self.status_update())
            except Exception as exc:
                log.exception("watch iteration failed")
                self.report_error("metrics_collection", exc)
            await asyncio.sleep(self.interval)

    def report_error(self, component: str, exc: BaseException) -> None:
        """A component failed: record ``error_occurred`` (fire and forget)."""
        import uuid

        data = ev.ErrorOccurred(
            timestamp=self.service.clock(),
            error_id=f"err-{uuid.uuid4()}",
            component=component,
            error=TaskError(
                type(exc).__name__.upper(), str(exc) or type(exc).__name__, {"exception": type(exc).__name__}
            ),
            severity="error",
        )
        t = asyncio.get_running_loop().create_task(self.observe(data))
        self._pending_reports.add(t)
        t.add_done_callback(self._pending_reports.discard)

    async def observe(self, data: ev.EventData) -> None:
        svc = self.service
        if not svc.store_ok:
            svc.publish_transient(data)
            return
        try:
            await svc.execute(Observe(id=f"watch:{data.TYPE}", data=data))
        except HiveError as exc:
            log.warning("observation not recorded: %s", exc)

    # ------------------------------------------------------------ store

    async def check_store(self) -> None:
        svc = self.service
        key = "store_unavailable"
        if not svc.store_ok:
            if key not in self.transient:
                alert = ev.SystemAlert(
                    timestamp=svc.clock(),
                    level="critical",
                    title="Database Connection Lost",
                    message=f"Unable to write the event log: {svc.store_error}",
                    details={
                        "error": svc.store_error,
                        "affected_components": ["persistence", "task_management", "agent_management"],
                    },
                    alert_key=key,
                )
                self.transient[key] = alert
                self._transient_mono[key] = svc.monotonic()
                svc.publish_transient(alert)
            await svc.probe_store()
            if not svc.store_ok:
                return
        if key in self.transient:
            # Back: record the outage durably (raised, then cleared).
            raised = self.transient.pop(key)
            outage = svc.monotonic() - self._transient_mono.pop(key, svc.monotonic())
            raised.details["outage_seconds"] = round(outage, 3)
            await self.observe(raised)
            await self.observe(
                ev.SystemAlert(
                    timestamp=svc.clock(),
                    level="info",
                    title="Database Connection Lost",
                    message=f"The event log is writable again after {outage:.1f}s",
                    details={"error": None, "affected_components": [], "outage_seconds": round(outage, 3)},
                    alert_key=key,
                    state="cleared",
                )
            )

    # ------------------------------------------------------------ modules

    async def check_modules(self) -> None:
        hive = self.service.reader()
        for name, st in self.modules.states().items():
            new = st["status"]
            old = self._transient_modules.get(name) or hive.modules.get(name, "healthy")
            if new == old:
                continue
            data = ev.ModuleStatusChanged(
                timestamp=self.service.clock(),
                module=name,
                old_status=old,
                new_status=new,
                reason=st["reason"],
                affected_functions=AFFECTED.get(name, []) if RANK[new] > 0 else [],
            )
            if self.service.store_ok:
                self._transient_modules.pop(name, None)
                data.old_status = hive.modules.get(name, "healthy")
                if data.old_status != new:
                    await self.observe(data)
            else:
                self._transient_modules[name] = new
                self.service.publish_transient(data)

    # ------------------------------------------------------------ conditions

    async def check_conditions(self) -> None:
        svc = self.service
        hive = svc.reader()
        if not svc.store_ok:
            return
        now = svc.clock()
        # One alert for all of it (bounded: names the largest sets, counts the rest),
        # updated when what it says changes; the core logs only a change.
        groups = hive.unservable_groups()
        if groups:
            await self.observe(unservable_alert(groups, now))
        stale = [k for k in hive.alerts if k.startswith("unservable:")]  # one per set, from older hubs
        if not groups and UNSERVABLE_KEY in hive.alerts:
            stale.append(UNSERVABLE_KEY)
        for key in stale:
            old = hive.alerts[key]
            await self.observe(
                ev.SystemAlert(
                    timestamp=now,
                    level="info",
                    title=getattr(old, "title", "Pending work no agent can serve"),
                    message="an online agent can serve this work again (or it is gone)",
                    details={"error": None, "affected_components": []},
                    alert_key=key,
                    state="cleared",
                )
            )
        since_tick = svc.monotonic() - svc.last_tick_mono  # a duration: the monotonic clock
        stalled = since_tick > self.stall_seconds
        key = "scheduler_stalled"
        if stalled and key not in hive.alerts:
            await self.observe(
                ev.SystemAlert(
                    timestamp=now,
                    level="critical",
                    title="Scheduler stalled",
                    message=f"no scheduler tick for {since_tick:.1f}s",
                    details={
                        "error": "scheduler_stalled",
                        "affected_components": ["coordinator", "task_management"],
                    },
                    alert_key=key,
                )
            )
        elif not stalled and key in hive.alerts:
            await self.observe(
                ev.SystemAlert(
                    timestamp=now,
                    level="info",
                    title="Scheduler stalled",
                    message="the scheduler is ticking again",
                    details={"error": None, "affected_components": []},
                    alert_key=key,
                    state="cleared",
                )
            )

    # ------------------------------------------------------------ resources

    def _queue_by_capability(self) -> dict[str, int]:
        return self.service.reader().pending_by_capability()

    async def check_resources(self) -> None:
        values = sample(self.db, self.modules.loop_lag_ms, self.th.event_loop_lag_ms)
        self.last_sample = values
        hive = self.service.reader()
        online = sum(1 for a in hive.agents() if a.status in ONLINE)
        for name, value in values.items():
            w = self.watches[name]
            change = w.observe(value)
            if change is None:
                continue
            await self.observe(
                ev.ResourceAlert(
                    timestamp=self.service.clock(),
                    resource=name,
                    usage_percent=round(value, 2),
                    threshold_percent=w.threshold,
                    trend=w.trend(),
                    recommendations=recommendations(name, self._queue_by_capability(), online)
                    if change == "active"
                    else [],
                    state=change,
                )
            )

    # ------------------------------------------------------------ status

    def alerts(self, reader: HiveReader | None = None) -> list[dict[str, Any]]:
        """Active alerts: as logged at ``reader``'s sequence (default: live), and the
        ones that could not be logged."""
        out = (reader or self.service.reader()).active_alerts()
        for key, a in self.transient.items():
            out.append(
                {
                    "key": key,
                    "kind": "system_alert",
                    "level": a.level,
                    "title": a.title,
                    "message": a.message,
                    "details": a.details,
                    "timestamp": a.timestamp,
                    "logged": False,
                }
            )
        return out

    def status_update(self) -> ev.HiveStatusUpdate:
        svc = self.service
        now: datetime = svc.clock()
        m = svc.reader().status(now)["metrics"]
        shown, omitted = status_alerts(self.alerts())
        return ev.HiveStatusUpdate(
            timestamp=now,
            status=self.modules.report()["status"],
            metrics=ev.HiveMetrics(
                total_agents=m["total_agents"],
                active_agents=m["active_agents"],
                pending_tasks=m["pending_tasks"],
                completed_tasks_today=m["completed_tasks_today"],
                system_load=m["system_load"],
                running_tasks=m["running_tasks"],
                failed_tasks_today=m["failed_tasks_today"],
            ),
            alerts=shown,
            alerts_omitted=omitted,
        )
