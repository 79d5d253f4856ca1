"""Wire messages -> core commands; replica-to-replica calls both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from hivehub.core import commands as C
from hivehub.core import errors as E
from hivehub.core import events as ev
from hivehub.core.errors import InvalidInput, PayloadTooLarge, TaskNotFound
from hivehub.protocol import codec
from hivehub.protocol.errors import UnknownMessageType
from hivehub.protocol.limits import check_depth, convert_object


def test_agent_reports_become_the_commands_of_their_rest_routes() -> None:
    rid = "agent:a1:m"
    assert codec.agent_command("a1", "heartbeat", {}, "m") == C.Heartbeat(id=rid, agent_id="a1")
    assert codec.agent_command("a1", "task_started", {"task_id": "t", "attempt": 2}, "m") == C.StartTask(
        id=rid, task_id="t", agent_id="a1", attempt=2
    )
    p = codec.agent_command("a1", "task_progress", {"task_id": "t", "attempt": 1, "progress": 0.5}, "m")
    assert isinstance(p, C.ReportProgress) and p.progress == 0.5 and p.current_step is None
    c = codec.agent_command("a1", "task_completed", {"task_id": "t", "attempt": 1, "result": {"x": 1}}, "m")
    assert isinstance(c, C.CompleteTask) and c.result == {"x": 1}
    f = codec.agent_command("a1", "task_failed", {"task_id": "t", "attempt": 1, "retryable": False}, "m")
    assert isinstance(f, C.FailTask) and f.retryable is False and f.error.code == "AGENT_ERROR"
    r = codec.agent_command("a1", "task_released", {"task_id": "t", "attempt": 1}, "m")
    assert isinstance(r, C.ReleaseTask) and r.reason == "agent_shutdown"


@pytest.mark.parametrize(
    ("typ", "data", "exc"),
    [
        ("task_started", {}, InvalidInput),
        ("task_started", {"task_id": "t", "attempt": "1"}, InvalidInput),
        ("task_progress", {"task_id": "t", "progress": 2.0}, msgspec.ValidationError),
        ("task_progress", {"task_id": "t", "current_step": "s" * (C.STEP_MAX + 1)}, msgspec.ValidationError),
        ("task_released", {"task_id": "t", "reason": "r" * (C.REASON_MAX + 1)}, msgspec.ValidationError),
        ("task_completed", {"task_id": "t", "quality": -0.1}, msgspec.ValidationError),
        ("task_failed", {"task_id": "t", "error": {"code": "X"}}, msgspec.ValidationError),
        ("task_exploded", {"task_id": "t"}, UnknownMessageType),
    ],
)
def test_bad_reports_are_refused_before_any_command(
    typ: str, data: dict[str, object], exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        codec.agent_command("a1", typ, data, None)


def test_stream_requests() -> None:
    s = codec.subscribe({"types": "task_created", "task_id": None})
    assert s.types == "task_created" and s.task_id is None and s.agent_id is msgspec.UNSET
    with pytest.raises(InvalidInput):
        codec.subscribe({"agent_id": ["a"]})
    cancel = codec.cancel_task({"task_id": "t"}, "ws:1")
    assert cancel == C.CancelTask(id="ws:1", task_id="t", reason="manual_cancellation", cancelled_by="ws")
    with pytest.raises(InvalidInput):
        codec.cancel_task({}, "ws:1")
    submit = codec.create_task({"type": "t", "max_retries": 2.0}, "ws:2", 64)  # 2.0 counts as an integer
    assert submit.spec.max_retries == 2 and submit.created_by == "ws"


def test_register_keeps_running_apart_from_the_spec() -> None:
    spec, running = codec.register({"name": "n", "running": {"t": 3}}, 64)
    assert spec.name == "n" and running == {"t": 3}
    with pytest.raises(PayloadTooLarge):
        codec.register({"name": "n", "metadata": {"a": {"b": {"c": 1}}}}, 3)


def test_limits() -> None:
    check_depth({"a": [1]}, 3)
    with pytest.raises(PayloadTooLarge):
        check_depth({"a": [[1]]}, 3)
    with pytest.raises(InvalidInput):
        convert_object([], C.TaskSpec, 64)


def test_forwarded_commands_round_trip() -> None:
    cmds: list[C.Command] = [
        C.Heartbeat(id="h", agent_id="a"),
        C.SubmitTask(id="s", spec=C.TaskSpec(type="t", id="t1"), created_by="api"),
    ]
    assert codec.decode_forwarded(codec.encode_forwarded(cmds)) == cmds
    with pytest.raises(Exception, match="unknown command"):
        codec.decode_forwarded(b'{"commands": [{"command": "Observe", "data": {}}]}')


def test_forwarded_results_round_trip_with_the_same_error_classes() -> None:
    e = ev.Event(
        type="task_progress",
        data=ev.TaskProgress(
            timestamp=datetime(2026, 1, 1, tzinfo=UTC), task_id="t", agent_id="a", progress=0.5
        ),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        message_id="m-1",
        sequence=1,
    )
    back = codec.decode_results(codec.encode_results([[e], TaskNotFound("no task x", task_id="x")]))
    assert back[0] == [e]
    err = back[1]
    assert isinstance(err, TaskNotFound) and err.details == {"task_id": "x"} and err.message == "no task x"


# ----------------------------------------------------------------- hub -> agent (decode_hub_message)


def _now() -> datetime:
    return datetime(2025, 1, 1, tzinfo=UTC)


def test_the_agent_decodes_the_frames_the_hub_encodes() -> None:
    from hivehub.core.model import Agent, AgentStatus, AgentType, Task, TaskStatus
    from hivehub.protocol.frames import error_message, message
    from hivehub.protocol.messages import Ack, Assign, Cancel, Registered

    agent = Agent("a1", "n", AgentType.WORKER, [], AgentStatus.IDLE, 1, _now(), _now())
    task = Task("t1", "d", "x", 2, TaskStatus.ASSIGNED, [], {"k": [1]}, 30.0, 3, _now(), _now(), attempt=2)
    frames = [
        message("registered", Registered("a1", agent, 5.0, 15.0, 1 << 20), "r-1"),
        message("assign", Assign(task, 2)),
        message("cancel", Cancel("t1", None, "timeout")),
        message("ack", Ack("task_started", "t1"), "m-1"),
    ]
    decoded = [codec.decode_hub_message(f) for f in frames]
    assert [m.type for m in decoded] == ["registered", "assign", "cancel", "ack"]
    assert decoded[0].message_id == "r-1" and decoded[0].data == Registered("a1", agent, 5.0, 15.0, 1 << 20)
    assert decoded[1].message_id is None and decoded[1].data == Assign(task, 2)
    assert decoded[2].data == Cancel("t1", None, "timeout")
    assert decoded[3].data == Ack("task_started", "t1")
    err = codec.decode_hub_message(error_message(E.NotTaskHolder("stale", current_attempt=3), "m-2"))
    assert isinstance(err.data, E.NotTaskHolder) and err.message_id == "m-2"
    assert (err.data.code, err.data.message, err.data.details) == (
        "not_task_holder",
        "stale",
        {"current_attempt": 3},
    )


def test_a_hub_frame_of_an_unknown_type_decodes_without_data_and_a_bad_one_raises() -> None:
    assert codec.decode_hub_message(b'{"type": "brand_new", "data": {"x": 1}}') == ("brand_new", None, None)
    assert codec.decode_hub_message(b'{"type": "pong", "data": null, "message_id": 7}') == (
        "pong",
        None,
        None,
    )
    with pytest.raises(msgspec.ValidationError):
        codec.decode_hub_message(b'{"type": "assign", "data": {"task": {"id": "t1"}, "attempt": 1}}')
    with pytest.raises(msgspec.ValidationError):
        codec.decode_hub_message(b'{"data": {}}')
    with pytest.raises(msgspec.DecodeError):
        codec.decode_hub_message(b"{not json")


def test_a_rest_error_body_is_rebuilt_as_its_class() -> None:
    exc = codec.decode_error_body(
        b'{"error": {"code": "agent_exists", "message": "m", "details": {"id": "a"}}}'
    )
    assert isinstance(exc, E.AgentExists) and exc.details == {"id": "a"}
    assert codec.decode_error_body(b"<html>bad gateway</html>") is None
