"""The stable task error codes of model calls (docs: issue 13, "Bad input")."""

from __future__ import annotations

from typing import Any

from ..context import TaskFailure

__all__ = [
    "BUDGET_EXCEEDED",
    "INVALID_INPUT",
    "LLM_BAD_RESPONSE",
    "LLM_UNAVAILABLE",
    "RATE_LIMITED",
    "LLMFailure",
]

LLM_UNAVAILABLE = "LLM_UNAVAILABLE"  # connection refused, 5xx, timeout (retryable)
LLM_BAD_RESPONSE = "LLM_BAD_RESPONSE"  # garbage, a cut stream, invalid JSON for a schema (retryable)
RATE_LIMITED = "RATE_LIMITED"  # the provider's 429 (retry_after from Retry-After)
BUDGET_EXCEEDED = "BUDGET_EXCEEDED"  # the task's max_tokens / max_cost_usd (not retryable)
INVALID_INPUT = "INVALID_INPUT"  # malformed messages (not retryable)


class LLMFailure(TaskFailure):
    """A model call that failed; ``usage`` is what it spent so far, ``retry_after``
    the provider's Retry-After (seconds) for ``RATE_LIMITED``."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        retryable: bool = True,
        *,
        usage: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, details, retryable)
        self.usage = usage
        self.retry_after = retry_after
