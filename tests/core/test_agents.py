"""Agent decisions (``core/agents.py``) through ``Hive.handle``: registration, updates, removal, recovery."""

from __future__ import annotations

import random

import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    AgentPatch,
    AgentSpec,
    CompleteTask,
    EvictAgent,
    Recover,
    RegisterAgent,
    RemoveAgent,
    UpdateAgent,
)
from hivehub.core.errors import (
    AgentNotFound,
    InvalidInput,
    NotTaskHolder,
)
from hivehub.core.hive import Hive
from hivehub.core.model import AgentMetrics, AgentStatus, AgentType, Capability, TaskStatus

from ._harness import NO_HEARTBEAT_EXPIRY, T0, Ids, Sim, at, caps, held_caps, of, one, snapshot, types


class TestRegistration:
    def test_agent_created_carries_the_agent(self) -> None:
        s = Sim()
        spec = AgentSpec(
            name="DataProcessor-1",
            type=AgentType.SPECIALIST,
            capabilities=caps({"data_processing": 0.85}),
            max_concurrent_tasks=3,
            id="agent-1",
            metadata={"zone": "eu"},
        )
        events = s.do(RegisterAgent(id="req-1", spec=spec), 5)
        assert types(events) == ["agent_created"]
        e = events[0]
        assert e.timestamp == at(5) and e.data.timestamp == at(5)
        assert e.data.caused_by == "req-1"
        a = one(events, ev.AgentCreated).agent
        assert a.id == "agent-1"
        assert a.name == "DataProcessor-1"
        assert a.type == "specialist"
        assert [(c.name, c.proficiency, c.learning_rate) for c in a.capabilities] == [
            ("data_processing", 0.85, 0.1)
        ]
        assert a.status == AgentStatus.IDLE
        assert a.max_concurrent_tasks == 3
        assert a.created_at == at(5)
        assert a.last_seen_at == at(5)
        assert a.metrics == AgentMetrics()
        assert a.current_tasks == []
        assert a.metadata == {"zone": "eu"}
        assert s.agent("agent-1").status == AgentStatus.IDLE

    def test_agent_without_id_gets_one_from_the_id_factory(self) -> None:
        hive = Hive(new_id=Ids("x"), rng=random.Random(0))
        events = hive.handle(RegisterAgent(spec=AgentSpec(name="anon")), T0)
        agent_id = one(events, ev.AgentCreated).agent.id
        assert agent_id == "x-1"
        assert list(hive.agents) == ["x-1"]
        # message ids: a per-hive prefix drawn from the injected rng, and the sequence
        assert events[0].message_id.endswith("-1")
        again = Hive(new_id=Ids("x"), rng=random.Random(0)).handle(
            RegisterAgent(spec=AgentSpec(name="anon")), T0
        )
        assert again[0].message_id == events[0].message_id  # deterministic given the rng
        other = Hive(new_id=Ids("x"), rng=random.Random(1)).handle(
            RegisterAgent(spec=AgentSpec(name="anon")), T0
        )
        assert other[0].message_id != events[0].message_id

    def test_re_register_of_an_online_agent_with_the_same_spec_emits_nothing(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.5})
        assert s.register("a", {"x": 0.5}, t=3) == []
        assert s.agent("a").last_seen_at == at(3)

    def test_re_register_with_a_new_spec_emits_agent_updated(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.5})
        events = s.register("a", {"x": 0.9, "y": 0.2}, t=1, max_tasks=4, name="renamed")
        u = one(events, ev.AgentUpdated)
        assert u.agent_id == "a" and u.name == "renamed" and u.max_concurrent_tasks == 4
        assert u.capabilities == held_caps({"x": 0.9, "y": 0.2})
        a = s.agent("a")
        assert (a.name, a.max_concurrent_tasks, a.capabilities) == (
            "renamed",
            4,
            held_caps({"x": 0.9, "y": 0.2}),
        )

    def test_re_register_after_offline_is_a_reconnect(self) -> None:
        s = Sim()
        s.register("a")
        s.do(AgentDisconnected(agent_id="a"), 1)
        assert s.agent("a").status == AgentStatus.OFFLINE
        events = s.register("a", t=2)
        assert types(events) == ["agent_status_changed"]
        c = one(events, ev.AgentStatusChanged)
        assert (c.agent_id, c.old_status, c.new_status, c.reason) == ("a", "offline", "idle", "reconnected")
        assert s.agent("a").status == AgentStatus.IDLE

    def test_reconnect_of_an_agent_holding_tasks_goes_active(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, running={"t1": 1})
        c = one(events, ev.AgentStatusChanged)
        assert (c.old_status, c.new_status, c.reason) == ("offline", "active", "reconnected")
        assert of(events, ev.TaskFailed) == []
        assert s.task("t1").status == TaskStatus.RUNNING
        assert s.agent("a").current_tasks == ["t1"]

    def test_register_with_empty_running_fails_the_lost_running_task_with_retry(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("run")
        s.submit("held")
        s.start("run", t=1)
        assert s.task("held").status == TaskStatus.ASSIGNED
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, max_tasks=2, running={})
        f = one(events, ev.TaskFailed)
        assert f.task_id == "run" and f.agent_id == "a" and f.attempt_number == 1
        assert f.error.code == "AGENT_LOST"
        assert f.retry_scheduled is True and f.next_retry_at is not None and f.next_retry_at > at(3)
        assert f.failure_kind == "agent_lost"
        assert s.task("run").status == TaskStatus.PENDING
        assert s.task("run").assigned_agent_id is None
        # an assigned (not yet started) task is not "lost": the agent may not have received it yet
        assert s.task("held").status == TaskStatus.ASSIGNED
        assert s.agent("a").current_tasks == ["held"]

    def test_evicted_agent_goes_offline_and_its_tasks_are_requeued_at_once(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("run")
        s.submit("held")
        s.start("run", t=1)
        events = s.do(EvictAgent(agent_id="a"), 2)
        c = one(events, ev.AgentStatusChanged)
        assert (c.new_status, c.reason) == ("offline", "token_revoked")
        failed = of(events, ev.TaskFailed)
        assert sorted(f.task_id for f in failed) == ["held", "run"]
        assert all(f.failure_kind == "agent_lost" and f.retry_scheduled and f.agent_id == "a" for f in failed)
        assert s.agent("a").current_tasks == []
        assert s.task("run").status == TaskStatus.PENDING and s.task("held").status == TaskStatus.PENDING
        # a late report of the evicted attempt is refused
        with pytest.raises(NotTaskHolder):
            s.do(CompleteTask(task_id="run", agent_id="a", attempt=1, result=1), 3)
        with pytest.raises(AgentNotFound):
            s.do(EvictAgent(agent_id="nobody"), 3)

    def test_reconnect_that_lost_its_only_task_goes_straight_to_idle(self) -> None:
        # idle/active follows load once per command (see Hive._settle_agents): a reconnect
        # whose only task was lost must not flap offline -> active -> idle
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3, running={})
        changes = [(c.old_status, c.new_status, c.reason) for c in of(events, ev.AgentStatusChanged)]
        assert changes == [("offline", "idle", "reconnected")]
        assert s.agent("a").status == AgentStatus.IDLE

    def test_register_with_running_of_an_old_attempt_fails_the_current_one(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        events = s.register("a", t=2, running={"t1": 7})
        assert one(events, ev.TaskFailed).error.code == "AGENT_LOST"

    def test_register_without_running_keeps_tasks(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        s.submit("t1")
        s.start("t1", t=1)
        s.do(AgentDisconnected(agent_id="a"), 2)
        events = s.register("a", t=3)
        assert of(events, ev.TaskFailed) == []
        assert s.task("t1").status == TaskStatus.RUNNING


class TestUpdateAgent:
    def test_patch_changes_capabilities_and_makes_a_pending_task_assignable(self) -> None:
        s = Sim()
        s.register("a", {"x": 0.2})
        s.submit("t1", {"x": 0.5})
        assert s.task("t1").status == TaskStatus.PENDING
        events = s.do(UpdateAgent(agent_id="a", patch=AgentPatch(capabilities=caps({"x": 0.6}))), 1)
        assert types(events)[:2] == ["agent_updated", "task_assigned"]
        assert one(events, ev.TaskAssigned).agent_id == "a"

    def test_more_slots_take_waiting_tasks(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a")
        for i in range(3):
            s.submit(f"t{i}")
        events = s.do(UpdateAgent(agent_id="a", patch=AgentPatch(max_concurrent_tasks=3)), 1)
        assert [x.task_id for x in of(events, ev.TaskAssigned)] == ["t1", "t2"]
        assert s.agent("a").current_tasks == ["t0", "t1", "t2"]

    def test_empty_patch_is_invalid_input(self) -> None:
        s = Sim()
        s.register("a")
        before = snapshot(s.hive)
        with pytest.raises(InvalidInput):
            s.do(UpdateAgent(agent_id="a", patch=AgentPatch()), 1)
        assert snapshot(s.hive) == before

    def test_unknown_agent(self) -> None:
        s = Sim()
        with pytest.raises(AgentNotFound):
            s.do(UpdateAgent(agent_id="ghost", patch=AgentPatch(name="n")), 1)

    def test_duplicate_capability_names_are_invalid_input_on_register_and_patch(self) -> None:
        s = Sim()
        twice = [Capability(name="x", proficiency=0.2), Capability(name="x", proficiency=0.9)]
        with pytest.raises(InvalidInput) as exc:
            s.do(RegisterAgent(spec=AgentSpec(name="a", id="a", capabilities=twice)), 0)
        assert exc.value.code == "invalid_input" and exc.value.details == {"capability": "x"}
        assert s.hive.agents == {}
        s.register("a", {"x": 0.5})
        before = snapshot(s.hive)
        with pytest.raises(InvalidInput):
            s.do(UpdateAgent(agent_id="a", patch=AgentPatch(capabilities=twice)), 1)
        assert snapshot(s.hive) == before


# ---------------------------------------------------------------- submit


class TestRemoveAgent:
    def test_held_tasks_are_released_and_reassigned(self) -> None:
        s = Sim(NO_HEARTBEAT_EXPIRY)
        s.register("a", max_tasks=2)
        s.submit("t1")
        s.submit("t2")
        s.start("t1", t=1)
        s.register("b", t=2, max_tasks=3)
        s.submit("t3", t=2)
        assert s.holder("t3") == "b"
        assert s.agent("a").current_tasks == ["t1", "t2"]
        events = s.do(RemoveAgent(agent_id="a", reason="decommissioned"), 3)
        released = of(events, ev.TaskReleased)
        assert [(r.task_id, r.agent_id, r.reason) for r in released] == [
            ("t1", "a", "agent_removed"),
            ("t2", "a", "agent_removed"),
        ]
        removed = one(events, ev.AgentRemoved)
        assert removed.agent_id == "a" and removed.reason == "decommissioned"
        assert removed.cleanup_summary.tasks_reassigned == 2
        assert removed.cleanup_summary.data_removed is True
        assert "a" not in s.hive.agents
        assigned = of(events, ev.TaskAssigned)
        assert sorted(x.task_id for x in assigned) == ["t1", "t2"]
        assert {x.agent_id for x in assigned} == {"b"}
        assert all(x.attempt_number == 2 for x in assigned)
        assert types(events).index("agent_removed") < types(events).index("task_assigned")
        assert s.task("t1").failures == 0  # releasing is not a failure

    def test_remove_idle_agent(self) -> None:
        s = Sim()
        s.register("a")
        events = s.do(RemoveAgent(agent_id="a"), 1)
        removed = one(events, ev.AgentRemoved)
        assert removed.reason == "manual_removal" and removed.cleanup_summary.tasks_reassigned == 0
        assert s.hive.agents == {}
        assert s.tick(100) == []  # its liveness entry is ignored

    def test_remove_unknown_agent(self) -> None:
        with pytest.raises(AgentNotFound):
            Sim().do(RemoveAgent(agent_id="ghost"), 0)


class TestRecover:
    def test_online_agents_go_offline_with_reason_hub_restarted(self) -> None:
        s = Sim()
        s.register("idle", t=0)
        s.register("busy", t=0)
        s.register("gone", t=0)
        s.do(AgentDisconnected(agent_id="gone"), 1)
        s.submit("t1", t=1, timeout_seconds=1000)
        assert s.holder("t1") == "busy"
        events = s.do(Recover(), 100)
        changes = {
            c.agent_id: (c.old_status, c.new_status, c.reason) for c in of(events, ev.AgentStatusChanged)
        }
        assert changes == {
            "idle": ("idle", "offline", "hub_restarted"),
            "busy": ("active", "offline", "hub_restarted"),
        }
        assert s.task("t1").status == TaskStatus.ASSIGNED  # kept for one heartbeat timeout
        # the heartbeat timeout counts from the restart, not from before it
        assert s.tick(114) == []
        assert one(s.register("busy", t=110, running={}), ev.AgentStatusChanged).reason == "reconnected"
        assert s.task("t1").status == TaskStatus.ASSIGNED
        assert s.tick(116) == []  # "busy" was heard at 110; the others are offline and hold nothing
        events = s.tick(126)
        assert one(events, ev.AgentStatusChanged).reason == "heartbeat_timeout"
        assert one(events, ev.TaskFailed).task_id == "t1"

    def test_tasks_of_an_agent_that_does_not_come_back_are_requeued(self) -> None:
        s = Sim()
        s.register("a", t=0)
        s.submit("t1", t=0, timeout_seconds=1000)
        s.do(Recover(), 50)
        events = s.tick(66)
        f = one(events, ev.TaskFailed)
        assert (f.task_id, f.error.code) == ("t1", "AGENT_LOST")


# ---------------------------------------------------------------- status
