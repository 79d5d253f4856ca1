"""What adapters read of the hive: a typed reader, and the view at the committed sequence.

The service handles a command at once (the core's state moves ahead of the
log) and commits its events a moment later; a commit can fail, and then that
state never existed. So every answer built from the state (REST replies,
``/ws`` snapshots, ``get_status``, a pull agent's claim) goes through
:meth:`CommittedView.read`: the answer is built synchronously from the state
at sequence S, and shown only once S is committed; if the commit covering S
fails, the service rebuilds the state from the log first, and the answer is
built again from that. Nothing is copied and nothing is added per event: a
read costs at most one commit's wait.

:class:`HiveReader` is the one place adapters read the core through (its
public attributes and queries); nothing else in ``server/`` or ``monitor/``
touches them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.errors import AgentNotFound, StoreUnavailable
from ..core.hive import Hive, HiveConfig
from ..core.model import Agent, Task, TaskStatus

if TYPE_CHECKING:
    from .service import HubService

T = TypeVar("T")


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
        return self._h.task_counts[status]

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


class CommittedView:
    """Reads at the committed sequence (see the module docstring)."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def read(self, build: Callable[[HiveReader], T]) -> T:
        """``build(reader)`` runs synchronously on the state at some sequence S and
        must return what is shown (bytes, or values that no later event changes);
        its result is returned once S is committed. When the commit covering S
        fails it runs again, on the state rebuilt from the log. ``build`` may run
        more than once; exceptions it raises propagate."""
        svc = self.service
        while True:
            hive = svc.hive
            value = build(HiveReader(hive))
            seq = hive.sequence
            if seq <= svc.published_seq:
                return value
            try:
                await svc.wait_published(seq)
            except StoreUnavailable:
                if svc.hive is hive:
                    raise  # the state could not be rebuilt from the log: nothing to show
                continue  # the state was rebuilt from the log: build again from it
            return value

    async def task(self, task_id: str, encode: Callable[[Task | None], T]) -> T:
        """``encode(task)`` at the committed sequence: from memory, or when the core
        evicted it (``retain_finished``) folded from its own events in the store."""
        got = await self.read(
            lambda r: (encode(t) if (t := r.task(task_id)) is not None else None, r.is_evicted(task_id))
        )
        value, evicted = got
        if value is not None:
            return value
        if not evicted:
            return encode(None)
        return encode(await self.service.task(task_id))
