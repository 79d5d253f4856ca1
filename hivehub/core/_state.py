"""The typed base that the :class:`~hivehub.core.hive.Hive` and its mixins share.

The Hive is assembled from one class per responsibility (``scheduler.py``,
``learning.py``, ``coordination.py``, ``observations.py``). Each mixin annotates
the state it owns; :class:`HiveState` annotates the state several of them read
and declares the Hive methods they call. It holds no behaviour: ``Hive.__init__``
sets every attribute, and the methods below exist only for the type checker
(they are implemented by the Hive or a sibling mixin, so nothing here can
shadow them at run time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .model import Agent, Task

if TYPE_CHECKING:
    from . import events as ev
    from .hive import HiveConfig
    from .model import AgentStatus, TaskStatus


class HiveState:
    config: HiveConfig
    agents: dict[str, Agent]
    tasks: dict[str, Task]
    #: finished tasks evicted from memory -> their final status (see Hive._evict)
    evicted: dict[str, TaskStatus]
    _new_id: Callable[[], str]
    #: set for the duration of one ``handle`` call (the command's ``now``)
    _now: datetime | None
    #: the command's monotonic reading: every duration and deadline is measured on it
    _mono: float | None
    #: scheduling must run: the ready queue or agent eligibility changed
    _dirty: bool

    if TYPE_CHECKING:
        # implemented by Hive (hive.py)
        def _emit(self, data: ev.EventData) -> None: ...
        def _emit_status(self, a: Agent, new: AgentStatus, reason: str) -> None: ...
        def _touch(self, agent_id: str | None, reason: str) -> None: ...
        def _emit_performance(self, a: Agent, outcome: str, task_type: str | None = None) -> None: ...
        def _at(self, wall: datetime) -> float: ...
        def _held_for(self, t: Task) -> float: ...

        # implemented by SchedulingMixin (scheduler.py)
        def _candidates(self, required: list[Any]) -> list[Agent]: ...
        def _estimate(self, a: Agent, t: Task) -> datetime | None: ...
