"""The typed reader of one hive's state (the one place adapters read the core through).

:class:`HiveReader` wraps the core's public attributes and queries; nothing else in
``server/`` or ``monitor/`` touches them. It sits below the service (which hands
out readers) and the committed view (which builds answers from one).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from ..core import quotas
from ..core.errors import AgentNotFound, BudgetNotFound, QuotaNotFound
from ..core.hive import Hive, HiveConfig
from ..core.model import Agent, Budget, Quota, Task, TaskStatus


class HiveReader:
    """Read-only access to one hive's state, at its ``sequence``."""

    __slots__ = ("_h",)

    def __init__(self, hive: Hive) -> None:
        self._h = hive

    @property
    def sequence(self) -> int:
        return self._h.sequence

    @property
    def config(self) -> HiveConfig:
        return self._h.config

    def agent(self, agent_id: str) -> Agent:
        """Raises AgentNotFound."""
        a = self._h.agents.get(agent_id)
        if a is None:
            raise AgentNotFound(f"no agent {agent_id}", agent_id=agent_id)
        return a

    def find_agent(self, agent_id: str) -> Agent | None:
        return self._h.agents.get(agent_id)

    def agents(self) -> Collection[Agent]:
        return self._h.agents.values()

    def task(self, task_id: str) -> Task | None:
        """A task in memory (an evicted one: ``None``, see :meth:`is_evicted`)."""
        return self._h.tasks.get(task_id)

    def tasks(self) -> Collection[Task]:
        """The tasks in memory, oldest first (``reversed()`` works)."""
        return self._h.tasks.values()

    def has_task(self, task_id: str) -> bool:
        return self._h.has_task(task_id)

    def is_evicted(self, task_id: str) -> bool:
        """Not in memory, but maybe in the log (evicted, or perhaps forgotten)."""
        return self._h.may_be_in_log(task_id)

    def task_count(self, status: TaskStatus) -> int:
        return self._h.task_counts.get(status, 0)

    def status(self, now: datetime) -> dict[str, Any]:
        return self._h.status(now)

    @property
    def modules(self) -> Mapping[str, str]:
        """Module states as logged (``module_status_changed``)."""
        return self._h.modules

    @property
    def alerts(self) -> Mapping[str, Any]:
        """Active alerts as logged, by key."""
        return self._h.alerts

    def active_alerts(self) -> list[dict[str, Any]]:
        return self._h.active_alerts()

    def unservable_groups(self) -> dict[str, int]:
        return self._h.unservable_groups()

    def next_deadline(self) -> float | None:
        return self._h.next_deadline()

    def pending_by_capability(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self._h.tasks.values():
            if t.status == TaskStatus.PENDING:
                for r in t.required_capabilities:
                    out[r.name] = out.get(r.name, 0) + 1
        return out

    # ------------------------------------------------------------ model usage, pools, budgets

    def blocked_reason(self, t: Task, now: datetime) -> str | None:
        """Why a task waits (derived at read time; ``Hive.blocked_reason``)."""
        return self._h.blocked_reason(t, now)

    def usage_summary(self) -> dict[str, Any]:
        """``{"total", "by_model", "by_type", "by_owner"}`` of folded model usage."""
        return self._h.usage_summary()

    def quotas(self) -> Collection[Quota]:
        return self._h.quotas.values()

    def quota(self, name: str) -> Quota:
        """Raises QuotaNotFound."""
        q = self._h.quotas.get(name)
        if q is None:
            raise QuotaNotFound(f"no quota pool {name}", quota=name)
        return q

    def pool_reading(self, name: str) -> tuple[int, datetime | None]:
        """(attempts in flight, when its RATE_LIMITED pause ends or ``None``)."""
        return quotas.pool_reading(self._h, name)

    def budgets(self) -> Collection[Budget]:
        return self._h.budgets.values()

    def budget(self, owner: str) -> Budget:
        """Raises BudgetNotFound."""
        b = self._h.budgets.get(owner)
        if b is None:
            raise BudgetNotFound(f"no budget for {owner}", owner=owner)
        return b

    def budget_reading(self, owner: str, now: datetime) -> tuple[date, int, float, int, float, bool]:
        """(day, spent tokens, spent cost, reserved tokens, reserved cost, blocked)."""
        return quotas.budget_reading(self._h, owner, now)
