"""Event schemas: the spec's 20 event types, field names, and the JSON round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.model import (
    Agent,
    AgentMetrics,
    Capability,
    RequiredCapability,
    Task,
    TaskError,
    TaskStatus,
)

from ._harness import T0, at, held_caps, reqs
from .test_hive import busy_history

# the spec sits in shared/ beside the repository (a clone elsewhere gets a copy beside it)
SPEC = next(
    (
        p
        for p in (
            Path(__file__).resolve().parents[3] / "shared" / "spec" / "websocket-api.md",
            Path("/work/shared/spec/websocket-api.md"),
        )
        if p.exists()
    ),
    Path("/work/shared/spec/websocket-api.md"),
)
SPEC_TYPE_NAMES = {
    "agent_created",
    "agent_status_changed",
    "agent_performance_updated",
    "agent_removed",
    "task_created",
    "task_assigned",
    "task_started",
    "task_progress",
    "task_completed",
    "task_failed",
    "task_cancelled",
    "hive_status_update",
    "system_alert",
    "resource_alert",
    "module_status_changed",
    "inter_module_message",
    "coordination_event",
    "learning_cycle_started",
    "learning_cycle_completed",
    "error_occurred",
}


def spec_examples() -> dict[str, dict[str, Any]]:
    """Every ```json example of the spec that is an event envelope, by event type."""
    text = SPEC.read_text(encoding="utf-8")
    found: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        try:
            doc = json.loads(block)
        except json.JSONDecodeError:
            continue  # e.g. the schematic envelope with "{ ... }"
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict) and doc.get("type"):
            assert doc["type"] not in found, f"two examples of {doc['type']}"
            found[doc["type"]] = doc
    return found


# ---------------------------------------------------------------- spec conformance


def test_twenty_spec_event_types() -> None:
    assert len(ev.SPEC_EVENT_TYPES) == 20
    assert {t.TYPE for t in ev.SPEC_EVENT_TYPES} == SPEC_TYPE_NAMES
    assert set(ev.DATA_TYPES) == SPEC_TYPE_NAMES | {t.TYPE for t in ev.EXTRA_EVENT_TYPES}
    for name, cls in ev.DATA_TYPES.items():
        assert cls.TYPE == name
        assert issubclass(cls, ev.EventData)


def test_spec_has_one_example_per_spec_event_type() -> None:
    assert set(spec_examples()) == SPEC_TYPE_NAMES


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    """The Struct class behind ``tp`` (also through ``X | None``), else None."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    if get_origin(tp) in (Union, type(int | None)):
        structs = [s for s in (_struct_of(a) for a in get_args(tp)) if s is not None]
        return structs[0] if len(structs) == 1 else None
    return None


def _check_fields(path: str, value: dict[str, Any], cls: type[msgspec.Struct], problems: list[str]) -> None:
    fields = {f.name: f for f in msgspec.structs.fields(cls)}
    for key, sub in value.items():
        if key not in fields:
            problems.append(f"{path}.{key}: not a field of {cls.__name__}")
            continue
        tp = fields[key].type
        nested = _struct_of(tp)
        if nested is not None and isinstance(sub, dict):
            _check_fields(f"{path}.{key}", sub, nested, problems)
            continue
        try:
            msgspec.convert(sub, tp, strict=False)
        except msgspec.ValidationError as e:
            problems.append(f"{path}.{key}: {sub!r} does not fit {tp!r}: {e}")


@pytest.mark.parametrize("event_type", sorted(SPEC_TYPE_NAMES))
def test_spec_example_fields_exist_with_compatible_types(event_type: str) -> None:
    example = spec_examples()[event_type]
    problems: list[str] = []
    _check_fields("data", example["data"], ev.DATA_TYPES[event_type], problems)
    assert problems == []


def test_spec_envelope_keys() -> None:
    for doc in spec_examples().values():
        assert set(doc) <= {"type", "data", "timestamp", "message_id", "sequence"}
    fields = {f.name for f in msgspec.structs.fields(ev.Event)}
    assert fields == {"type", "data", "timestamp", "message_id", "sequence"}


# ---------------------------------------------------------------- round trip


def agent() -> Agent:
    return Agent(
        id="agent-1",
        name="DataProcessor-1",
        type="specialist",  # type: ignore[arg-type]
        capabilities=held_caps({"data_processing": 0.85}),
        status="idle",  # type: ignore[arg-type]
        max_concurrent_tasks=2,
        created_at=T0,
        last_seen_at=at(1),
        metrics=AgentMetrics(
            tasks_completed=3, tasks_failed=1, success_rate=0.75, average_response_time_ms=12.5
        ),
        metadata={"zone": "eu"},
    )


def task() -> Task:
    return Task(
        id="task-1",
        description="Process customer data",
        type="data_processing",
        priority=2,
        status=TaskStatus.PENDING,
        required_capabilities=reqs({"data_processing": 0.7}),
        input={"rows": [1, 2, 3], "nested": {"ok": True}},
        timeout_seconds=300.0,
        max_retries=3,
        created_at=T0,
        updated_at=T0,
        depends_on=["task-0"],
        metadata={"k": "v"},
    )


E = TaskError("EXECUTION_FAILED", "timeout", {"task_id": "task-1", "timeout_seconds": 300})
TS = at(60)

SAMPLES: list[ev.EventData] = [
    ev.AgentCreated(timestamp=TS, agent=agent(), caused_by="req-1"),
    ev.AgentStatusChanged(
        timestamp=TS, agent_id="a", old_status="idle", new_status="active", reason="task_assigned"
    ),
    ev.AgentPerformanceUpdated(
        timestamp=TS,
        agent_id="a",
        metrics=ev.PerformanceMetrics(
            tasks_completed=25, success_rate=0.92, average_response_time_ms=1250.0, capability_improvements=3
        ),
        task_type="etl",
        outcome="completed",
    ),
    ev.AgentRemoved(
        timestamp=TS,
        agent_id="a",
        reason="manual_removal",
        cleanup_summary=ev.CleanupSummary(tasks_reassigned=2, data_removed=True),
    ),
    ev.AgentUpdated(
        timestamp=TS, agent_id="a", name="n", capabilities=held_caps({"x": 0.5}), max_concurrent_tasks=3
    ),
    ev.TaskCreated(timestamp=TS, task=task(), matching_agents=3),
    ev.TaskAssigned(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        assignment_reason="capability_match",
        estimated_completion=at(1800),
        attempt_number=2,
        score=0.75,
        score_breakdown={"proficiency": 0.8},
        candidates=4,
    ),
    ev.TaskStarted(timestamp=TS, task_id="t", agent_id="a", attempt_number=1),
    ev.TaskProgress(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        progress=0.75,
        current_step="batch 3/4",
        estimated_completion=at(90),
    ),
    ev.TaskCompleted(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        execution_time_ms=240000.0,
        result={"records": 10000},
        quality=0.9,
    ),
    ev.TaskFailed(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        attempt_number=1,
        error=E,
        retry_scheduled=True,
        next_retry_at=at(70),
        failure_kind="timeout",
        execution_time_ms=5.5,
    ),
    ev.TaskFailed(timestamp=TS, task_id="t", agent_id=None, attempt_number=0, error=E, retry_scheduled=False),
    ev.TaskCancelled(
        timestamp=TS,
        task_id="t",
        reason="manual_cancellation",
        cancelled_by="user-123",
        previous_status="running",
    ),
    ev.TaskRetried(timestamp=TS, task_id="t", previous_status="failed", requested_by="api"),
    ev.TaskReleased(timestamp=TS, task_id="t", agent_id="a", attempt_number=1, reason="agent_shutdown"),
    ev.TaskRecalled(timestamp=TS, task_id="t", agent_id="a", attempt_number=1, for_agent_id="b"),
    ev.HiveStatusUpdate(
        timestamp=TS,
        status="healthy",
        metrics=ev.HiveMetrics(
            total_agents=5, active_agents=3, pending_tasks=8, completed_tasks_today=142, system_load=0.65
        ),
        alerts=[ev.Alert(level="warning", message="High memory usage detected", timestamp=TS)],
    ),
    ev.SystemAlert(
        timestamp=TS,
        level="critical",
        title="Database Connection Lost",
        message="Unable to connect",
        details={"affected_components": ["task_management"]},
    ),
    ev.ResourceAlert(
        timestamp=TS,
        resource="cpu",
        usage_percent=85.2,
        threshold_percent=80.0,
        trend="increasing",
        recommendations=["scale up"],
    ),
    ev.ModuleStatusChanged(
        timestamp=TS,
        module="background_processes",
        old_status="healthy",
        new_status="degraded",
        reason="High CPU",
        affected_functions=["learning_cycle"],
    ),
    ev.InterModuleMessage(
        timestamp=TS,
        from_module="task_management",
        to_module="metrics_collection",
        message_type="TaskCompleted",
        payload={"task_id": "t"},
    ),
    ev.CoordinationEvent(
        timestamp=TS, event_type="SwarmOptimization", module="coordinator", details={"agents_rebalanced": 3}
    ),
    ev.LearningCycleStarted(
        timestamp=TS,
        cycle_id="c",
        agent_id="a",
        learning_type="capability_improvement",
        target_capability="x",
        estimated_duration_minutes=15.0,
    ),
    ev.LearningCycleCompleted(
        timestamp=TS,
        cycle_id="c",
        agent_id="a",
        improvements={"x_proficiency": ev.Improvement(old_value=0.85, new_value=0.88, improvement=0.03)},
        duration_ms=900000.0,
    ),
    ev.ErrorOccurred(timestamp=TS, error_id="err-1", component="task_executor", error=E, severity="error"),
    ev.AgentLearningReset(
        timestamp=TS,
        agent_id="a",
        capabilities={"x": ev.Improvement(old_value=0.925, new_value=0.9, improvement=-0.025)},
        requested_by="operator",
    ),
    ev.QuotaSet(
        timestamp=TS, name="openai-main", tokens_per_minute=60_000, max_concurrent=4, requested_by="ops"
    ),
    ev.QuotaDeleted(timestamp=TS, name="openai-main", requested_by="ops"),
    ev.BudgetSet(
        timestamp=TS, owner="alice", tokens_per_day=1_000_000, cost_usd_per_day=5.0, requested_by="ops"
    ),
    ev.BudgetDeleted(timestamp=TS, owner="alice", requested_by="ops"),
    ev.TaskApprovalRequested(timestamp=TS, task_id="t", requested_by="alice"),
    ev.TaskApproved(timestamp=TS, task_id="t", approved_by="bob", comment="ok"),
    ev.TaskRejected(timestamp=TS, task_id="t", rejected_by="bob", reason="too costly"),
    ev.TaskInputRequired(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        attempt_number=1,
        request_id="q1",
        question="Ship it?",
        choices=["yes", "no"],
        timeout_seconds=60.0,
        deadline=TS,
    ),
    ev.TaskInputReceived(
        timestamp=TS,
        task_id="t",
        agent_id="a",
        attempt_number=1,
        request_id="q1",
        answer="yes",
        answered_by="bob",
    ),
]


def envelope(data: ev.EventData, sequence: int = 7) -> ev.Event:
    return ev.Event(type=data.TYPE, data=data, timestamp=data.timestamp, message_id="m-1", sequence=sequence)


def test_samples_cover_every_event_type() -> None:
    assert {type(d) for d in SAMPLES} == set(ev.DATA_TYPES.values())


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: d.TYPE)
def test_round_trip(data: ev.EventData) -> None:
    event = envelope(data)
    body = ev.encode_event(event)
    back = ev.decode_event(body)
    assert back == event
    assert type(back.data) is type(data)
    assert ev.encode_event(back) == body


@pytest.mark.parametrize("data", SAMPLES, ids=lambda d: d.TYPE)
def test_wire_shape(data: ev.EventData) -> None:
    doc = json.loads(ev.encode_event(envelope(data)))
    assert set(doc) == {"type", "data", "timestamp", "message_id", "sequence"}
    assert doc["type"] == data.TYPE
    assert doc["timestamp"] == "2024-01-01T12:01:00Z"
    assert doc["data"]["timestamp"] == "2024-01-01T12:01:00Z"
    assert "TYPE" not in doc["data"]


def test_round_trip_of_everything_the_hive_emits() -> None:
    s = busy_history()
    for body in s.wire:
        event = ev.decode_event(body)
        assert type(event.data) is ev.DATA_TYPES[event.type]
        assert ev.decode_event(ev.encode_event(event)) == event


def test_enums_encode_as_spec_strings() -> None:
    doc = json.loads(ev.encode_event(envelope(SAMPLES[0])))
    a = doc["data"]["agent"]
    assert (a["type"], a["status"]) == ("specialist", "idle")
    assert a["capabilities"] == [
        {"name": "data_processing", "proficiency": 0.85, "learning_rate": 0.1, "declared_proficiency": 0.85}
    ]
    doc = json.loads(ev.encode_event(envelope(SAMPLES[5])))
    t = doc["data"]["task"]
    assert t["status"] == "pending" and t["priority"] == 2
    assert t["required_capabilities"] == [{"name": "data_processing", "min_proficiency": 0.7}]


def test_decode_rejects_unknown_type() -> None:
    body = ev.encode_event(envelope(SAMPLES[1])).replace(b'"agent_status_changed"', b'"no_such_event"', 1)
    with pytest.raises(KeyError):
        ev.decode_event(body)


def test_decode_rejects_invalid_data() -> None:
    body = ev.encode_event(envelope(SAMPLES[7])).replace(b'"attempt_number":1', b'"attempt_number":"one"')
    with pytest.raises(msgspec.ValidationError):
        ev.decode_event(body)


def test_capability_and_requirement_defaults() -> None:
    assert msgspec.json.decode(b'{"name":"x","proficiency":0.5}', type=Capability).learning_rate == 0.1
    assert msgspec.json.decode(b'{"name":"x"}', type=RequiredCapability).min_proficiency == 0.0
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"name":"x","proficiency":1.5}', type=Capability)


def test_field_checker_reports_unknown_keys_and_bad_types() -> None:
    problems: list[str] = []
    _check_fields(
        "data",
        {"agent_id": "a", "bogus": 1, "metrics": {"tasks_completed": "many"}},
        ev.AgentPerformanceUpdated,
        problems,
    )
    assert len(problems) == 2
    assert "data.bogus" in problems[0] and "data.metrics.tasks_completed" in problems[1]
