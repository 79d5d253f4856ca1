"""Errors of the hive, one tree under :class:`HiveError`.

::

    HiveError                      base; every error the hub answers with on purpose
    ├── InvalidInput               a request is well-formed JSON but not acceptable (422)
    │   ├── PayloadTooLarge        body, frame or JSON depth over the configured limit (413)
    │   ├── AttemptRequired        an agent report that does not name its attempt (422)
    │   ├── CursorOutOfRange       a ``since`` beyond the head of the log (400)
    │   └── DependencyNotFound     a ``depends_on`` id is unknown (422)
    ├── NotFound                   (404)
    │   ├── AgentNotFound
    │   ├── TaskNotFound
    │   ├── QuotaNotFound          an agent names a quota pool that was never set
    │   └── BudgetNotFound
    ├── Conflict                   the state does not allow it (409)
    │   ├── InvalidTransition      e.g. cancelling a completed task
    │   │   └── TaskEvicted        a finished task evicted from memory can no longer change
    │   ├── NotTaskHolder          a report from an agent that does not hold the task (stale)
    │   ├── QuotaInUse             deleting a quota pool a registered agent or an attempt in flight draws from
    │   └── AlreadyExists          an id that is taken
    │       ├── AgentExists
    │       └── TaskExists
    ├── Unauthorized / Forbidden   (401 / 403)
    ├── RateLimited                (429)
    └── StoreUnavailable           the log cannot be written; nothing was accepted (503)

Outside the tree, :class:`FactsRequired` is not an answer but a caller's mistake:
``Hive.handle`` was not given the final statuses, looked up in the log, of the
tasks a command names that the core has forgotten (``HiveConfig.remember_evicted``).

The ``code`` strings are the contract: the server maps each class to an HTTP
status, WebSocket close code and error code in ``hivehub/protocol/errors.py``, and the Python client
raises the same classes back from the codes.
"""

from __future__ import annotations

from typing import Any


class HiveError(Exception):
    code = "hive_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details


class InvalidInput(HiveError):
    code = "invalid_input"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class AttemptRequired(InvalidInput):
    """A task report (start, progress, complete, fail, release) without ``attempt``:
    it cannot be told apart from a stale report of an earlier attempt."""

    code = "attempt_required"


class CursorOutOfRange(InvalidInput):
    """``since`` names a sequence the log has not reached (details: ``since``, ``head``)."""

    code = "cursor_out_of_range"


class NotFound(HiveError):
    code = "not_found"


class AgentNotFound(NotFound):
    code = "agent_not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"


class QuotaNotFound(NotFound):
    code = "quota_not_found"


class BudgetNotFound(NotFound):
    code = "budget_not_found"


class DependencyNotFound(InvalidInput):
    code = "dependency_not_found"


class Conflict(HiveError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class TaskEvicted(InvalidTransition):
    """The task finished and was evicted from memory (``retain_finished``): it can still
    be read (from the log) but no longer retried, nor used by a retried dependent."""

    code = "task_evicted"


class NotTaskHolder(Conflict):
    code = "not_task_holder"


class QuotaInUse(Conflict):
    code = "quota_in_use"


class AlreadyExists(Conflict):
    code = "already_exists"


class AgentExists(AlreadyExists):
    code = "agent_exists"


class TaskExists(AlreadyExists):
    code = "task_exists"


class Unauthorized(HiveError):
    code = "unauthorized"


class Forbidden(HiveError):
    code = "forbidden"


class RateLimited(HiveError):
    code = "rate_limited"


class StoreUnavailable(HiveError):
    code = "store_unavailable"


class FactsRequired(LookupError):
    """``Hive.handle`` needs the final status of tasks the core has forgotten
    (``task_ids``, from ``Hive.unknown_task_ids``), looked up in the log by the
    caller and passed as ``facts``. Raised before anything changed; a programming
    error of the adapter, never an answer to a client."""

    def __init__(self, task_ids: tuple[str, ...]) -> None:
        super().__init__(
            f"the final status of {len(task_ids)} forgotten task id(s) must be given: {task_ids[:5]}"
        )
        self.task_ids = task_ids


ALL_ERRORS: tuple[type[HiveError], ...] = (
    HiveError,
    InvalidInput,
    PayloadTooLarge,
    AttemptRequired,
    CursorOutOfRange,
    NotFound,
    AgentNotFound,
    TaskNotFound,
    QuotaNotFound,
    BudgetNotFound,
    DependencyNotFound,
    Conflict,
    InvalidTransition,
    TaskEvicted,
    NotTaskHolder,
    QuotaInUse,
    AlreadyExists,
    AgentExists,
    TaskExists,
    Unauthorized,
    Forbidden,
    RateLimited,
    StoreUnavailable,
)
ERRORS_BY_CODE: dict[str, type[HiveError]] = {e.code: e for e in ALL_ERRORS}
