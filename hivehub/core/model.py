"""Domain model: agents and tasks as projections folded from the event log.

Wire names follow the spec (``docs/spec``): ``TaskStatus.RUNNING == "running"``.
Projections are plain msgspec Structs so they encode straight to JSON.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

Unit = Annotated[float, Meta(ge=0.0, le=1.0)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Id = Annotated[str, Meta(min_length=1, max_length=100)]

PRIORITY_NAMES: dict[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
PriorityIn = Annotated[int, Meta(ge=1, le=4)] | Literal["low", "medium", "high", "critical"]


def priority_value(p: int | str) -> int:
    """Map a priority given as 1..4 or as a name to its stored number."""
    return PRIORITY_NAMES[p] if isinstance(p, str) else p


class AgentType(StrEnum):
    WORKER = "worker"
    COORDINATOR = "coordinator"
    SPECIALIST = "specialist"
    LEARNER = "learner"


class AgentStatus(StrEnum):
    IDLE = "idle"
    ACTIVE = "active"
    LEARNING = "learning"
    OFFLINE = "offline"
    FAILED = "failed"


class TaskStatus(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: submitted with ``requires_approval``: not queued until an operator approves it
    AWAITING_APPROVAL = "awaiting_approval"
    #: its holder asked a person a question (``core/human.py``); the agent still holds it
    INPUT_REQUIRED = "input_required"


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
#: an agent holds the task (its slot is taken, its reports are accepted)
HELD = frozenset({TaskStatus.ASSIGNED, TaskStatus.RUNNING, TaskStatus.INPUT_REQUIRED})
ONLINE = frozenset({AgentStatus.IDLE, AgentStatus.ACTIVE, AgentStatus.LEARNING})
#: the work (in milliseconds of the agent's mean task time) a prefetching agent is
#: given beyond its slots: enough to cover a round trip to the hub for fast tasks,
#: a single task for anything slower (``Agent.prefetch_depth``)
PREFETCH_WINDOW_MS = 50.0
#: the largest prefetch an agent may announce
MAX_PREFETCH = 64


class Capability(Struct, omit_defaults=False):
    """A capability as an agent declares it (``AgentSpec``, ``AgentPatch``)."""

    name: Name
    proficiency: Unit
    learning_rate: Unit = 0.1


class AgentCapability(Capability, omit_defaults=False):
    """A capability as the hub holds it: ``proficiency`` is effective (learned, else declared), ``declared_proficiency`` the agent's prior."""

    # Registering again with the same prior keeps the learned value; a new prior
    # replaces it; an operator resets it with ``agent_learning_reset``
    # (``core/learning.py``: merge_capabilities).

    #: the agent's prior; ``None`` only in events logged before it existed
    #: (then the prior is ``proficiency``)
    declared_proficiency: Unit | None = None

    @property
    def prior(self) -> float:
        return self.proficiency if self.declared_proficiency is None else self.declared_proficiency


class RequiredCapability(Struct):
    name: Name
    min_proficiency: Unit = 0.0


class TaskError(Struct):
    code: str
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


#: where an attempt's prompt token count comes from, the less certain one over several calls
PromptTokensSource = Literal["server", "tokenizer", "estimate"]


class UsageReport(Struct, forbid_unknown_fields=True):
    """Model usage as an agent reports it (commands, wire frames): tokens, never a cost."""

    model: Annotated[str, Meta(min_length=1, max_length=200)]
    prompt_tokens: Annotated[int, Meta(ge=0, le=10**9)] = 0
    completion_tokens: Annotated[int, Meta(ge=0, le=10**9)] = 0
    #: where ``prompt_tokens`` comes from (``None``: not said, as before this field)
    prompt_tokens_source: PromptTokensSource | None = None


class Usage(Struct):
    """Model usage as the hub logs it (events, ``Task.usage``); the cost comes from
    the hub's price table when the core decides (``core/usage.py``)."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    #: prompt + completion
    total_tokens: int
    #: from the price table; ``None``: the model has no price
    cost_usd: float | None = None
    #: ``server`` (the model server's usage), ``tokenizer`` (counted with the server's
    #: tokenizer after the stream), ``estimate``; ``None``: not said (older logs)
    prompt_tokens_source: PromptTokensSource | None = None


class UsageTotals(Struct):
    """Usage folded over attempts (per agent, model, task type, owner)."""

    #: attempts that reported usage
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    #: the sum of known costs
    cost_usd: float = 0.0
    #: tokens of models without a price
    unpriced_tokens: int = 0


class ModelPrice(Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens of one model (``HiveConfig.prices``)."""

    input_per_million: Annotated[float, Meta(ge=0)]
    output_per_million: Annotated[float, Meta(ge=0)]


class Quota(Struct):
    """A quota pool: the provider limits an agent's model calls draw from (``None``: unlimited)."""

    name: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    requested_by: str = "api"


class Budget(Struct):
    """An owner's daily budget (per UTC day; ``None``: unlimited)."""

    owner: str
    tokens_per_day: int | None = None
    cost_usd_per_day: float | None = None
    requested_by: str = "api"


class Reservation(Struct):
    """What an assignment holds until its attempt ends (``task_assigned.reservation``)."""

    #: the token estimate drawn from the agent's pool
    tokens: int
    #: tokens held against the owner's daily budget: the task's ``max_tokens`` when
    #: it has one (the agent stops there), else ``tokens``
    budget_tokens: int
    #: cost held against the owner's budget: ``max_cost_usd``, else the type's mean, else 0
    cost_usd: float = 0.0
    #: the pool it drew from (the agent's); ``None``: none
    quota: str | None = None


class TypeStats(Struct):
    """Observed outcomes of one agent on one task type (for estimates)."""

    completed: int = 0
    failed: int = 0
    total_ms: float = 0.0


class AgentMetrics(Struct):
    tasks_completed: int = 0
    tasks_failed: int = 0
    #: completed / (completed + failed); ``None`` until the first outcome.
    success_rate: float | None = None
    #: mean execution time of completed tasks; ``None`` until the first completion.
    average_response_time_ms: float | None = None
    capability_improvements: int = 0
    total_execution_ms: float = 0.0
    #: model usage of its attempts
    usage: UsageTotals = msgspec.field(default_factory=UsageTotals)


class Agent(Struct):
    id: str
    name: str
    type: AgentType
    capabilities: list[AgentCapability]
    status: AgentStatus
    max_concurrent_tasks: int
    created_at: datetime
    last_seen_at: datetime
    metrics: AgentMetrics = msgspec.field(default_factory=AgentMetrics)
    current_tasks: list[str] = msgspec.field(default_factory=list)
    type_stats: dict[str, TypeStats] = msgspec.field(default_factory=dict)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    #: it handed work back to shut down: no new work until it comes back online
    draining: bool = False
    #: the quota pool its model calls draw from (``None``: none)
    quota: str | None = None
    #: the most tasks it accepts beyond its slots, queued until a slot frees
    #: (announced at registration; 0: none, as for an agent that predates prefetch)
    prefetch: int = 0

    def capability(self, name: str) -> AgentCapability | None:
        for c in self.capabilities:
            if c.name == name:
                return c
        return None

    @property
    def load(self) -> int:
        return len(self.current_tasks)

    @property
    def prefetch_depth(self) -> int:
        """Tasks the hub assigns beyond the slots now: sized from the measured task
        time so about ``PREFETCH_WINDOW_MS`` of work waits queued (at least one task,
        at most ``prefetch``); one until a task has completed."""
        if self.prefetch <= 0:
            return 0
        ms = self.metrics.average_response_time_ms
        if ms is None:
            return 1
        return max(1, min(self.prefetch, math.ceil(PREFETCH_WINDOW_MS / max(ms, 0.001))))

    @property
    def free_slots(self) -> int:
        """Assignments it can take now: its slots plus its prefetch depth, less what it holds."""
        return self.max_concurrent_tasks + self.prefetch_depth - len(self.current_tasks)

    def meets(self, required: list[RequiredCapability]) -> bool:
        """True when every requirement is met (``proficiency >= min_proficiency``)."""
        for r in required:
            c = self.capability(r.name)
            if c is None or c.proficiency < r.min_proficiency:
                return False
        return True


class InputRequest(Struct):
    """A question the task's holder asked (``task_input_required``), open until answered or timed out."""

    request_id: str
    question: str
    choices: list[str] | None
    timeout_seconds: float
    requested_at: datetime
    #: when the question times out (the answer is then ``timed_out``)
    deadline: datetime


class InputAnswer(Struct):
    """The last answer to a question of the task's current attempt (``task_input_received``)."""

    request_id: str
    attempt: int
    #: ``None`` when the question timed out
    answer: str | None
    answered_by: str
    timed_out: bool
    answered_at: datetime


class Task(Struct):
    id: str
    description: str
    type: str
    priority: int
    status: TaskStatus
    required_capabilities: list[RequiredCapability]
    input: Any
    timeout_seconds: float
    max_retries: int
    created_at: datetime
    updated_at: datetime
    attempt: int = 0
    #: failed attempts counted against ``max_retries`` (reset by a manual retry)
    failures: int = 0
    #: the provider's 429s (``RATE_LIMITED`` reports) of its attempts; past
    #: ``HiveConfig.max_rate_limited`` one spends a retry (reset by a manual retry)
    rate_limited: int = 0
    depends_on: list[str] = msgspec.field(default_factory=list)
    assigned_agent_id: str | None = None
    result: Any = None
    error: TaskError | None = None
    progress: float = 0.0
    current_step: str | None = None
    estimated_completion: datetime | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    next_retry_at: datetime | None = None
    cancelled_by: str | None = None
    created_by: str | None = None
    #: agents whose attempts failed, so a retry prefers another one
    failed_agents: list[str] = msgspec.field(default_factory=list)
    #: sequence of its task_created event: replay its history with ?task_id=&since=created_sequence-1
    created_sequence: int = 0
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    #: the submitter's token estimate (else the hub estimates from the type's history)
    estimated_tokens: int | None = None
    #: per-attempt caps the agent is told and stops at (``BUDGET_EXCEEDED``)
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    #: model usage summed over every attempt that ended so far
    usage: Usage | None = None
    #: the streamed output of the current attempt (its ``output_delta``s, concatenated)
    output: str = ""

    @property
    def owner(self) -> str:
        """Whose budget the task spends: the submitter's token (``created_by`` is
        ``role:token`` for a request, so ``operator:ci`` is owner ``ci``; with auth off
        ``admin:anonymous`` is ``anonymous``), else ``anonymous``."""
        if not self.created_by:
            return "anonymous"
        _, sep, name = self.created_by.partition(":")
        return name if sep and name else self.created_by

    #: it waits in ``awaiting_approval`` until an operator approves it (``core/human.py``)
    requires_approval: bool = False
    approved_by: str | None = None
    #: the open question while ``input_required``
    pending_input: InputRequest | None = None
    #: the last answer in this attempt (a pull agent reads it once ``pending_input`` is gone)
    last_input: InputAnswer | None = None


class Cycle(Struct):
    """A learning cycle in progress (folded from ``learning_cycle_started``)."""

    cycle_id: str
    agent_id: str
    started_at: datetime
    target: str
    window: dict[str, list[float]]
    #: ``started_at`` on the monotonic axis (the duration is measured on it)
    started_mono: float = 0.0
