"""Wire messages -> core commands, and events and errors -> bytes.

Every adapter decodes through here, so a message means the same on every
transport: ``task_started`` over ``/agents/ws`` and ``POST
/api/tasks/{id}/start`` become the same :class:`~hivehub.core.commands.StartTask`.
Functions take decoded JSON (``data`` of an envelope, see
:func:`.frames.parse_envelope`) and raise a :class:`~hivehub.core.errors.HiveError`
(or a ``msgspec.ValidationError``, which :func:`.errors.translate` maps) for
anything not acceptable, before any command exists.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec

from ..core import commands as C
from ..core import events as ev
from ..core.errors import CursorOutOfRange, HiveError, InvalidInput
from ..core.events import DATA_TYPES
from .errors import UnknownMessageType, error_data, rebuild
from .limits import check_depth, convert_object
from .messages import (
    AGENT_FRAMES,
    AGENT_REPORTS,
    STREAM_REQUESTS,
    Ack,
    AgentReport,
    Assign,
    Cancel,
    CancelTaskRequest,
    CompleteReport,
    ErrorBody,
    ErrorDetail,
    FailReport,
    ForwardedBatch,
    ForwardedCommand,
    ForwardedResults,
    InputFrame,
    InputRequestBody,
    InputRequestReport,
    ProgressReport,
    Recall,
    Registered,
    ReleaseReport,
    Subscribe,
    TaskCompleted,
    TaskFailed,
    TaskProgress,
    TaskReleased,
    TaskStarted,
)

encode_event = ev.encode_event
decode_event = ev.decode_event

# ----------------------------------------------------------------- query parameters (/ws, /api/events)


def parse_types(raw: str | list[str] | None) -> frozenset[str] | None:
    if raw is None or raw == "" or raw == []:
        return None
    names = [t.strip() for t in raw.split(",")] if isinstance(raw, str) else [str(t).strip() for t in raw]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in DATA_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown event types: {', '.join(unknown)}", unknown=unknown, known=sorted(DATA_TYPES)
        )
    return frozenset(names) or None


def parse_since(raw: str | None) -> int | None:
    """The ``since`` query parameter of ``/ws`` and ``/api/events``: absent, or an integer >= 0."""
    if raw is None or raw == "":
        return None
    try:
        since = int(raw)
    except ValueError:
        raise InvalidInput("since must be an integer sequence", parameter="since", value=raw[:100]) from None
    if since < 0:
        raise InvalidInput("since must be >= 0", parameter="since", value=since)
    return since


def check_since(since: int, head: int) -> None:
    """A cursor beyond the head of the log is refused, on ``/ws`` and ``/api/events`` alike.

    Answering with the head instead would hide that the client's cursor belongs to
    another log (a reset database) or a replica ahead of this one; streaming from the
    head would make a client that drops ``sequence <= cursor`` silently skip events."""
    if since > head:
        raise CursorOutOfRange(
            f"since={since} is beyond the head of the log ({head}); resume from at most {head}",
            since=since,
            head=head,
        )


# ----------------------------------------------------------------- /ws control messages


def subscribe(data: dict[str, Any]) -> Subscribe:
    """``subscribe``: every field is validated before the caller changes any filter
    (a list or dict as an id would break the fan-out's set lookups)."""
    raw_types = data.get("types")
    if (
        raw_types is not None
        and not isinstance(raw_types, str)
        and not (isinstance(raw_types, list) and all(isinstance(t, str) for t in raw_types))
    ):
        raise InvalidInput("subscribe: types must be a string or a list of strings", parameter="types")
    for key in ("agent_id", "task_id"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InvalidInput(f"subscribe: {key} must be a string or null", parameter=key)
    return msgspec.convert(data, Subscribe)


def create_task(data: dict[str, Any], rid: str, max_depth: int) -> C.SubmitTask:
    """``create_task``: its data is a ``TaskSpec``, as the body of ``POST /api/tasks``."""
    spec = convert_object(data, C.TaskSpec, max_depth)
    return C.SubmitTask(id=rid, spec=spec, created_by="ws")


def cancel_task(data: dict[str, Any], rid: str) -> C.CancelTask:
    if not isinstance(data.get("task_id"), str):
        raise InvalidInput("cancel_task needs data.task_id")
    req = msgspec.convert(data, CancelTaskRequest)
    # convert, not the constructor: it checks the free-text limits
    return msgspec.convert(
        {
            "id": rid,
            "task_id": req.task_id,
            "reason": req.reason or "manual_cancellation",
            "cancelled_by": req.cancelled_by or "ws",
        },
        C.CancelTask,
    )


def unknown_stream_request(typ: str) -> UnknownMessageType:
    return UnknownMessageType(f"unknown message type {typ!r}", known=list(STREAM_REQUESTS))


# ----------------------------------------------------------------- /agents/ws frames


def register(data: dict[str, Any], max_depth: int) -> tuple[C.AgentSpec, dict[str, int] | None]:
    """``register``'s data: an ``AgentSpec`` (as ``POST /api/agents``, with the same
    depth limit) plus ``running``, the ``{task_id: attempt}`` it still runs."""
    check_depth(data, max_depth)
    data = dict(data)
    running = data.pop("running", None)
    spec = msgspec.convert(data, C.AgentSpec)
    running_map = msgspec.convert(running, dict[str, int]) if running is not None else None
    return spec, running_map


def agent_command(agent_id: str, typ: str, data: dict[str, Any], mid: Any) -> C.Command:
    """An agent's report -> the command it stands for (the same as its REST route's)."""
    rid = f"agent:{agent_id}:{mid}"
    if typ == "heartbeat":
        return C.Heartbeat(id=rid, agent_id=agent_id)
    frame_type = AGENT_FRAMES.get(typ)
    if frame_type is None:
        raise UnknownMessageType(f"unknown message type {typ!r}", known=list(AGENT_REPORTS))
    if not isinstance(data.get("task_id"), str):
        raise InvalidInput(f"{typ} needs data.task_id")
    attempt = data.get("attempt")
    if attempt is not None and not isinstance(attempt, int):
        raise InvalidInput("attempt must be an integer")
    # one validating pass (the frame has the command's limits); then plain constructors
    f = msgspec.convert(data, frame_type)
    return report_command(f, rid=rid, task_id=f.task_id, agent_id=agent_id)


#: an agent's report, decoded: the ``data`` of an /agents/ws frame, or the body of
#: its REST route (``POST /api/tasks/{id}/<report>``, the task id from the path)
Report = TaskStarted | AgentReport
_FAILED = C.ReportedError("AGENT_ERROR", "failed")


def report_command(report: Report, *, rid: str, task_id: str, agent_id: str) -> C.Command:
    """An agent's report -> the core command it stands for, the same for both
    transports (``agent_command`` for /agents/ws frames, the REST report routes).

    Absent, null or empty optional fields take one default on both: the error
    ``AGENT_ERROR`` "failed", the release reason ``agent_shutdown``.

    Raises:
        InvalidInput: a failure's ``error`` is not a valid ``ReportedError``.
    """
    attempt = report.attempt
    if isinstance(report, TaskProgress | ProgressReport):
        return C.ReportProgress(
            id=rid,
            task_id=task_id,
            agent_id=agent_id,
            attempt=attempt,
            progress=report.progress,
            current_step=report.current_step,
            output_delta=report.output_delta or None,
            usage=report.usage,
        )
    if isinstance(report, TaskCompleted | CompleteReport):
        return C.CompleteTask(
            id=rid,
            task_id=task_id,
            agent_id=agent_id,
            attempt=attempt,
            result=report.result,
            quality=report.quality,
            usage=report.usage,
        )
    if isinstance(report, TaskFailed | FailReport):
        err = report.error or _FAILED
        if not isinstance(err, C.ReportedError):
            err = msgspec.convert(err, C.ReportedError)  # free-text limits
        return C.FailTask(
            id=rid,
            task_id=task_id,
            agent_id=agent_id,
            attempt=attempt,
            error=err.task_error(),
            retryable=report.retryable,
            usage=report.usage,
            retry_after=report.retry_after,
        )
    if isinstance(report, TaskReleased | ReleaseReport):
        reason = report.reason or "agent_shutdown"
        return C.ReleaseTask(id=rid, task_id=task_id, agent_id=agent_id, attempt=attempt, reason=reason)
    if isinstance(report, InputRequestReport | InputRequestBody):
        return C.RequestInput(
            id=rid,
            task_id=task_id,
            agent_id=agent_id,
            attempt=attempt,
            request_id=report.request_id,
            question=report.question,
            choices=report.choices,
            timeout_seconds=report.timeout_seconds,
        )
    return C.StartTask(id=rid, task_id=task_id, agent_id=agent_id, attempt=attempt)


# ----------------------------------------------------------------- hub -> agent (the SDK's side)


class _HubEnvelope(msgspec.Struct):
    type: str
    #: absent or null: no fields
    data: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))
    #: the hub echoes the sender's id; its pushes (assign, cancel) carry null
    message_id: Any = None


class HubMessage(NamedTuple):
    """One frame from the hub, decoded with the structs the hub encodes it with."""

    type: str
    #: the report (or ``register``) it answers; None for pushes
    message_id: str | None
    #: ``Registered``, ``Assign``, ``Cancel``, ``Recall``, ``InputFrame`` or ``Ack``; the error an ``error`` frame
    #: carries, rebuilt as its class (:func:`.errors.rebuild`); None for a type this
    #: version does not know (a newer hub's)
    data: Registered | Assign | Cancel | Recall | InputFrame | Ack | HiveError | None


_HUB_DATA: dict[str, msgspec.json.Decoder[Any]] = {
    "registered": msgspec.json.Decoder(Registered),
    "assign": msgspec.json.Decoder(Assign),
    "cancel": msgspec.json.Decoder(Cancel),
    "recall": msgspec.json.Decoder(Recall),
    "input": msgspec.json.Decoder(InputFrame),
    "ack": msgspec.json.Decoder(Ack),
    "error": msgspec.json.Decoder(ErrorDetail),
}
_hub_envelope = msgspec.json.Decoder(_HubEnvelope)


def decode_hub_message(raw: str | bytes) -> HubMessage:
    """A ``/agents/ws`` frame from the hub -> its typed message.

    Raises:
        msgspec.DecodeError: not JSON.
        msgspec.ValidationError: no string ``type``, or data not valid for its type."""
    env = _hub_envelope.decode(raw)
    mid = env.message_id if isinstance(env.message_id, str) else None
    dec = _HUB_DATA.get(env.type)
    if dec is None:
        return HubMessage(env.type, mid, None)
    data = dec.decode(b"{}" if bytes(env.data) == b"null" else env.data)
    if isinstance(data, ErrorDetail):
        return HubMessage(env.type, mid, rebuild(data.code, data.message, data.details))
    return HubMessage(env.type, mid, data)


def decode_error_body(raw: bytes) -> HiveError | None:
    """A REST error answer ``{"error": {...}}`` -> the error, rebuilt as its class;
    None when ``raw`` is not one."""
    try:
        err = _error_body.decode(raw).error
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return rebuild(err.code, err.message, err.details)


_error_body = msgspec.json.Decoder(ErrorBody)


# ----------------------------------------------------------------- replica to replica


def _command_types() -> dict[str, type[C.Command]]:
    out: dict[str, type[C.Command]] = {}
    todo: list[type[C.Command]] = [C.Command]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            out[sub.__name__] = sub
            todo.append(sub)
    out.pop("Observe", None)  # observations are made by the leader itself
    return out


#: the commands a follower may forward, by class name
COMMANDS = _command_types()
_batch_dec = msgspec.json.Decoder(ForwardedBatch)
_results_dec = msgspec.json.Decoder(ForwardedResults)
_enc = msgspec.json.Encoder()


def encode_forwarded(cmds: list[C.Command]) -> bytes:
    """The body of ``POST /internal/execute``."""
    return _enc.encode(
        ForwardedBatch([ForwardedCommand(type(c).__name__, msgspec.to_builtins(c)) for c in cmds])
    )


def decode_forwarded(raw: bytes) -> list[C.Command]:
    """The leader's side. Raises for a malformed body or an unknown command."""
    body = _batch_dec.decode(raw)
    cmds: list[C.Command] = []
    for item in body.commands:
        cls = COMMANDS.get(item.command)
        if cls is None:
            raise HiveError(f"unknown command {item.command!r}")
        cmds.append(msgspec.convert(item.data, cls))
    return cmds


def encode_results(results: list[list[ev.Event] | HiveError]) -> bytes:
    """Each command's events (the stored envelopes, spliced, not re-encoded) or its error."""
    parts = []
    for res in results:
        if isinstance(res, HiveError):
            parts.append(_enc.encode({"error": error_data(res)}))
        else:
            parts.append(b'{"events":[' + b",".join(ev.encode_event(e) for e in res) + b"]}")
    return b'{"results":[' + b",".join(parts) + b"]}"


def decode_results(raw: bytes) -> list[list[ev.Event] | HiveError]:
    """The follower's side: the leader's error for a command is raised as the same class."""
    out: list[list[ev.Event] | HiveError] = []
    for r in _results_dec.decode(raw).results:
        if not isinstance(r.error, msgspec.UnsetType):
            out.append(rebuild(r.error.code, r.error.message, r.error.details))
        elif not isinstance(r.events, msgspec.UnsetType):
            out.append([ev.decode_event(bytes(e)) for e in r.events])
        else:
            out.append([])
    return out
