"""Shared helpers for the core tests: a deterministic driver around :class:`Hive`.

Literal datetimes only (``at(seconds)`` from a fixed epoch), a counter id factory
and ``random.Random(0)``: every run emits the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentSpec,
    CompleteTask,
    FailTask,
    Heartbeat,
    RegisterAgent,
    ReportProgress,
    StartTask,
    SubmitTask,
    TaskSpec,
    Tick,
)
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import (
    Agent,
    AgentCapability,
    Capability,
    RequiredCapability,
    Task,
    TaskError,
    TaskStatus,
)
from hivehub.core.tasklog import fold_statuses

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)

NO_HEARTBEAT_EXPIRY = HiveConfig(heartbeat_timeout=10_000.0)

D = TypeVar("D", bound=ev.EventData)


def at(seconds: float) -> datetime:
    """The instant ``seconds`` after the fixed epoch ``T0``."""
    return T0 + timedelta(seconds=seconds)


class Ids:
    """Deterministic id factory: ``id-1``, ``id-2``, ..."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"


def caps(spec: dict[str, float] | None) -> list[Capability]:
    return [Capability(name=k, proficiency=v) for k, v in (spec or {}).items()]


def held_caps(spec: dict[str, float] | None) -> list[AgentCapability]:
    """Capabilities as the hub holds them right after they were declared (prior = effective)."""
    return [AgentCapability(name=k, proficiency=v, declared_proficiency=v) for k, v in (spec or {}).items()]


def reqs(spec: dict[str, float] | None) -> list[RequiredCapability]:
    return [RequiredCapability(name=k, min_proficiency=v) for k, v in (spec or {}).items()]


def of(events: Iterable[ev.Event], cls: type[D]) -> list[D]:
    """The data of every event of type ``cls``, in order."""
    return [e.data for e in events if isinstance(e.data, cls)]


def one(events: Iterable[ev.Event], cls: type[D]) -> D:
    found = of(events, cls)
    assert len(found) == 1, f"expected exactly one {cls.TYPE}, got {len(found)}: {found}"
    return found[0]


def types(events: Iterable[ev.Event]) -> list[str]:
    return [e.type for e in events]


def snapshot(hive: Hive) -> bytes:
    """Everything projected, encoded (to prove a rejected command changed nothing)."""
    return msgspec.json.encode(
        {
            "agents": hive.agents,
            "tasks": hive.tasks,
            "sequence": hive.sequence,
            "status": hive.status(T0)["metrics"],
        }
    )


def facts_from(log: Iterable[ev.Event], task_ids: Iterable[str]) -> dict[str, TaskStatus | None]:
    """What ``HubService`` passes to ``handle`` for the ids the core has forgotten:
    each one's final status folded from the log, ``None`` when the log has no such task."""
    ids = tuple(task_ids)
    if not ids:
        return {}
    folded = fold_statuses(log)
    return {i: folded.get(i) for i in ids}


class Sim:
    """Drives a Hive with literal times and records everything it emits.

    ``log`` holds the event objects as returned; ``wire`` holds each event encoded
    the moment it was returned (what a store would have persisted).
    """

    def __init__(self, config: HiveConfig | None = None, *, seed: int = 0) -> None:
        self.ids = Ids()
        self.hive = Hive(config, new_id=self.ids, rng=random.Random(seed))
        self.log: list[ev.Event] = []
        self.wire: list[bytes] = []
        #: every task's status folded from ``log`` (``tasklog.fold_statuses``): where
        #: ``do`` reads the facts the core asks for, as the service reads the store
        self.statuses: dict[str, TaskStatus] = {}
        #: set (seconds) to drive two clocks: a command at ``t`` then reads the
        #: monotonic clock ``t`` and the wall clock ``at(t + wall_step)``; a test
        #: steps the system clock by changing it between commands
        self.wall_step: float | None = None

    @classmethod
    def around(cls, hive: Hive) -> Sim:
        """A driver for an existing hive (a replica folded from another's log)."""
        s = cls()
        s.hive = hive
        return s

    # -- driving ----------------------------------------------------------

    def do(self, cmd: Any, t: float | datetime) -> list[ev.Event]:
        """Handle ``cmd`` at ``t`` (seconds after ``T0``, or a datetime), with the
        facts the core asks for read from the log, as the service does."""
        unknown = self.hive.unknown_task_ids(cmd)
        facts = {i: self.statuses.get(i) for i in unknown}
        if self.wall_step is not None and not isinstance(t, datetime):
            events = self.hive.handle(cmd, at(t + self.wall_step), at(t).timestamp(), facts=facts)
        else:
            events = self.hive.handle(cmd, t if isinstance(t, datetime) else at(t), facts=facts)
        self.log.extend(events)
        self.wire.extend(ev.encode_event(e) for e in events)
        fold_statuses(events, self.statuses)
        return events

    def register(
        self,
        agent_id: str,
        capabilities: dict[str, float] | None = None,
        *,
        t: float = 0,
        max_tasks: int = 1,
        running: dict[str, int] | None = None,
        name: str | None = None,
    ) -> list[ev.Event]:
        spec = AgentSpec(
            name=name or agent_id,
            capabilities=caps(capabilities),
            max_concurrent_tasks=max_tasks,
            id=agent_id,
        )
        return self.do(RegisterAgent(spec=spec, running=running), t)

    def submit(
        self,
        task_id: str,
        requires: dict[str, float] | None = None,
        *,
        t: float = 0,
        **spec: Any,
    ) -> list[ev.Event]:
        return self.do(SubmitTask(spec=TaskSpec(id=task_id, required_capabilities=reqs(requires), **spec)), t)

    def start(
        self, task_id: str, agent_id: str | None = None, *, t: float | datetime, **kw: Any
    ) -> list[ev.Event]:
        kw.setdefault("attempt", self.task(task_id).attempt)
        return self.do(StartTask(task_id=task_id, agent_id=agent_id or self.holder(task_id), **kw), t)

    def progress(
        self, task_id: str, progress: float, agent_id: str | None = None, *, t: float | datetime, **kw: Any
    ) -> list[ev.Event]:
        kw.setdefault("attempt", self.task(task_id).attempt)
        return self.do(
            ReportProgress(
                task_id=task_id, agent_id=agent_id or self.holder(task_id), progress=progress, **kw
            ),
            t,
        )

    def complete(
        self, task_id: str, agent_id: str | None = None, *, t: float | datetime, result: Any = None, **kw: Any
    ) -> list[ev.Event]:
        kw.setdefault("attempt", self.task(task_id).attempt)
        return self.do(
            CompleteTask(task_id=task_id, agent_id=agent_id or self.holder(task_id), result=result, **kw), t
        )

    def fail(
        self,
        task_id: str,
        agent_id: str | None = None,
        *,
        t: float | datetime,
        retryable: bool = True,
        code: str = "BOOM",
        **kw: Any,
    ) -> list[ev.Event]:
        kw.setdefault("attempt", self.task(task_id).attempt)
        return self.do(
            FailTask(
                task_id=task_id,
                agent_id=agent_id or self.holder(task_id),
                error=TaskError(code, "it broke"),
                retryable=retryable,
                **kw,
            ),
            t,
        )

    def tick(self, t: float | datetime) -> list[ev.Event]:
        return self.do(Tick(id="tick"), t)

    def heartbeat(self, agent_id: str, t: float) -> list[ev.Event]:
        return self.do(Heartbeat(agent_id=agent_id), t)

    # -- looking ----------------------------------------------------------

    def task(self, task_id: str) -> Task:
        return self.hive.tasks[task_id]

    def agent(self, agent_id: str) -> Agent:
        return self.hive.agents[agent_id]

    def holder(self, task_id: str) -> str:
        holder = self.task(task_id).assigned_agent_id
        assert holder is not None, f"task {task_id} is not held"
        return holder
