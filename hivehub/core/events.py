"""Event schemas: the 20 event types of the spec plus the extra state changes.

Every event is logged with a gapless ``sequence`` and streamed on /ws with the
envelope ``{type, data, timestamp, message_id, sequence}``. Field names and
types follow ``shared/spec/websocket-api.md``; extra fields are additions.

Each data struct carries ``caused_by``: the id of the command (HTTP request, WS
message or internal tick) that produced it, so any state can be traced back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from msgspec import Struct

from .model import (
    Agent,
    AgentCapability,
    RequiredCapability,
    Reservation,
    Task,
    TaskError,
    Usage,
    UsageTotals,
)


class EventData(Struct, kw_only=True):
    TYPE: ClassVar[str] = ""
    timestamp: datetime
    caused_by: str | None = None


# --- agent events -----------------------------------------------------------


class AgentCreated(EventData, kw_only=True):
    TYPE: ClassVar[str] = "agent_created"
    agent: Agent


class AgentStatusChanged(EventData, kw_only=True):
    TYPE: ClassVar[str] = "agent_status_changed"
    agent_id: str
    old_status: str
    new_status: str
    reason: str


class PerformanceMetrics(Struct):
    tasks_completed: int
    success_rate: float
    average_response_time_ms: float
    capability_improvements: int
    tasks_failed: int = 0
    #: the agent's model usage so far (``None`` in events logged before it existed)
    usage: UsageTotals | None = None


class AgentPerformanceUpdated(EventData, kw_only=True):
    TYPE: ClassVar[str] = "agent_performance_updated"
    agent_id: str
    metrics: PerformanceMetrics
    task_type: str | None = None
    execution_time_ms: float | None = None
    outcome: str | None = None


class CleanupSummary(Struct):
    tasks_reassigned: int
    data_removed: bool
    tasks_failed: int = 0


class AgentRemoved(EventData, kw_only=True):
    TYPE: ClassVar[str] = "agent_removed"
    agent_id: str
    reason: str
    cleanup_summary: CleanupSummary


class AgentUpdated(EventData, kw_only=True):
    """Extra: a PATCH or a new registration changed name, capabilities or concurrency."""

    # ``capabilities`` is the whole new list as the hub holds it: each one's
    # ``declared_proficiency`` (the prior) and ``proficiency`` (effective: the learned
    # value is kept when that capability's prior did not change).

    TYPE: ClassVar[str] = "agent_updated"
    agent_id: str
    name: str | None = None
    capabilities: list[AgentCapability] | None = None
    max_concurrent_tasks: int | None = None
    #: its new quota pool (``None``: unchanged; ``""``: it no longer draws from one)
    quota: str | None = None
    #: its new prefetch (``None``: unchanged)
    prefetch: int | None = None


# --- task events -------------------------------------------------------------


class TaskCreated(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_created"
    task: Task
    matching_agents: int


class TaskAssigned(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_assigned"
    task_id: str
    agent_id: str
    assignment_reason: str
    estimated_completion: datetime | None = None
    attempt_number: int = 1
    score: float = 0.0
    score_breakdown: dict[str, float] = msgspec.field(default_factory=dict)
    candidates: int = 0
    #: set when the coordinator moved the task from another agent
    previous_agent_id: str | None = None
    #: what the attempt holds of its agent's quota pool and its owner's budget
    #: (``None``: neither applies); settled when the attempt ends
    reservation: Reservation | None = None
    #: assigned ahead: every slot of the agent was taken, so the task waits in the
    #: agent's queue until one frees (``Agent.prefetch``; ``docs/scheduling.md``)
    prefetched: bool = False


class TaskStarted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_started"
    task_id: str
    agent_id: str
    attempt_number: int


class TaskProgress(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_progress"
    task_id: str
    agent_id: str
    progress: float
    current_step: str | None = None
    estimated_completion: datetime | None = None
    attempt_number: int = 1
    #: the text produced since the previous progress event
    output_delta: str | None = None
    #: the attempt's usage so far (cumulative)
    usage: Usage | None = None


class TaskCompleted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_completed"
    task_id: str
    agent_id: str
    execution_time_ms: float
    result: Any = None
    attempt_number: int = 1
    quality: float | None = None
    #: the attempt's model usage
    usage: Usage | None = None


#: the ``TaskFailed.failure_kind`` values of a provider's 429 (the pool pauses; not
#: the agent's failure)
RATE_LIMITED_KINDS = frozenset({"rate_limited", "rate_limited_over_limit"})


class TaskFailed(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_failed"
    task_id: str
    agent_id: str | None
    attempt_number: int
    error: TaskError
    retry_scheduled: bool
    next_retry_at: datetime | None = None
    #: why: "reported", "timeout", "agent_lost", "dependency_failed", "agent_removed",
    #: "rate_limited" (the provider's 429: re-queued without counting a failure),
    #: "rate_limited_over_limit" (a 429 past ``HiveConfig.max_rate_limited`` of the
    #: task: the pool pauses as for any 429, but the attempt spends a retry)
    failure_kind: str = "reported"
    execution_time_ms: float | None = None
    #: the attempt's model usage (reported, else the latest progress report's)
    usage: Usage | None = None


class TaskCancelled(EventData, kw_only=True):
    TYPE: ClassVar[str] = "task_cancelled"
    task_id: str
    reason: str
    cancelled_by: str
    agent_id: str | None = None
    previous_status: str | None = None
    #: the usage the running attempt reported so far
    usage: Usage | None = None


class TaskRetried(EventData, kw_only=True):
    """Extra: a failed or cancelled task was put back in the queue by hand."""

    TYPE: ClassVar[str] = "task_retried"
    task_id: str
    previous_status: str
    requested_by: str


class TaskReleased(EventData, kw_only=True):
    """Extra: an agent handed an unstarted or interrupted task back (no failure counted)."""

    TYPE: ClassVar[str] = "task_released"
    task_id: str
    agent_id: str
    attempt_number: int
    reason: str
    #: the usage the attempt reported so far
    usage: Usage | None = None


class TaskRecalled(EventData, kw_only=True):
    """Extra: the hub asks the holder of a prefetched, unstarted task to hand it back,
    because another agent that could run it has a slot free (``core/prefetch.py``).

    The task stays assigned: the holder answers with ``task_released`` (reason
    ``recalled``) if it has not started it, and otherwise starts it as it would have."""

    TYPE: ClassVar[str] = "task_recalled"
    task_id: str
    agent_id: str
    attempt_number: int
    #: the agent with a free slot it is recalled for
    for_agent_id: str


# --- quotas and budgets ----------------------------------------------------


class QuotaSet(EventData, kw_only=True):
    """Extra: a quota pool was created or changed (``None``: unlimited)."""

    TYPE: ClassVar[str] = "quota_set"
    name: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    requested_by: str = "api"


class QuotaDeleted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "quota_deleted"
    name: str
    requested_by: str = "api"


class BudgetSet(EventData, kw_only=True):
    """Extra: an owner's daily budget was created or changed (``None``: unlimited)."""

    TYPE: ClassVar[str] = "budget_set"
    owner: str
    tokens_per_day: int | None = None
    cost_usd_per_day: float | None = None
    requested_by: str = "api"


class BudgetDeleted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "budget_deleted"
    owner: str
    requested_by: str = "api"


# --- human approval and input (core/human.py) ---------------------------------


class TaskApprovalRequested(EventData, kw_only=True):
    """Extra: a task submitted with ``requires_approval`` waits for an operator (after its ``task_created``)."""

    TYPE: ClassVar[str] = "task_approval_requested"
    task_id: str
    #: the task's owner (``created_by``, else "anonymous")
    requested_by: str


class TaskApproved(EventData, kw_only=True):
    """Extra: an operator approved the task; it is pending (queued once its dependencies completed)."""

    TYPE: ClassVar[str] = "task_approved"
    task_id: str
    approved_by: str
    comment: str | None = None


class TaskRejected(EventData, kw_only=True):
    """Extra: an operator rejected the task; a ``task_cancelled`` by the same operator follows."""

    TYPE: ClassVar[str] = "task_rejected"
    task_id: str
    rejected_by: str
    reason: str


class TaskInputRequired(EventData, kw_only=True):
    """Extra: the holder of a running task asked a question; the task waits in ``input_required``."""

    TYPE: ClassVar[str] = "task_input_required"
    task_id: str
    agent_id: str
    attempt_number: int
    request_id: str
    question: str
    choices: list[str] | None = None
    timeout_seconds: float
    #: when the question times out (``task_input_received`` with ``timed_out`` then)
    deadline: datetime


class TaskInputReceived(EventData, kw_only=True):
    """Extra: the question was answered (or timed out: ``answer`` null, ``answered_by`` "timeout"); running again."""

    TYPE: ClassVar[str] = "task_input_received"
    task_id: str
    agent_id: str
    attempt_number: int
    request_id: str
    answer: str | None
    answered_by: str
    timed_out: bool = False


# --- system events ----------------------------------------------------------


class Alert(Struct):
    level: str
    message: str
    timestamp: datetime


class HiveMetrics(Struct):
    total_agents: int
    active_agents: int
    pending_tasks: int
    completed_tasks_today: int
    system_load: float
    running_tasks: int = 0
    failed_tasks_today: int = 0


class HiveStatusUpdate(EventData, kw_only=True):
    TYPE: ClassVar[str] = "hive_status_update"
    status: str
    metrics: HiveMetrics
    #: at most 20 active alerts, the most severe first (GET /api/alerts lists all)
    alerts: list[Alert] = msgspec.field(default_factory=list)
    #: active alerts not listed in ``alerts`` (over the cap)
    alerts_omitted: int = 0


class SystemAlert(EventData, kw_only=True):
    TYPE: ClassVar[str] = "system_alert"
    level: str
    title: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    #: identifies the condition, so the alert that clears it names the same key
    alert_key: str | None = None
    #: "active" while the condition holds, "cleared" when it no longer does
    state: str = "active"


class ResourceAlert(EventData, kw_only=True):
    TYPE: ClassVar[str] = "resource_alert"
    resource: str
    usage_percent: float
    threshold_percent: float
    trend: str
    recommendations: list[str] = msgspec.field(default_factory=list)
    #: "active" when the threshold is crossed, "cleared" when usage fell back (hysteresis)
    state: str = "active"


class ModuleStatusChanged(EventData, kw_only=True):
    TYPE: ClassVar[str] = "module_status_changed"
    module: str
    old_status: str
    new_status: str
    reason: str
    affected_functions: list[str] = msgspec.field(default_factory=list)


class InterModuleMessage(EventData, kw_only=True):
    TYPE: ClassVar[str] = "inter_module_message"
    from_module: str
    to_module: str
    message_type: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class CoordinationEvent(EventData, kw_only=True):
    TYPE: ClassVar[str] = "coordination_event"
    event_type: str
    module: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class LearningCycleStarted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "learning_cycle_started"
    cycle_id: str
    agent_id: str
    learning_type: str
    target_capability: str
    estimated_duration_minutes: float


class Improvement(Struct):
    old_value: float
    new_value: float
    improvement: float


class LearningCycleCompleted(EventData, kw_only=True):
    TYPE: ClassVar[str] = "learning_cycle_completed"
    cycle_id: str
    agent_id: str
    improvements: dict[str, Improvement]
    duration_ms: float


class AgentLearningReset(EventData, kw_only=True):
    """Extra: an operator reset learned proficiencies to the declared ones (pending outcomes are discarded)."""

    # Each named capability goes back to its declared prior, and the outcomes not
    # yet used by a learning cycle are discarded (also those of a cycle in progress).

    TYPE: ClassVar[str] = "agent_learning_reset"
    agent_id: str
    #: capability name -> old_value (the learned proficiency), new_value (the prior)
    capabilities: dict[str, Improvement]
    requested_by: str


class ErrorOccurred(EventData, kw_only=True):
    TYPE: ClassVar[str] = "error_occurred"
    error_id: str
    component: str
    error: TaskError
    severity: str


#: The 20 event types named by the spec.
SPEC_EVENT_TYPES: tuple[type[EventData], ...] = (
    AgentCreated,
    AgentStatusChanged,
    AgentPerformanceUpdated,
    AgentRemoved,
    TaskCreated,
    TaskAssigned,
    TaskStarted,
    TaskProgress,
    TaskCompleted,
    TaskFailed,
    TaskCancelled,
    HiveStatusUpdate,
    SystemAlert,
    ResourceAlert,
    ModuleStatusChanged,
    InterModuleMessage,
    CoordinationEvent,
    LearningCycleStarted,
    LearningCycleCompleted,
    ErrorOccurred,
)
EXTRA_EVENT_TYPES: tuple[type[EventData], ...] = (
    AgentUpdated,
    TaskRetried,
    TaskReleased,
    TaskRecalled,
    AgentLearningReset,
    QuotaSet,
    QuotaDeleted,
    BudgetSet,
    BudgetDeleted,
    TaskApprovalRequested,
    TaskApproved,
    TaskRejected,
    TaskInputRequired,
    TaskInputReceived,
)
DATA_TYPES: dict[str, type[EventData]] = {t.TYPE: t for t in SPEC_EVENT_TYPES + EXTRA_EVENT_TYPES}


class Event(Struct, omit_defaults=True):
    """The envelope: exactly ``{type, data, timestamp, message_id}`` plus ``sequence``."""

    type: str
    data: EventData
    timestamp: datetime
    message_id: str
    sequence: int = 0


class RawEvent(Struct):
    """An envelope whose data is not yet decoded (reading the log back)."""

    type: str
    data: msgspec.Raw
    timestamp: datetime
    message_id: str
    sequence: int = 0


_encoder = msgspec.json.Encoder()
_raw_decoder = msgspec.json.Decoder(RawEvent)
_data_decoders = {name: msgspec.json.Decoder(t) for name, t in DATA_TYPES.items()}


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(body: bytes) -> Event:
    """Decode one stored envelope back into a typed event."""
    raw = _raw_decoder.decode(body)
    data = _data_decoders[raw.type].decode(raw.data)
    return Event(raw.type, data, raw.timestamp, raw.message_id, raw.sequence)


# Helpers used by entity references in other event payloads.
__all__ = [
    "DATA_TYPES",
    "Event",
    "EventData",
    "RequiredCapability",
    "SPEC_EVENT_TYPES",
    "decode_event",
    "encode_event",
]
