"""The Prometheus figures of ``/metrics``.

They are collected at scrape time from the folded state (tasks and agents by
status, module health, sequence numbers), so they cost nothing per event; only
the two histograms observe events, once per event.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..core.model import AgentStatus, TaskStatus
from ..monitor.modules import RANK, ModuleMonitor
from ..monitor.watch import HiveWatch
from .agents import AgentGateway
from .modulebus import ModuleBus
from .reader import HiveReader
from .service import HubService, Published
from .stream import StreamHub
from .tokens import TokenStore

#: the statuses of a task that waits, and the reasons it may wait for besides a pool
WAITING = frozenset({TaskStatus.PENDING, TaskStatus.AWAITING_APPROVAL, TaskStatus.INPUT_REQUIRED})
BLOCKED_REASONS = ("approval", "budget", "dependencies", "input", "no_agent")


class HiveCollector(Collector):
    """Every gauge and counter, read at scrape time from the parts they describe."""

    def __init__(
        self,
        service: HubService,
        stream: StreamHub,
        gateway: AgentGateway,
        tokens: TokenStore,
        modules: ModuleMonitor,
        watch: HiveWatch,
    ) -> None:
        self.service = service
        self.stream = stream
        self.gateway = gateway
        self.tokens = tokens
        self.modules = modules
        self.watch = watch

    def collect(self) -> Iterator[Any]:
        svc = self.service
        hive = svc.reader()
        g = GaugeMetricFamily("hive_tasks", "Tasks by status", labels=["status"])
        for st in TaskStatus:
            g.add_metric([st.value], hive.task_count(st))
        yield g
        g = GaugeMetricFamily("hive_agents", "Agents by status", labels=["status"])
        counts = {s: 0 for s in AgentStatus}
        for a in hive.agents():
            counts[a.status] += 1
        for ag_status, n in counts.items():
            g.add_metric([ag_status.value], n)
        yield g
        c = CounterMetricFamily(
            "hive_events_appended", "Events appended to the log (last committed sequence)"
        )
        c.add_metric([], svc.published_seq)
        yield c
        c = CounterMetricFamily("hive_events_delivered", "Event frames delivered to /ws subscribers")
        c.add_metric([], self.stream.delivered)
        yield c
        c = CounterMetricFamily(
            "hive_ws_deflate_messages",
            "Messages compressed for permessage-deflate /ws subscribers (an event once, for all of them)",
        )
        c.add_metric([], self.stream.deflater.messages)
        yield c
        c = CounterMetricFamily(
            "hive_token_table_reads", "Reads of the token table (one per change to it, never per request)"
        )
        c.add_metric([], self.tokens.reads)
        yield c
        if svc.bus is not None:
            c = CounterMetricFamily(
                "hive_bus_foreign_entries",
                "Bus entries of another cluster this replica refused to fold (two deployments on one stream)",
            )
            c.add_metric([], svc.bus.foreign_entries)
            yield c
        yield GaugeMetricFamily("hive_subscribers", "Connected /ws subscribers", value=self.stream.count())
        yield GaugeMetricFamily(
            "hive_connected_agents", "Agents connected over /agents/ws", value=self.gateway.count()
        )
        g = GaugeMetricFamily(
            "hive_module_health", "Module health: 0 healthy, 1 degraded, 2 unhealthy", labels=["module"]
        )
        for name, mod in self.modules.states().items():
            g.add_metric([name], RANK[mod["status"]])
        yield g
        yield GaugeMetricFamily("hive_alerts_active", "Active alerts", value=len(self.watch.alerts()))
        yield GaugeMetricFamily(
            "hive_store_commit_seconds", "Duration of the last log commit", value=svc.last_commit_ms / 1000
        )
        yield from self._llm(hive)
        yield self._blocked(hive, svc.clock())

    @staticmethod
    def _blocked(hive: HiveReader, now: datetime) -> GaugeMetricFamily:
        """Waiting tasks by ``blocked_reason`` (every fixed reason and every pool's
        ``quota:<name>`` is present, 0 when none waits for it). A waiting task with no
        reason (its turn, a retry delay) is not blocked and not counted. The walk over
        the tasks in memory happens only while some wait."""
        counts: dict[str, int] = dict.fromkeys(BLOCKED_REASONS, 0)
        counts.update({f"quota:{q.name}": 0 for q in hive.quotas()})
        if any(hive.task_count(st) for st in WAITING):
            for t in hive.tasks():
                if t.status in WAITING and (reason := hive.blocked_reason(t, now)) is not None:
                    counts[reason] = counts.get(reason, 0) + 1
        g = GaugeMetricFamily("hive_tasks_blocked", "Waiting tasks by blocked_reason", labels=["reason"])
        for reason in sorted(counts):
            g.add_metric([reason], counts[reason])
        return g

    @staticmethod
    def _llm(hive: HiveReader) -> Iterator[Any]:
        """Model usage by model (folded from the attempts' reported usage) and the
        attempts in flight per quota pool."""
        by_model = hive.usage_summary()["by_model"]
        tokens = CounterMetricFamily(
            "hive_llm_tokens", "Model tokens reported by agents", labels=["model", "kind"]
        )
        cost = CounterMetricFamily(
            "hive_llm_cost_usd", "Cost of the reported model usage (USD)", labels=["model"]
        )
        requests = CounterMetricFamily(
            "hive_llm_requests", "Attempts that reported model usage", labels=["model"]
        )
        for model, t in by_model.items():
            tokens.add_metric([model, "prompt"], t["prompt_tokens"])
            tokens.add_metric([model, "completion"], t["completion_tokens"])
            cost.add_metric([model], t["cost_usd"])
            requests.add_metric([model], t["requests"])
        yield tokens
        yield cost
        yield requests
        g = GaugeMetricFamily("hive_quota_in_flight", "Attempts in flight per quota pool", labels=["quota"])
        for q in sorted(hive.quotas(), key=lambda q: q.name):
            g.add_metric([q.name], hive.pool_reading(q.name)[0])
        yield g


class Metrics:
    """The registry behind ``/metrics``: the collector, and the two histograms that
    observe committed events (a listener of the service)."""

    def __init__(self, service: HubService, module_bus: ModuleBus, collector: HiveCollector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.assign_latency = Histogram(
            "hive_task_assignment_latency_seconds",
            "From submission to first assignment",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
            registry=self.registry,
        )
        self.duration = Histogram(
            "hive_task_duration_seconds",
            "Execution time of completed tasks",
            buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=self.registry,
        )
        self.service = service
        self.module_bus = module_bus
        service.listeners.append(self.on_published)

    def on_published(self, batch: list[Published]) -> None:
        hive = self.service.reader()
        for p in batch:
            if p.type == "task_assigned":
                d: Any = p.event.data
                if d.attempt_number == 1 and d.assignment_reason != "rebalanced":
                    t = hive.task(d.task_id)
                    if t is not None:
                        self.assign_latency.observe(max(0.0, (d.timestamp - t.created_at).total_seconds()))
            elif p.type == "task_completed":
                d = p.event.data
                ms: float = d.execution_time_ms
                self.module_bus.send(
                    "task_management",
                    "metrics_collection",
                    "TaskCompleted",
                    {"task_id": d.task_id, "execution_time_ms": ms, "sequence": p.sequence},
                    functools.partial(self.duration.observe, ms / 1000),
                )
