"""Commands: what adapters ask the hive to do. Imperative names; each has an ``id``
(the request or message id) that the resulting events carry as ``caused_by``.

The request bodies of the REST API and of /ws control messages are the
``*Spec`` structs here, so the same schema validates requests and generates
the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from .events import EventData
from .model import (
    AgentType,
    Capability,
    Id,
    Name,
    PriorityIn,
    RequiredCapability,
    TaskError,
    Unit,
    UsageReport,
)

PositiveSeconds = Annotated[float, Meta(gt=0, le=7 * 24 * 3600)]

# Free-text limits, in characters. They hold for every request (REST bodies, /ws and
# agent messages) and are checked where a request is decoded; events keep plain
# ``str`` so a log written before a limit existed still replays.
REASON_MAX = 1000
STEP_MAX = 1000
ERROR_CODE_MAX = 100
ERROR_MESSAGE_MAX = 10_000
Reason = Annotated[str, Meta(max_length=REASON_MAX)]
Step = Annotated[str, Meta(max_length=STEP_MAX)]
#: characters of streamed output per progress report, and in a task's ``output`` in all
OUTPUT_DELTA_MAX = 65_536
OUTPUT_MAX = 1_048_576
Tokens = Annotated[int, Meta(ge=1, le=10**8)]
Limit = Annotated[int, Meta(ge=1, le=10**12)]
# A question to a person and its answer (``RequestInput``, ``ProvideInput``; ``core/human.py``).
QUESTION_MAX = 10_000
CHOICES_MAX = 50
CHOICE_MAX = 1000
ANSWER_MAX = 100_000


class ReportedError(Struct):
    """The ``error`` of a failure report (REST ``/fail`` and the agent ``task_failed``)."""

    code: Annotated[str, Meta(min_length=1, max_length=ERROR_CODE_MAX)]
    message: Annotated[str, Meta(max_length=ERROR_MESSAGE_MAX)]
    details: dict[str, Any] = msgspec.field(default_factory=dict)

    def task_error(self) -> TaskError:
        return TaskError(self.code, self.message, self.details)


class AgentSpec(Struct, forbid_unknown_fields=True):
    """Body of ``POST /api/agents`` and of an agent's ``register`` message."""

    name: Name
    type: AgentType = AgentType.WORKER
    capabilities: Annotated[list[Capability], Meta(max_length=100)] = msgspec.field(default_factory=list)
    max_concurrent_tasks: Annotated[int, Meta(ge=1, le=10_000)] = 1
    id: Id | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    #: the quota pool its model calls draw from (``PUT /api/quotas/<name>`` first)
    quota: Name | None = None
    #: the most tasks it accepts beyond ``max_concurrent_tasks``, queued until a slot
    #: frees (the hub sizes the depth it uses from the measured task time: ``Agent.prefetch_depth``)
    prefetch: Annotated[int, Meta(ge=0, le=64)] = 0


class AgentPatch(Struct, forbid_unknown_fields=True):
    """Body of ``PATCH /api/agents/{id}``."""

    name: Name | None = None
    capabilities: Annotated[list[Capability], Meta(max_length=100)] | None = None
    max_concurrent_tasks: Annotated[int, Meta(ge=1, le=10_000)] | None = None


class TaskSpec(Struct, forbid_unknown_fields=True):
    """Body of ``POST /api/tasks``."""

    description: Annotated[str, Meta(max_length=10_000)] = ""
    type: Annotated[str, Meta(min_length=1, max_length=200)] = "general"
    priority: PriorityIn = 2
    required_capabilities: Annotated[list[RequiredCapability], Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )
    input: Any = None
    timeout_seconds: PositiveSeconds = 300.0
    max_retries: Annotated[int, Meta(ge=0, le=100)] = 3
    depends_on: Annotated[list[Id], Meta(max_length=1000)] = msgspec.field(default_factory=list)
    id: Id | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    #: tokens one attempt will use (else the hub estimates from the type's history)
    estimated_tokens: Tokens | None = None
    #: per-attempt caps the agent is told: it stops there (``BUDGET_EXCEEDED``)
    max_tokens: Tokens | None = None
    max_cost_usd: Annotated[float, Meta(gt=0, le=10**6)] | None = None
    #: wait in ``awaiting_approval`` until an operator approves it (``ApproveTask``)
    requires_approval: bool = False


class QuotaSpec(Struct, forbid_unknown_fields=True):
    """Body of ``PUT /api/quotas/{name}``: at least one limit (``None``: unlimited)."""

    requests_per_minute: Limit | None = None
    tokens_per_minute: Limit | None = None
    max_concurrent: Annotated[int, Meta(ge=1, le=10**6)] | None = None


class BudgetSpec(Struct, forbid_unknown_fields=True):
    """Body of ``PUT /api/budgets/{owner}``: at least one limit (``None``: unlimited)."""

    tokens_per_day: Limit | None = None
    cost_usd_per_day: Annotated[float, Meta(gt=0, le=10**9)] | None = None


class Command(Struct, kw_only=True):
    #: id of the request or message that carried the command (-> ``caused_by``)
    id: str | None = None


class RegisterAgent(Command, kw_only=True):
    spec: AgentSpec
    #: on a reconnect: the tasks the agent still runs, as ``{task_id: attempt}``
    running: dict[str, int] | None = None


class UpdateAgent(Command, kw_only=True):
    agent_id: str
    patch: AgentPatch


class RemoveAgent(Command, kw_only=True):
    agent_id: str
    reason: Reason = "manual_removal"


class ResetLearning(Command, kw_only=True):
    """Put an agent's capabilities back to their declared priors (an operator action)."""

    agent_id: str
    #: the capabilities to reset; ``None``: all of them
    capabilities: list[str] | None = None
    requested_by: str = "api"


class Heartbeat(Command, kw_only=True):
    agent_id: str


class AgentDisconnected(Command, kw_only=True):
    agent_id: str


class EvictAgent(Command, kw_only=True):
    """The agent lost its access (its token was revoked): offline now, and its
    tasks are not held for a reconnect but re-queued at once."""

    agent_id: str
    reason: str = "token_revoked"


class SubmitTask(Command, kw_only=True):
    spec: TaskSpec
    created_by: str | None = None


class SubmitTasks(Command, kw_only=True):
    """Submit several tasks at once, all or none: every task is validated (ids,
    dependencies) before the first is created. A task may depend on the tasks
    before it in ``specs``."""

    specs: list[TaskSpec]
    created_by: str | None = None


class CancelTask(Command, kw_only=True):
    task_id: str
    reason: Reason = "manual_cancellation"
    cancelled_by: Name = "api"


class RetryTask(Command, kw_only=True):
    task_id: str
    requested_by: str = "api"


class StartTask(Command, kw_only=True):
    task_id: str
    agent_id: str
    attempt: int | None = None


class ReportProgress(Command, kw_only=True):
    task_id: str
    agent_id: str
    progress: Unit
    current_step: Step | None = None
    attempt: int | None = None
    #: the text produced since the previous report (appended to ``Task.output``)
    output_delta: Annotated[str, Meta(max_length=OUTPUT_DELTA_MAX)] | None = None
    #: the attempt's usage so far (cumulative)
    usage: UsageReport | None = None


class CompleteTask(Command, kw_only=True):
    task_id: str
    agent_id: str
    result: Any = None
    quality: Unit | None = None
    attempt: int | None = None
    usage: UsageReport | None = None


class FailTask(Command, kw_only=True):
    task_id: str
    agent_id: str
    error: TaskError
    retryable: bool = True
    attempt: int | None = None
    usage: UsageReport | None = None
    #: with ``error.code == "RATE_LIMITED"``: the provider's Retry-After (seconds)
    retry_after: Annotated[float, Meta(gt=0, le=3600)] | None = None


class ReleaseTask(Command, kw_only=True):
    task_id: str
    agent_id: str
    reason: Reason = "agent_shutdown"
    attempt: int | None = None


class SetQuota(Command, kw_only=True):
    """Create or change a quota pool (``PUT /api/quotas/{name}``)."""

    name: Name
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    requested_by: str = "api"


class DeleteQuota(Command, kw_only=True):
    name: str
    requested_by: str = "api"


class SetBudget(Command, kw_only=True):
    """Create or change an owner's daily budget (``PUT /api/budgets/{owner}``)."""

    owner: Name
    tokens_per_day: int | None = None
    cost_usd_per_day: float | None = None
    requested_by: str = "api"


class DeleteBudget(Command, kw_only=True):
    owner: str
    requested_by: str = "api"


class ApproveTask(Command, kw_only=True):
    """An operator lets a task that awaits approval into the queue."""

    task_id: str
    approved_by: Name = "api"
    comment: Reason | None = None


class RejectTask(Command, kw_only=True):
    """An operator refuses a task that awaits approval: it is cancelled (by them)."""

    task_id: str
    rejected_by: Name = "api"
    reason: Reason = "rejected"


class RequestInput(Command, kw_only=True):
    """The holder of a running task asks a person a question (``ctx.ask``)."""

    task_id: str
    agent_id: str
    attempt: int | None = None
    #: the agent's id for the question: the answer names it
    request_id: Id
    question: Annotated[str, Meta(min_length=1, max_length=QUESTION_MAX)]
    #: the answer must be one of these; ``None``: free text
    choices: (
        Annotated[
            list[Annotated[str, Meta(max_length=CHOICE_MAX)]], Meta(min_length=1, max_length=CHOICES_MAX)
        ]
        | None
    ) = None
    timeout_seconds: PositiveSeconds = 3600.0


class ProvideInput(Command, kw_only=True):
    """A person answers the question a task waits on."""

    task_id: str
    answer: Annotated[str, Meta(max_length=ANSWER_MAX)]
    answered_by: Name = "api"
    #: the question answered; ``None``: whichever is open
    request_id: Id | None = None


class Tick(Command, kw_only=True):
    """Time passed: fire due retries, timeouts and heartbeat expiries, then schedule."""


class Recover(Command, kw_only=True):
    """Sent once after replaying the log at start: no agent connection survived the
    restart, so online agents go offline and get one heartbeat timeout to come back."""


class CompleteLearning(Command, kw_only=True):
    """Finish a learning cycle: the core computes the update from the outcomes the
    cycle started with (``core/learning.py``) and records it."""

    cycle_id: str


class Observe(Command, kw_only=True):
    """An adapter's observation of the world (module health, resources, alerts,
    periodic status) recorded in the log. Only observation event types are
    accepted; the core stamps the time and folds active alerts and module states."""

    data: EventData
