"""The math/numeric handler computes real results."""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from hivehub.agent import TaskFailure
from hivehub.demo import compute_numeric, math_task

from .helpers import ctx_for


def test_primes() -> None:
    out = compute_numeric({"operation": "primes_up_to", "n": 100})
    assert out["count"] == 25 and out["sum"] == 1060 and out["largest"] == 97
    assert out["primes"][:5] == [2, 3, 5, 7, 11]
    assert out["twin_prime_pairs"] == 8
    big = compute_numeric({"operation": "primes_up_to", "n": 1_000_000})
    assert big["count"] == 78498 and big["largest"] == 999983 and "primes" not in big
    assert compute_numeric({"operation": "primes_up_to", "n": 1})["count"] == 0


def test_primes_report_progress_per_segment() -> None:
    ctx, seen = ctx_for({"operation": "primes_up_to", "n": 250_000}, type="math")
    out = math_task(ctx)
    assert out["count"] == 22044 and out["largest"] == 249989 and out["last"][-1] == 249989
    fractions = [f for f, _ in seen]
    assert len(fractions) >= 5 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[0][1] == "sieved up to 50,001"


def test_fibonacci() -> None:
    out = compute_numeric({"operation": "fibonacci", "n": 12})
    assert out["first_terms"][:10] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34] and out["value"] == 144
    out = compute_numeric({"operation": "fibonacci", "n": 100})
    assert out["value"] == "354224848179261915075" and out["digits"] == 21
    assert out["ratio_to_previous"] == pytest.approx((1 + math.sqrt(5)) / 2)
    assert compute_numeric({"operation": "fibonacci", "n": 10})["value"] == 55


def test_statistics() -> None:
    out = compute_numeric({"numbers": [1, 2, 3]})  # "statistics" is the default operation
    assert out["mean"] == 2.0 and out["median"] == 2 and out["stdev"] == 1.0 and out["modes"] == []
    out = compute_numeric({"operation": "statistics", "numbers": [2, 4, 4, 4, 5, 5, 7, 9, 100]})
    assert out["modes"] == [4]
    assert out["outliers"]["values"] == [100]
    assert out["population_stdev"] == pytest.approx(
        statistics.pstdev([2, 4, 4, 4, 5, 5, 7, 9, 100]), abs=1e-6
    )


def _factors(n: int, **kw: Any) -> dict[int, int]:
    (res,) = compute_numeric({"operation": "factorize", "numbers": [n], **kw})["results"]
    return {int(f["prime"]): f["exponent"] for f in res["factors"]}


def test_factorize_and_gcd() -> None:
    assert _factors(600851475143) == {71: 1, 839: 1, 1471: 1, 6857: 1}
    assert _factors(2**10 * 3**4) == {2: 10, 3: 4}
    assert _factors(1000000007 * 998244353) == {998244353: 1, 1000000007: 1}
    # past 2**64: the elliptic-curve rounds (two 13-digit primes, a square, small factors)
    p, q = 1000000000039, 10000000000037
    assert _factors(12 * p * p * q) == {2: 2, 3: 1, p: 2, q: 1}
    assert _factors(2**61 - 1) == {2**61 - 1: 1} and len(_factors(2**61 + 1)) > 1
    out = compute_numeric({"operation": "factorize", "numbers": [97, 360]})
    assert out["results"][0]["is_prime"] is True
    assert out["results"][1]["divisor_count"] == 24
    g = compute_numeric({"operation": "gcd_lcm", "numbers": [12, 18, 30]})
    assert (g["gcd"], g["lcm"]) == (6, 180)


def test_factorize_gives_up_at_its_time_budget() -> None:
    p, q = 1000000000000000000000007, 70000000000000000000000109  # 25 and 26 digits
    ctx, seen = ctx_for({"operation": "factorize", "numbers": [15, p * q], "time_budget_seconds": 0.5})
    with pytest.raises(TaskFailure) as info:
        math_task(ctx)
    f = info.value
    assert f.code == "FACTORIZATION_BUDGET_EXCEEDED" and f.retryable is False
    assert "50-digit composite" in f.message and "0.5 s budget" in f.message
    assert f.details["composite"] == str(p * q)
    assert any(s and "curves tried" in s for _, s in seen)  # it reported its rounds


@pytest.mark.parametrize(
    "bad",
    [
        {"operation": "nope"},
        {"operation": "primes_up_to", "n": -5},
        {"operation": "primes_up_to", "n": 10**12},
        {"operation": "statistics", "numbers": []},
        {"operation": "statistics", "numbers": [1, "x"]},
        {"operation": "factorize", "numbers": [1.5]},
        {"operation": "factorize", "numbers": [10**81]},
        {"operation": "factorize", "numbers": [6], "time_budget_seconds": 0},
        "numbers",
    ],
)
def test_math_rejects_bad_input(bad: Any) -> None:
    with pytest.raises(TaskFailure) as info:
        math_task(ctx_for(bad, type="math")[0])
    assert info.value.code == "INVALID_INPUT" and info.value.retryable is False
