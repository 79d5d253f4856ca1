"""What the demo handlers share: input limits and the ``INVALID_INPUT`` failure."""

from __future__ import annotations

from typing import Any

from ..agent.context import TaskFailure

MAX_ROWS = 1_000_000
MAX_TEXT_CHARS = 5_000_000
MAX_PRIME_LIMIT = 10_000_000
MAX_FIBONACCI_N = 20_000  # F(20000) has 4180 digits (Python's str() limit is 4300)
MAX_FACTORIZE = 10**80
MAX_NUMBERS = 1_000_000


def invalid_input(message: str, **details: Any) -> TaskFailure:
    return TaskFailure("INVALID_INPUT", message, details, retryable=False)


def no_progress(fraction: float, step: str | None = None) -> None:
    return None


def rounded(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)
