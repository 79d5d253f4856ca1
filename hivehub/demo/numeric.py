"""``math`` / ``numeric``: ``primes_up_to``, ``fibonacci``, ``statistics``, ``factorize``
and ``gcd_lcm``.

Number theory is sympy's (``primerange``, ``primepi``, ``fibonacci``, ``isprime``,
``factorint`` and its elliptic-curve method ``ecm``); the statistics are the standard
library's (``statistics``, ``math``). The handler only adds input checks, progress
and a time budget for factorizations that could otherwise run for hours.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import sympy
from sympy.ntheory import ecm

from ..agent.context import TaskContext, TaskFailure
from .inputs import (
    MAX_FACTORIZE,
    MAX_FIBONACCI_N,
    MAX_NUMBERS,
    MAX_PRIME_LIMIT,
    invalid_input,
    no_progress,
    rounded,
)


def _int_param(data: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = data.get(key)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise invalid_input(f'"{key}" must be an integer in {lo}..{hi}', **{key: v})
    return v


def _numbers(data: dict[str, Any], *, integers: bool = False) -> list[Any]:
    nums = data.get("numbers")
    if not isinstance(nums, list) or not nums:
        raise invalid_input('"numbers" must be a non-empty list')
    if len(nums) > MAX_NUMBERS:
        raise invalid_input(f'at most {MAX_NUMBERS} "numbers"')
    for i, x in enumerate(nums):
        ok = isinstance(x, int) if integers else isinstance(x, int | float) and math.isfinite(x)
        if not ok or isinstance(x, bool):
            kind = "an integer" if integers else "a finite number"
            raise invalid_input(f"numbers[{i}] is not {kind}", index=i, value=repr(x)[:50])
    return nums


#: numbers sieved per progress step of ``primes_up_to``
PRIME_SEGMENT = 50_000


def _primes_up_to(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    n = _int_param(data, "n", 0, MAX_PRIME_LIMIT)
    total = twins = seen = 0
    prev: int | None = None
    first: list[int] = []
    last: list[int] = []
    keep_all = n <= 10_000
    everything: list[int] = []
    for low in range(2, n + 1, PRIME_SEGMENT):
        check()
        high = min(low + PRIME_SEGMENT, n + 1)
        for p in sympy.primerange(low, high):
            p = int(p)
            seen += 1
            total += p
            if prev is not None and p - prev == 2:
                twins += 1
            prev = p
            if len(first) < 10:
                first.append(p)
            if keep_all:
                everything.append(p)
            last.append(p)
        del last[:-10]
        progress(min(0.99, (high - 1) / n), f"sieved up to {high - 1:,}")
    count = int(sympy.primepi(n))
    if count != seen:  # two sympy algorithms disagree: a result we cannot stand behind
        raise TaskFailure("INCONSISTENT_RESULT", f"primerange found {seen} primes, primepi says {count}")
    out: dict[str, Any] = {
        "operation": "primes_up_to",
        "n": n,
        "count": count,
        "sum": total,
        "largest": prev,
        "twin_prime_pairs": twins,
        "first": first,
        "last": last,
        "density": round(count / n, 6) if n else 0.0,
        "prime_number_theorem_estimate": round(n / math.log(n), 2) if n > 1 else 0.0,
    }
    if keep_all:
        out["primes"] = everything
    return out


def _big(x: int) -> int | str:
    """Integers beyond 2**53 as strings, so JSON readers without big ints keep every digit."""
    if abs(x) <= 2**53:
        return x
    try:
        return str(x)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<{x.bit_length()}-bit integer>"


def _fibonacci(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    n = _int_param(data, "n", 0, MAX_FIBONACCI_N)
    progress(0.1, f"computing F({n})")
    fn, fn1 = int(sympy.fibonacci(n)), int(sympy.fibonacci(n + 1))
    check()
    digits = str(fn)
    progress(0.8, "summarizing")
    return {
        "operation": "fibonacci",
        "n": n,
        "value": _big(fn),
        "digits": len(digits),
        "digit_sum": sum(map(int, digits)),
        "next": _big(fn1),
        # exact big-int division, rounded once to a float (approaches the golden ratio)
        "ratio_to_previous": fn / (fn1 - fn) if n >= 2 else None,
        "first_terms": [int(sympy.fibonacci(i)) for i in range(min(n + 1, 30))],
    }


def _statistics(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data)
    progress(0.2, "sorting")
    s = sorted(nums)
    check()
    n = len(s)
    modes = statistics.multimode(s)
    out: dict[str, Any] = {
        "operation": "statistics",
        "count": n,
        "sum": rounded(math.fsum(s)),
        "mean": rounded(statistics.fmean(s)),
        "median": rounded(statistics.median(s)),
        # values that occur most often (none when every value is unique)
        "modes": modes[:10] if len(modes) < n else [],
        "min": s[0],
        "max": s[-1],
        "range": rounded(s[-1] - s[0]),
        "variance": rounded(statistics.variance(s)) if n >= 2 else None,
        "stdev": rounded(statistics.stdev(s)) if n >= 2 else None,
        "population_stdev": rounded(statistics.pstdev(s)),
    }
    progress(0.6, "quantiles")
    if n >= 2:
        q1, q2, q3 = statistics.quantiles(s, n=4, method="inclusive")
        iqr = q3 - q1
        lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        out["quartiles"] = [rounded(q1), rounded(q2), rounded(q3)]
        out["iqr"] = rounded(iqr)
        outliers = [x for x in s if x < lo or x > hi]
        out["outliers"] = {"count": len(outliers), "values": outliers[:20]}
    if all(x > 0 for x in s):
        out["geometric_mean"] = rounded(statistics.geometric_mean(s))
        out["harmonic_mean"] = rounded(statistics.harmonic_mean(s))
    return out


#: below this, ``factorint`` is quick on any input (Pollard rho finds a factor
#: under 2**32 in about 2**16 steps); above it, factors are sought in bounded rounds
QUICK_FACTORIZE = 2**64
#: elliptic curves tried per round of a large composite, between budget checks
CURVES_PER_ROUND = 2
DEFAULT_BUDGET_SECONDS = 10.0


def _factor_large(
    n: int, deadline: float, budget: float, check: Callable[[], None], step: Callable[[str], None]
) -> dict[int, int]:
    """``{prime: exponent}`` of ``n`` (>= QUICK_FACTORIZE): trial division by sympy's
    ``factorint``, then its elliptic-curve method a few curves at a time, so the
    handler can stop at ``deadline`` (a TaskFailure naming the composite it could
    not split) and notice a cancellation between rounds."""
    factors: dict[int, int] = {}
    first = sympy.factorint(n, limit=100_000, use_rho=False, use_pm1=False, use_ecm=False)
    todo = []
    for f, e in first.items():
        f = int(f)
        if sympy.isprime(f):
            factors[f] = factors.get(f, 0) + e
        else:
            todo.append((f, e))
    seed = 0
    while todo:
        m, e = todo.pop()
        while True:
            check()
            if time.monotonic() > deadline:
                raise TaskFailure(
                    "FACTORIZATION_BUDGET_EXCEEDED",
                    f"no factor of the {len(str(m))}-digit composite {str(m)[:12]}... of {n} "
                    f"found within the {budget:g} s budget",
                    {"n": str(n), "composite": str(m), "budget_seconds": budget},
                    retryable=False,  # the same input and budget fail the same way anywhere
                )
            seed += 1
            try:
                primes = ecm(m, max_curve=CURVES_PER_ROUND, seed=seed)
            except ValueError:  # "Increase the bounds": no factor on these curves
                step(f"{len(str(m))}-digit composite: {seed * CURVES_PER_ROUND} curves tried")
                continue
            break
        for p in sorted(int(q) for q in primes):
            k = 0
            while m % p == 0:
                m //= p
                k += 1
            factors[p] = factors.get(p, 0) + k * e
    return dict(sorted(factors.items()))


def _factorize(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 1000:
        raise invalid_input('at most 1000 "numbers" to factorize')
    for x in nums:
        if not 1 <= x <= MAX_FACTORIZE:
            raise invalid_input(f"numbers to factorize must be in 1..{MAX_FACTORIZE:.0e}", value=str(x))
    budget = data.get("time_budget_seconds", DEFAULT_BUDGET_SECONDS)
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not 0.1 <= budget <= 600:
        raise invalid_input('"time_budget_seconds" must be a number in 0.1..600', value=budget)
    deadline = time.monotonic() + budget
    results = []
    for i, x in enumerate(nums, 1):
        check()

        def step(what: str, i: int = i) -> None:
            progress((i - 1) / len(nums), f"number {i}/{len(nums)}: {what}")

        if x < QUICK_FACTORIZE:
            f = {int(p): e for p, e in sympy.factorint(x).items()}
        else:
            f = _factor_large(x, deadline, float(budget), check, step)
        assert math.prod(p**e for p, e in f.items()) == x
        results.append(
            {
                "n": _big(x),
                "factors": [{"prime": _big(p), "exponent": e} for p, e in f.items()],
                "is_prime": f == {x: 1},
                "divisor_count": math.prod(e + 1 for e in f.values()),
            }
        )
        progress(i / len(nums), f"factorized {i}/{len(nums)}")
    return {"operation": "factorize", "results": results}


def _gcd_lcm(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 10_000 or any(abs(x) > MAX_FACTORIZE for x in nums):
        raise invalid_input(f'gcd_lcm takes at most 10000 "numbers" within +-{MAX_FACTORIZE:.0e}')
    g = math.gcd(*nums)
    lcm = math.lcm(*nums)
    return {"operation": "gcd_lcm", "count": len(nums), "gcd": g, "lcm": _big(lcm), "coprime": g == 1}


_OPERATIONS: dict[
    str, Callable[[dict[str, Any], Callable[..., None], Callable[[], None]], dict[str, Any]]
] = {
    "primes_up_to": _primes_up_to,
    "fibonacci": _fibonacci,
    "statistics": _statistics,
    "factorize": _factorize,
    "gcd_lcm": _gcd_lcm,
}


def compute_numeric(
    data: Any,
    *,
    progress: Callable[[float, str | None], None] = no_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Run one numeric operation: ``{"operation": "primes_up_to", "n": 100}``,
    ``{"operation": "fibonacci", "n": 90}``, ``{"operation": "statistics", "numbers": [...]}``,
    ``{"operation": "factorize", "numbers": [...]}``, ``{"operation": "gcd_lcm", "numbers": [...]}``.
    Without ``operation``, ``numbers`` means ``statistics``."""
    if not isinstance(data, dict):
        raise invalid_input('input must be an object with an "operation"')
    op = data.get("operation") or ("statistics" if "numbers" in data else None)
    fn = _OPERATIONS.get(op) if isinstance(op, str) else None
    if fn is None:
        raise invalid_input(f"unknown operation {op!r}", operations=sorted(_OPERATIONS))
    out = fn(data, progress, check)
    progress(1.0, "done")
    return out


def math_task(ctx: TaskContext) -> Any:
    """Handler for ``math`` / ``numeric`` tasks (see :func:`compute_numeric`)."""
    return compute_numeric(ctx.input, progress=ctx.progress_sync, check=ctx.check_cancelled)
