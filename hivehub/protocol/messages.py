"""One msgspec ``Struct`` per wire message.

- REST request and reply bodies (the same structs generate ``/api/openapi.json``;
  their names and docstrings are the schema's, so they stay as they are);
- ``/ws`` control messages (``data`` of ``subscribe``, ``create_task``, ``cancel_task``);
- ``/agents/ws`` frames (``data`` of ``register`` and of every report);
- replica-to-replica calls (``POST /internal/execute``).

Wire messages are not core commands: :mod:`.codec` turns one into the other.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ..core import commands as C
from ..core.attempts import Attempt
from ..core.commands import PositiveSeconds
from ..core.model import Agent, AgentStatus, Id, Name, Task, Unit, UsageReport, UsageTotals

# ----------------------------------------------------------------- REST bodies


class ErrorDetail(Struct):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(Struct):
    error: ErrorDetail


class AgentPage(Struct):
    agents: list[Agent]
    next_cursor: str | None


class TaskRead(Task):
    """A task as ``GET /api/tasks/{id}`` (and every task reply) shows it: the
    ``Task`` plus why it waits, derived at read time."""

    #: "approval", "input", "dependencies", "budget", "quota:<name>", "no_agent", or null
    blocked_reason: str | None = None


class TaskPage(Struct):
    tasks: list[TaskRead]
    next_cursor: str | None


class TaskBatch(Struct, forbid_unknown_fields=True):
    tasks: Annotated[list[C.TaskSpec], Meta(min_length=1, max_length=1000)]


class TaskBatchResult(Struct):
    tasks: list[Task]


class CancelBody(Struct, forbid_unknown_fields=True):
    reason: C.Reason = "manual_cancellation"
    cancelled_by: Name | None = None


class RetryBody(Struct, forbid_unknown_fields=True):
    requested_by: Name | None = None


class AgentReport(Struct, forbid_unknown_fields=True):
    agent_id: str
    #: required: the core refuses a report without it with ``attempt_required``
    #: (one rule and one code for HTTP and /agents/ws; the OpenAPI document marks
    #: it required, see ``openapi()``)
    attempt: int | None = None


OutputDelta = Annotated[str, Meta(max_length=C.OUTPUT_DELTA_MAX)]
RetryAfter = Annotated[float, Meta(gt=0, le=3600)]
Question = Annotated[str, Meta(min_length=1, max_length=C.QUESTION_MAX)]
Choices = Annotated[
    list[Annotated[str, Meta(max_length=C.CHOICE_MAX)]], Meta(min_length=1, max_length=C.CHOICES_MAX)
]
Answer = Annotated[str, Meta(max_length=C.ANSWER_MAX)]


class ProgressReport(AgentReport, forbid_unknown_fields=True):
    progress: Unit = 0.0
    current_step: C.Step | None = None
    #: the text produced since the previous report (appended to ``Task.output``)
    output_delta: OutputDelta | None = None
    #: the attempt's model usage so far (cumulative)
    usage: UsageReport | None = None


class CompleteReport(AgentReport, forbid_unknown_fields=True):
    result: Any = None
    quality: Unit | None = None
    usage: UsageReport | None = None


class FailReport(AgentReport, forbid_unknown_fields=True):
    error: C.ReportedError = msgspec.field(default_factory=lambda: C.ReportedError("AGENT_ERROR", "failed"))
    retryable: bool = True
    usage: UsageReport | None = None
    #: with ``error.code == "RATE_LIMITED"``: seconds before the task may run again
    retry_after: RetryAfter | None = None


class InputRequestBody(AgentReport, forbid_unknown_fields=True, kw_only=True):
    """Body of ``POST /api/tasks/{id}/input-request`` (a pull agent asks a person)."""

    request_id: Id
    question: Question
    choices: Choices | None = None
    timeout_seconds: PositiveSeconds = 3600.0


class ApproveBody(Struct, forbid_unknown_fields=True):
    comment: C.Reason | None = None


class RejectBody(Struct, forbid_unknown_fields=True):
    reason: C.Reason | None = None


class InputBody(Struct, forbid_unknown_fields=True):
    answer: Answer
    #: the question answered; absent: whichever is open
    request_id: Id | None = None


class TaskReply(Struct):
    """``{"task": Task}``: the answer of approve, reject, input and input-request."""

    task: TaskRead


class QuotaView(Struct):
    """A quota pool as read: its limits (null: unlimited) and what is in flight."""

    name: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None
    in_flight: int
    #: ISO time until which a RATE_LIMITED report paused the pool; null: not paused
    paused_until: str | None
    #: the registered agents that draw from it
    agents: list[str]


class QuotaReply(Struct):
    quota: QuotaView


class QuotaList(Struct):
    quotas: list[QuotaView]


class BudgetView(Struct):
    """An owner's daily budget as read, for the current UTC ``day``."""

    owner: str
    tokens_per_day: int | None
    cost_usd_per_day: float | None
    day: str
    spent_tokens: int
    spent_cost_usd: float
    reserved_tokens: int
    reserved_cost_usd: float
    #: some ready task of the owner waits on this budget
    blocked: bool


class BudgetReply(Struct):
    budget: BudgetView


class BudgetList(Struct):
    budgets: list[BudgetView]


class Deleted(Struct):
    deleted: str


class LlmSummary(Struct):
    """``llm`` of ``GET /api/hive/status``: model usage folded from the log."""

    total: UsageTotals
    by_model: dict[str, UsageTotals]
    by_type: dict[str, UsageTotals]
    by_owner: dict[str, UsageTotals]


class ReleaseReport(AgentReport, forbid_unknown_fields=True):
    reason: C.Reason = "agent_shutdown"


class ResetLearningBody(Struct, forbid_unknown_fields=True):
    #: the capabilities to reset (default: all of them)
    capabilities: (
        Annotated[list[Annotated[str, Meta(min_length=1, max_length=200)]], Meta(max_length=100)] | None
    ) = None
    requested_by: Annotated[str, Meta(max_length=200)] | None = None


class Claim(Struct):
    task: Task
    attempt: int


class AttemptList(Struct):
    task_id: str
    attempts: list[Attempt]


class EventPage(Struct):
    events: list[dict[str, Any]]
    next_since: int


class ApiInfo(Struct):
    name: str
    version: str
    spec: str
    endpoints: dict[str, str]


# ----------------------------------------------------------------- /ws control messages

#: the control messages a /ws client may send
STREAM_REQUESTS = ("ping", "subscribe", "create_task", "cancel_task", "get_status")


class Subscribe(Struct):
    """``subscribe``: a field that is present replaces that filter; an absent one
    keeps it (hence ``UNSET``); null or empty clears it."""

    types: str | list[str] | None | UnsetType = UNSET
    agent_id: str | None | UnsetType = UNSET
    task_id: str | None | UnsetType = UNSET


class CancelTaskRequest(Struct):
    """``cancel_task`` (``create_task``'s data is a ``TaskSpec``)."""

    task_id: str
    reason: C.Reason | None = None
    cancelled_by: Name | None = None


class Pong(Struct):
    """``pong``: the answer to ``ping`` (no fields)."""


class Subscribed(Struct):
    """``subscribed``: the filters now in force."""

    types: list[str] | None
    agent_id: str | None
    task_id: str | None


class TaskResult(Struct):
    """``create_task_result`` / ``cancel_task_result``: the task as committed."""

    task: Task | None


class Snapshot(Struct):
    """``snapshot`` (``/ws?snapshot=1``): the state at a committed ``sequence``;
    live events after it follow."""

    sequence: int
    agents: list[Agent]
    tasks: list[Task]
    status: dict[str, Any]
    alerts: list[dict[str, Any]]


# ----------------------------------------------------------------- /agents/ws frames (hub -> agent)


# The hub encodes these and the agent SDK decodes them (``codec.decode_hub_message``).


class Registered(Struct):
    """``registered``: the answer to ``register``."""

    agent_id: str
    agent: Agent
    heartbeat_interval: float
    heartbeat_timeout: float
    #: the hub's frame limit; optional on the wire ("a hub may add", docs/agent-protocol.md)
    max_frame_bytes: int | None = None
    #: the most messages an agent may send in one batch frame (a JSON array of
    #: envelopes); absent: the hub takes one message per frame (docs/agent-protocol.md)
    max_batch: int | None = None


class Assign(Struct):
    """``assign``: run this attempt (``task`` is null only for a task gone meanwhile)."""

    task: Task | None
    attempt: int


class Cancel(Struct):
    """``cancel``: stop the attempt (any when ``attempt`` is null) and report nothing."""

    task_id: str
    attempt: int | None
    reason: str


class Recall(Struct):
    """``recall``: hand this prefetched attempt back (``task_released``, reason
    ``recalled``) if it has not started; if it has, run it and ignore this."""

    task_id: str
    attempt: int
    #: the agent with a free slot it is recalled for
    for_agent_id: str | None = None


class InputFrame(Struct):
    """``input``: the answer to the agent's ``input_request`` (``timed_out``: no answer
    came in time, ``answer`` is null and ``answered_by`` is ``"timeout"``)."""

    task_id: str
    attempt: int | None
    request_id: str | None
    answer: str | None
    timed_out: bool
    answered_by: str


class Ack(Struct):
    """``ack``: the report with this ``message_id`` was accepted."""

    type: str
    task_id: str | None


# ----------------------------------------------------------------- pull transport answers (hub -> agent)


class RegisteredAgent(Agent):
    """The answer to ``POST /api/agents`` as the pull agent reads it: the ``Agent``,
    plus the heartbeat settings a hub may add (this hub answers them on heartbeats)."""

    heartbeat_interval: float | None = None
    heartbeat_timeout: float | None = None


class HeartbeatReply(Struct):
    """The answer to ``POST /api/agents/{id}/heartbeat``."""

    agent_id: str
    status: AgentStatus
    heartbeat_timeout: float
    heartbeat_interval: float


# ----------------------------------------------------------------- /agents/ws frames (agent -> hub)

#: the reports an agent may send after ``register``
AGENT_REPORTS = (
    "heartbeat",
    "task_started",
    "task_progress",
    "task_completed",
    "task_failed",
    "task_released",
    "input_request",
)


class TaskStarted(Struct):
    """The ``data`` of an agent's reports; validated as the commands they become
    (the same limits), so the codec builds each command without a second pass."""

    task_id: str
    attempt: int | None = None


class TaskProgress(TaskStarted):
    progress: Unit = 0.0
    current_step: C.Step | None = None
    #: the model text produced since the previous report (at most 65,536 characters)
    output_delta: OutputDelta | None = None
    #: the attempt's usage so far (cumulative)
    usage: UsageReport | None = None


class TaskCompleted(TaskStarted):
    result: Any = None
    quality: Unit | None = None
    usage: UsageReport | None = None


class TaskFailed(TaskStarted):
    #: a ReportedError; absent, null or empty: AGENT_ERROR "failed"
    error: Any = None
    #: a JSON boolean, as on REST (a string such as "no" is invalid_input, never read as true)
    retryable: bool = True
    usage: UsageReport | None = None
    retry_after: RetryAfter | None = None


class TaskReleased(TaskStarted):
    #: absent, null or empty: agent_shutdown
    reason: C.Reason | None = None


class InputRequestReport(TaskStarted, kw_only=True):
    """``input_request``: the holder of a running task asks a person a question;
    the hub answers later with an ``input`` frame."""

    request_id: Id
    question: Question
    choices: Choices | None = None
    timeout_seconds: PositiveSeconds = 3600.0


AGENT_FRAMES: dict[str, type[TaskStarted]] = {
    "task_started": TaskStarted,
    "task_progress": TaskProgress,
    "task_completed": TaskCompleted,
    "task_failed": TaskFailed,
    "task_released": TaskReleased,
    "input_request": InputRequestReport,
}


# ----------------------------------------------------------------- replica to replica


class ForwardedCommand(Struct, forbid_unknown_fields=True):
    command: str
    data: dict[str, Any]


class ForwardedBatch(Struct, forbid_unknown_fields=True):
    """The body of ``POST /internal/execute`` (what ``Cluster._send`` writes)."""

    commands: list[ForwardedCommand]


class ForwardedError(Struct):
    code: str = "hive_error"
    message: str = "error"
    details: dict[str, Any] | None = None


class ForwardedResult(Struct):
    """One command's outcome: its events (as envelopes), or the error it raised."""

    events: list[msgspec.Raw] | UnsetType = UNSET
    error: ForwardedError | UnsetType = UNSET


class ForwardedResults(Struct):
    results: list[ForwardedResult]
