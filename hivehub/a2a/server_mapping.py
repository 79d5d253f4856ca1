"""The hive as an A2A agent: how the hub's objects become A2A's, and back. No I/O.

* **Agent Card** (:func:`agent_card`): one skill per capability that some online
  (and not draining) agent offers, built from the agents the caller passes in.
* **Message -> task** (:func:`task_spec_for`): the skill (``metadata.skill``) is the
  required capability; text parts become ``{"prompt": text}``, data parts' objects
  are merged in, url parts are listed under ``"files"``.
* **Hub events -> A2A events** (:class:`TaskTranslator`): a fold over one task's hub
  events, oldest first, that answers the A2A events each one becomes, each with a
  position ``"<sequence>.<part>"`` (``metadata.hive.position``). A resubscribe names
  the last position it saw and gets exactly the events after it.
* **Errors** (:func:`a2a_error`): the hub's error classes to A2A JSON-RPC errors,
  the hub's ``code`` kept in the error data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils import errors as A
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.struct_pb2 import Struct, Value

from ..core import errors as E

#: A2A event types a stream yields
A2AEvent = Task | TaskStatusUpdateEvent | TaskArtifactUpdateEvent

#: where the position token and the hub's own fields go in an event's metadata
META_KEY = "hive"
#: keys of ``metadata.hive`` on SendMessage that shape the hub task
SPEC_KEYS = ("type", "priority", "timeout_seconds", "max_retries", "description", "requires_approval")
#: the longest capability name the hub accepts (``core.model.Name``)
NAME_MAX = 200

STATE = {
    "pending": TaskState.TASK_STATE_SUBMITTED,
    "assigned": TaskState.TASK_STATE_WORKING,
    "running": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
    "awaiting_approval": TaskState.TASK_STATE_SUBMITTED,
    "input_required": TaskState.TASK_STATE_INPUT_REQUIRED,
}
FINAL = frozenset(
    {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}
)
#: where a stream ends: a final state, or an interrupted one (someone must answer)
STREAM_ENDS = FINAL | {TaskState.TASK_STATE_INPUT_REQUIRED}
#: A2A list filter -> the hub statuses it covers
HUB_STATUSES: dict[int, tuple[str, ...]] = {}
for _hub, _a2a in STATE.items():
    HUB_STATUSES.setdefault(_a2a, ())
    HUB_STATUSES[_a2a] += (_hub,)


# ------------------------------------------------------------------ positions


@dataclass(frozen=True, order=True)
class Position:
    """Where an A2A event stands in the hub's log: the hub event's ``sequence`` and
    the index of the A2A event among those it became."""

    sequence: int
    part: int = 0

    def __str__(self) -> str:
        return f"{self.sequence}.{self.part}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """``"12.1"`` (or ``"12"``: after every part of 12). Raises ``InvalidParamsError``."""
        raw = text.strip()
        seq, dot, part = raw.partition(".")
        try:
            p = cls(int(seq), int(part) if dot else 1_000_000)
        except ValueError:
            p = cls(-1)
        if p.sequence < 0 or p.part < 0:
            raise A.InvalidParamsError(
                f"bad position {text!r}: expected '<sequence>.<part>' as sent in metadata.hive.position",
                data={"code": "invalid_position", "position": text[:100]},
            )
        return p


# ------------------------------------------------------------------ the card


def skills_of(agents: Iterable[Mapping[str, Any]]) -> list[AgentSkill]:
    """One skill per capability of an online, non-draining agent (``agents``: the
    ``GET /api/agents`` objects), sorted by name."""
    best: dict[str, list[float]] = {}
    for a in agents:
        if a.get("status") not in ("idle", "active", "learning") or a.get("draining"):
            continue
        for c in a.get("capabilities") or ():
            best.setdefault(str(c["name"]), []).append(float(c.get("proficiency", 0.0)))
    out = []
    for name in sorted(best):
        profs = best[name]
        n = len(profs)
        out.append(
            AgentSkill(
                id=name,
                name=name,
                description=(
                    f"Run a '{name}' task on the hive: {n} online agent{'s' if n != 1 else ''} "
                    f"(best proficiency {max(profs):.2f}); the hub routes, retries and records it."
                ),
                tags=["hive", name],
                input_modes=["text/plain", "application/json"],
                output_modes=["text/plain", "application/json"],
            )
        )
    return out


def agent_card(base_url: str, agents: Iterable[Mapping[str, Any]], version: str) -> AgentCard:
    """The hive's Agent Card as served at ``base_url``."""
    return AgentCard(
        name="Hive Hub",
        description=(
            "A hive of agents behind one A2A endpoint: each skill is a capability some online "
            "agent offers. Name it in metadata.skill; the hub picks the agent, retries on failure "
            "and keeps every event, so a stream resumed with metadata.hive.position loses nothing."
        ),
        supported_interfaces=[
            AgentInterface(url=base_url + "/a2a", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        version=version,
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain", "application/json"],
        skills=skills_of(agents),
    )


# ------------------------------------------------------------------ message -> task


def _struct(value: Mapping[str, Any]) -> Struct:
    s = Struct()
    s.update(dict(value))
    return s


def _value(obj: Any) -> Value:
    v = Value()
    ParseDict(obj, v)
    return v


def message_input(message: Message) -> dict[str, Any]:
    """The hub task's ``input`` from an A2A message's parts (see the module docstring).

    Raises:
        InvalidParamsError: no parts, a data part that is not an object, a raw file part,
            or a data part's ``prompt`` next to text parts."""
    texts: list[str] = []
    out: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    for i, part in enumerate(message.parts):
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            data = MessageToDict(part.data)
            if not isinstance(data, dict):
                raise A.InvalidParamsError(
                    f"part {i}: a data part must hold a JSON object, not {type(data).__name__}",
                    data={"code": "invalid_input", "part": str(i)},
                )
            out.update(data)
        elif kind == "url":
            f = {"url": part.url, "media_type": part.media_type or None, "filename": part.filename or None}
            files.append({k: v for k, v in f.items() if v})
        else:
            raise A.InvalidParamsError(
                f"part {i}: {kind or 'empty'} parts are not supported; send text, data or a url",
                data={"code": "invalid_input", "part": str(i)},
            )
    if not message.parts:
        raise A.InvalidParamsError("the message has no parts", data={"code": "invalid_input"})
    if texts:
        if "prompt" in out:
            raise A.InvalidParamsError(
                "a data part's 'prompt' conflicts with the text parts", data={"code": "invalid_input"}
            )
        out["prompt"] = "\n".join(texts)
    if files:
        out["files"] = files
    return out


def _meta(obj: Any) -> dict[str, Any]:
    return MessageToDict(obj.metadata) if obj.HasField("metadata") else {}


def requested_skill(request_meta: Mapping[str, Any], message: Message, skills: list[str]) -> str:
    """The skill a SendMessage names (``metadata.skill`` of the request or of the
    message); with none named and exactly one skill on the card, that one.

    Raises:
        InvalidParamsError: none named (and not exactly one), or not on the card."""
    skill = request_meta.get("skill") or _meta(message).get("skill")
    if skill is None:
        if len(skills) == 1:
            return skills[0]
        raise A.InvalidParamsError(
            "name a skill in metadata.skill: one of " + (", ".join(skills) or "(no agent is online)"),
            data={"code": "skill_required", "skills": ",".join(skills)},
        )
    if not isinstance(skill, str) or not 1 <= len(skill) <= NAME_MAX:
        raise A.InvalidParamsError(
            f"metadata.skill {skill!r} is not a capability name", data={"code": "invalid_input"}
        )
    if skill not in skills:
        raise A.InvalidParamsError(
            f"unknown skill {skill!r}: no online agent offers it; skills: " + (", ".join(skills) or "(none)"),
            data={"code": "unknown_skill", "skill": skill, "skills": ",".join(skills)},
        )
    return skill


def task_spec_for(
    message: Message, request_meta: Mapping[str, Any], skill: str, context_id: str
) -> dict[str, Any]:
    """The ``POST /api/tasks`` body for a SendMessage (``metadata.hive`` may set
    ``type``, ``priority``, ``timeout_seconds``, ``max_retries``, ``description``,
    ``requires_approval`` and ``min_proficiency``)."""
    hive = request_meta.get(META_KEY) or {}
    if not isinstance(hive, dict):
        raise A.InvalidParamsError("metadata.hive must be an object", data={"code": "invalid_input"})
    inp = message_input(message)
    spec: dict[str, Any] = {
        "type": skill,
        "description": (inp.get("prompt") or f"A2A message for {skill}")[:200],
        "input": inp,
        "required_capabilities": [
            {"name": skill, "min_proficiency": float(hive.get("min_proficiency", 0.0))}
        ],
        "metadata": {
            "a2a": {
                "context_id": context_id,
                "message": MessageToDict(message),
            }
        },
    }
    spec.update({k: hive[k] for k in SPEC_KEYS if k in hive})
    return spec


# ------------------------------------------------------------------ hub -> A2A


def _agent_message(
    task_id: str, context_id: str, text: str, data: Mapping[str, Any] | None = None
) -> Message:
    parts = [Part(text=text)]
    if data:
        parts.append(Part(data=_value(dict(data))))
    return Message(
        message_id=uuid.uuid5(uuid.NAMESPACE_URL, f"hive:{task_id}:{text}:{data}").hex,
        context_id=context_id,
        task_id=task_id,
        role=Role.ROLE_AGENT,
        parts=parts,
    )


def result_parts(result: Any) -> list[Part]:
    """A task result as artifact parts: a string as text, anything else as data."""
    if isinstance(result, str):
        return [Part(text=result)]
    return [Part(data=_value(result))]


def user_message(task: Mapping[str, Any]) -> Message | None:
    """The A2A message the task was created from (kept in its metadata)."""
    raw = ((task.get("metadata") or {}).get("a2a") or {}).get("message")
    if not isinstance(raw, dict):
        return None
    m = Message()
    try:
        ParseDict(raw, m, ignore_unknown_fields=True)
    except ParseError:
        return None
    return m


def context_of(task: Mapping[str, Any]) -> str:
    ctx = ((task.get("metadata") or {}).get("a2a") or {}).get("context_id")
    return str(ctx) if ctx else str(task["id"])


def _status(state: int, ts: str | None, message: Message | None = None) -> TaskStatus:
    st = TaskStatus(state=state)  # type: ignore[arg-type]
    if message is not None:
        st.message.CopyFrom(message)
    if ts:
        try:
            st.timestamp.FromJsonString(ts if ts.endswith("Z") or "+" in ts[10:] else ts + "Z")
        except ValueError:
            pass
    return st


def task_object(task: Mapping[str, Any], history: list[Message] | None = None) -> Task:
    """``GET /api/tasks/{id}`` as an A2A Task: its status, its streamed output and its
    result as artifacts, ``history`` when given (else the message it came from)."""
    tid = str(task["id"])
    ctx = context_of(task)
    state = STATE.get(str(task.get("status")), TaskState.TASK_STATE_UNSPECIFIED)
    msg: Message | None = None
    if task.get("status") == "failed" and task.get("error"):
        err = task["error"]
        msg = _agent_message(tid, ctx, f"{err.get('code')}: {err.get('message')}", {"error": err})
    elif task.get("status") == "input_required" and task.get("pending_input"):
        q = task["pending_input"]
        msg = _agent_message(tid, ctx, str(q.get("question")), {"input_request": q})
    elif task.get("status") == "awaiting_approval":
        msg = _agent_message(tid, ctx, "awaiting an operator's approval")
    out = Task(id=tid, context_id=ctx, status=_status(state, task.get("updated_at"), msg))
    if task.get("output"):
        out.artifacts.append(
            Artifact(
                artifact_id=f"output-{task.get('attempt') or 1}",
                name="output",
                parts=[Part(text=task["output"])],
            )
        )
    if task.get("status") == "completed":
        out.artifacts.append(
            Artifact(artifact_id="result", name="result", parts=result_parts(task.get("result")))
        )
    if history is None:
        um = user_message(task)
        history = [um] if um is not None else []
    out.history.extend(history)
    out.metadata.CopyFrom(
        _struct(
            {
                META_KEY: {
                    "status": task.get("status"),
                    "attempt": task.get("attempt", 0),
                    "progress": task.get("progress", 0.0),
                    "assigned_agent_id": task.get("assigned_agent_id"),
                    "created_sequence": task.get("created_sequence", 0),
                }
            }
        )
    )
    return out


@dataclass
class TaskTranslator:
    """Folds one task's hub events (envelopes as ``/ws`` sends them, oldest first)
    into A2A events. Stateful (which attempt's output artifact is open), so it is
    fed every event of the task from its ``task_created``; :meth:`feed` answers the
    events with their positions, and the caller drops those at or before the
    position it resumes from."""

    task_id: str
    context_id: str = ""
    #: the attempt whose ``output-<n>`` artifact has had a chunk
    _output_open: set[int] = field(default_factory=set)
    #: the last event fed became a final or input-required status: an A2A stream
    #: ends there if the task is still in that state (A2A's terminal or interrupted)
    ends: bool = False
    #: the A2A state of the last status fed, and the open question's id
    state: int = TaskState.TASK_STATE_UNSPECIFIED
    request_id: str | None = None

    def feed(self, envelope: Mapping[str, Any]) -> list[tuple[Position, A2AEvent]]:
        seq = int(envelope.get("sequence") or 0)
        typ = str(envelope.get("type"))
        data: Mapping[str, Any] = envelope.get("data") or {}
        ts = envelope.get("timestamp") or data.get("timestamp")
        events = self._events(typ, data, ts)
        self.ends = (
            bool(events)
            and isinstance(events[-1], TaskStatusUpdateEvent)
            and events[-1].status.state in STREAM_ENDS
        )
        for e in events:
            if isinstance(e, TaskStatusUpdateEvent):
                self.state = e.status.state
        if typ == "task_input_required":
            self.request_id = str(data.get("request_id"))
        out = []
        for i, e in enumerate(events):
            pos = Position(seq, i)
            hive = {"position": str(pos), "event": typ, "sequence": seq}
            if isinstance(e, Task):
                m = MessageToDict(e.metadata) if e.HasField("metadata") else {}
                m.setdefault(META_KEY, {}).update(hive)
                e.metadata.CopyFrom(_struct(m))
            else:
                e.metadata.MergeFrom(_struct({META_KEY: hive}))
            out.append((pos, e))
        return out

    def _status(
        self, state: int, ts: str | None, text: str | None, data: Mapping[str, Any] | None = None
    ) -> TaskStatusUpdateEvent:
        msg = _agent_message(self.task_id, self.context_id, text, data) if text else None
        return TaskStatusUpdateEvent(
            task_id=self.task_id, context_id=self.context_id, status=_status(state, ts, msg)
        )

    def _events(self, typ: str, d: Mapping[str, Any], ts: str | None) -> list[A2AEvent]:  # noqa: PLR0911
        W, S = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_SUBMITTED
        if typ == "task_created":
            task = d.get("task") or {}
            self.context_id = context_of(task)
            return [task_object({**task, "output": "", "status": task.get("status", "pending")})]
        if typ == "task_assigned":
            return [
                self._status(
                    W, ts, f"assigned to agent {d.get('agent_id')} (attempt {d.get('attempt_number', 1)})"
                )
            ]
        if typ == "task_started":
            return [self._status(W, ts, f"started by agent {d.get('agent_id')}")]
        if typ == "task_progress":
            attempt = int(d.get("attempt_number") or 1)
            if d.get("output_delta"):
                aid = f"output-{attempt}"
                append = attempt in self._output_open
                self._output_open.add(attempt)
                art = Artifact(artifact_id=aid, name="output", parts=[Part(text=str(d["output_delta"]))])
                return [
                    TaskArtifactUpdateEvent(
                        task_id=self.task_id,
                        context_id=self.context_id,
                        artifact=art,
                        append=append,
                        last_chunk=False,
                    )
                ]
            step = d.get("current_step")
            pct = round(100 * float(d.get("progress") or 0.0))
            return [
                self._status(
                    W, ts, f"{pct}%" + (f": {step}" if step else ""), {"progress": d.get("progress")}
                )
            ]
        if typ == "task_completed":
            art = Artifact(artifact_id="result", name="result", parts=result_parts(d.get("result")))
            return [
                TaskArtifactUpdateEvent(
                    task_id=self.task_id,
                    context_id=self.context_id,
                    artifact=art,
                    append=False,
                    last_chunk=True,
                ),
                self._status(TaskState.TASK_STATE_COMPLETED, ts, None),
            ]
        if typ == "task_failed":
            err = d.get("error") or {}
            text = f"{err.get('code')}: {err.get('message')}"
            if d.get("retry_scheduled"):
                return [
                    self._status(
                        W, ts, f"attempt {d.get('attempt_number')} failed ({text}); retrying", {"error": err}
                    )
                ]
            return [self._status(TaskState.TASK_STATE_FAILED, ts, text, {"error": err})]
        if typ == "task_cancelled":
            return [
                self._status(
                    TaskState.TASK_STATE_CANCELED,
                    ts,
                    f"cancelled by {d.get('cancelled_by')}: {d.get('reason')}",
                )
            ]
        if typ == "task_input_required":
            q = {k: d.get(k) for k in ("request_id", "question", "choices", "deadline")}
            return [
                self._status(
                    TaskState.TASK_STATE_INPUT_REQUIRED, ts, str(d.get("question")), {"input_request": q}
                )
            ]
        if typ == "task_input_received":
            return [
                self._status(W, ts, "answer received" if not d.get("timed_out") else "the question timed out")
            ]
        if typ == "task_approval_requested":
            return [self._status(S, ts, "awaiting an operator's approval")]
        if typ == "task_approved":
            return [self._status(S, ts, f"approved by {d.get('approved_by')}")]
        if typ == "task_rejected":
            return [self._status(S, ts, f"rejected by {d.get('rejected_by')}: {d.get('reason')}")]
        if typ == "task_released":
            return [
                self._status(S, ts, f"released by agent {d.get('agent_id')}: {d.get('reason')}; queued again")
            ]
        if typ == "task_retried":
            return [self._status(S, ts, f"retried by {d.get('requested_by')}")]
        return []


def still_there(tr: TaskTranslator, task: Mapping[str, Any]) -> bool:
    """Whether the hub task is still in the state the translator's last status
    showed (then a stream that reached a final or input-required status ends)."""
    if STATE.get(str(task.get("status"))) != tr.state:
        return False
    if tr.state == TaskState.TASK_STATE_INPUT_REQUIRED:
        return str((task.get("pending_input") or {}).get("request_id")) == tr.request_id
    return True


def history_of(translated: Iterable[A2AEvent], first: Message | None) -> list[Message]:
    """A task's A2A history: the message it came from, then each status message."""
    out = [first] if first is not None else []
    for e in translated:
        if isinstance(e, TaskStatusUpdateEvent) and e.status.HasField("message"):
            out.append(e.status.message)
    return out


# ------------------------------------------------------------------ errors


def a2a_error(exc: E.HiveError, conflict: type[A.A2AError] = A.InvalidParamsError) -> A.A2AError:
    """The A2A JSON-RPC error for a hub error; ``data.code`` is the hub's code.
    ``conflict`` is the class for the hub's 409s (``TaskNotCancelableError`` for a cancel)."""
    code = str(getattr(exc, "code", None) or type(exc).code)
    data = {"code": code, **{k: str(v) for k, v in (getattr(exc, "details", None) or {}).items()}}
    msg = getattr(exc, "message", None) or str(exc) or code
    status = getattr(exc, "status", None)
    if isinstance(exc, E.TaskNotFound) or code == "task_not_found":
        return A.TaskNotFoundError(msg, data=data)
    if isinstance(exc, (E.Unauthorized, E.Forbidden)) or status in (401, 403):
        return A.InvalidRequestError(f"{code}: {msg}", data=data)
    if isinstance(exc, E.Conflict) or status == 409:
        return conflict(msg, data=data)
    if isinstance(exc, (E.InvalidInput, E.NotFound)) or (status is not None and 400 <= status < 500):
        return A.InvalidParamsError(msg, data=data)
    return A.InternalError(msg, data=data)
