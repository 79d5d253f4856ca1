"""Python client of Hive Hub: async REST (:class:`HiveClient`), the resumable /ws
event stream (:class:`EventStream`) and a blocking wrapper (:class:`SyncHiveClient`).

Errors are the hub's own classes (``hivehub.core.errors``), re-exported here, plus
:class:`HubUnreachable`. See ``docs/client.md``.
"""

from ..core.errors import (
    AgentExists,
    AgentNotFound,
    BudgetNotFound,
    Conflict,
    DependencyNotFound,
    Forbidden,
    HiveError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NotTaskHolder,
    PayloadTooLarge,
    QuotaInUse,
    QuotaNotFound,
    RateLimited,
    StoreUnavailable,
    TaskNotFound,
    Unauthorized,
)
from .errors import HubUnreachable, error_class, hive_error
from .rest import DEFAULT_URL, TERMINAL_STATUSES, HiveClient
from .stream import CLOSE_SLOW, EventStream
from .sync import SyncEventStream, SyncHiveClient

__all__ = [
    "CLOSE_SLOW",
    "DEFAULT_URL",
    "TERMINAL_STATUSES",
    "AgentExists",
    "AgentNotFound",
    "BudgetNotFound",
    "Conflict",
    "DependencyNotFound",
    "EventStream",
    "Forbidden",
    "HiveClient",
    "HiveError",
    "HubUnreachable",
    "InvalidInput",
    "InvalidTransition",
    "NotFound",
    "NotTaskHolder",
    "PayloadTooLarge",
    "QuotaInUse",
    "QuotaNotFound",
    "RateLimited",
    "StoreUnavailable",
    "SyncEventStream",
    "SyncHiveClient",
    "TaskNotFound",
    "Unauthorized",
    "error_class",
    "hive_error",
]
