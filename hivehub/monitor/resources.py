"""Resource sampling (psutil) with hysteresis and trends.

The policy is pure (``ResourceWatch.observe``): a resource alerts when usage
reaches its threshold and clears only when it falls ``hysteresis`` points below
it, so a value hovering at the threshold does not flap. The trend is the slope
of a least-squares line over the sliding window of samples: ``increasing`` or
``decreasing`` beyond ``±0.5`` points per sample, else ``stable``.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

import psutil


@dataclass
class Thresholds:
    cpu: float = 80.0
    memory: float = 85.0
    disk: float = 90.0
    #: event-loop lag, in milliseconds (reported as "percent" of this budget: 100 = at threshold)
    event_loop_lag_ms: float = 250.0
    hysteresis: float = 5.0
    window: int = 12


def trend(samples: list[float], flat: float = 0.5) -> str:
    n = len(samples)
    if n < 3:
        return "stable"
    mx = (n - 1) / 2
    my = sum(samples) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(samples))
    den = sum((i - mx) ** 2 for i in range(n))
    slope = num / den
    if slope > flat:
        return "increasing"
    if slope < -flat:
        return "decreasing"
    return "stable"


@dataclass
class ResourceWatch:
    """Alert state of one resource."""

    name: str
    threshold: float
    hysteresis: float
    window: int
    samples: deque[float] = field(default_factory=deque)
    active: bool = False

    def observe(self, value: float) -> str | None:
        """Add a sample; returns "active" or "cleared" when the alert state changes."""
        self.samples.append(value)
        while len(self.samples) > self.window:
            self.samples.popleft()
        if not self.active and value >= self.threshold:
            self.active = True
            return "active"
        if self.active and value < self.threshold - self.hysteresis:
            self.active = False
            return "cleared"
        return None

    def trend(self) -> str:
        return trend(list(self.samples))


def sample(path: str, loop_lag_ms: float, lag_budget_ms: float) -> dict[str, float]:
    """One reading of every watched resource, in percent."""
    disk_path = path if os.path.exists(path) else os.getcwd()
    return {
        "cpu": psutil.cpu_percent(interval=None),
        "memory": psutil.virtual_memory().percent,
        "disk": psutil.disk_usage(disk_path).percent,
        "event_loop_lag": 100.0 * loop_lag_ms / lag_budget_ms if lag_budget_ms > 0 else 0.0,
    }


def recommendations(resource: str, queue: dict[str, int], online_agents: int) -> list[str]:
    """Advice that fits the situation, from the hive's own state."""
    out: list[str] = []
    if resource == "cpu":
        out.append("Move agents off the hub's machine or lower their max_concurrent_tasks")
    elif resource == "memory":
        out.append(
            "Check agents with large task inputs or results; lower the subscriber buffer (--subscriber-buffer)"
        )
    elif resource == "disk":
        out.append("Free disk space or move the event log (--db) to a larger volume")
    elif resource == "event_loop_lag":
        out.append("The hub is CPU-bound: reduce event volume (progress reports) or run more hub replicas")
    if queue:
        cap, n = max(queue.items(), key=lambda kv: kv[1])
        out.append(f"Consider scaling up the agent pool: {n} pending tasks need '{cap}'")
    elif online_agents == 0:
        out.append("No agent is online: start agents with 'hive agent'")
    return out
