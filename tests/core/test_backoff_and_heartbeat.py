"""The one backoff and the one heartbeat rule (``core/policies.py``) that the hive,
the agent SDK (push and pull) and the Python client share."""

from __future__ import annotations

import random

import pytest

from hivehub.core.policies import backoff, exponential_backoff, heartbeat_interval


def top() -> float:
    return 1.0  # the largest draw: the ceiling itself


def test_ceiling_doubles_up_to_the_cap_without_overflow() -> None:
    assert [backoff(n, 0.5, 30.0, top) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff(10_000, 0.5, 30.0, top) == 30.0
    assert backoff(-3, 0.5, 30.0, top) == 0.5  # negative counts as no failure


def test_full_jitter_spreads_over_zero_to_the_ceiling() -> None:
    assert backoff(3, 0.5, 30.0, lambda: 0.0) == 0.0
    rng = random.Random(7)
    delays = [backoff(4, 0.5, 30.0, rng.random) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays) and max(delays) - min(delays) > 4


def test_equal_jitter_never_goes_below_half_the_ceiling() -> None:
    assert backoff(2, 1.0, 60.0, lambda: 0.0, jitter="equal") == 2.0
    assert backoff(2, 1.0, 60.0, top, jitter="equal") == 4.0
    rng = random.Random(3)
    assert all(2.0 <= backoff(2, 1.0, 60.0, rng.random, jitter="equal") <= 4.0 for _ in range(100))


def test_task_retries_are_the_same_backoff_after_n_minus_one_failures() -> None:
    retry = exponential_backoff(1.0, 60.0, random.Random(5))
    again = random.Random(5)
    assert [retry(n) for n in (1, 2, 3, 9)] == [
        backoff(n - 1, 1.0, 60.0, again.random, jitter="equal") for n in (1, 2, 3, 9)
    ]


@pytest.mark.parametrize(
    ("timeout", "interval", "floor", "expected"),
    [
        (15.0, 5.0, 0.0, 5.0),  # the hub's defaults: 5 s is within a third of 15 s
        (6.0, 5.0, 0.0, 2.0),  # a short timeout: a third of it
        (6.0, None, 0.0, 2.0),  # no interval: the longest allowed
        (0.09, None, 0.05, 0.05),  # never below the floor
        (None, 5.0, 0.0, 5.0),  # no timeout known: the interval as it is
        (0.0, 5.0, 0.0, 5.0),
        (None, None, 0.0, None),
    ],
)
def test_heartbeat_interval_is_at_most_a_third_of_the_timeout(
    timeout: float | None, interval: float | None, floor: float, expected: float | None
) -> None:
    assert heartbeat_interval(timeout, interval, floor=floor) == expected
