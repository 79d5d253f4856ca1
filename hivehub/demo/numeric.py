"""``math`` / ``numeric``: ``primes_up_to``, ``fibonacci``, ``statistics``, ``factorize``
and ``gcd_lcm``.

The statistics are the standard library's (``statistics``, ``math``). Primality,
factorization and the prime sieve are written here because the standard library has
none and a dependency for a demo is not worth it (sympy is not one of ours).
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import compress
from typing import Any

from ..agent.context import TaskContext
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


def _small_primes(limit: int) -> list[int]:
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return list(compress(range(limit + 1), sieve))


def iter_primes(limit: int, on_segment: Callable[[int], None] | None = None) -> Iterator[int]:
    """Primes <= ``limit`` by a segmented sieve of Eratosthenes."""
    if limit < 2:
        return
    base = _small_primes(math.isqrt(limit))
    size = 1 << 17
    for low in range(2, limit + 1, size):
        high = min(low + size - 1, limit)
        mark = bytearray([1]) * (high - low + 1)
        for p in base:
            if p * p > high:
                break
            start = max(p * p, (low + p - 1) // p * p)
            mark[start - low :: p] = bytes(len(range(start - low, high - low + 1, p)))
        yield from compress(range(low, high + 1), mark)
        if on_segment is not None:
            on_segment(high)


def _primes_up_to(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    n = _int_param(data, "n", 0, MAX_PRIME_LIMIT)

    def on_segment(high: int) -> None:
        check()
        progress(high / n, f"sieved up to {high}")

    count = total = twins = 0
    prev = largest = None
    first: list[int] = []
    last: list[int] = []
    keep_all = n <= 10_000
    everything: list[int] = []
    for p in iter_primes(n, on_segment):
        count += 1
        total += p
        if prev is not None and p - prev == 2:
            twins += 1
        prev = largest = p
        if len(first) < 10:
            first.append(p)
        last.append(p)
        if len(last) > 10:
            last.pop(0)
        if keep_all:
            everything.append(p)
    out: dict[str, Any] = {
        "operation": "primes_up_to",
        "n": n,
        "count": count,
        "sum": total,
        "largest": largest,
        "twin_prime_pairs": twins,
        "first": first,
        "last": last,
        "density": round(count / n, 6) if n else 0.0,
        "prime_number_theorem_estimate": round(n / math.log(n), 2) if n > 1 else 0.0,
    }
    if keep_all:
        out["primes"] = everything
    return out


def fibonacci(n: int) -> tuple[int, int]:
    """``(F(n), F(n+1))`` by fast doubling."""
    if n == 0:
        return 0, 1
    a, b = fibonacci(n >> 1)
    c = a * (2 * b - a)
    d = a * a + b * b
    return (d, c + d) if n & 1 else (c, d)


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
    fn, fn1 = fibonacci(n)
    check()
    digits = str(fn)
    progress(0.8, "summarizing")
    terms = []
    a, b = 0, 1
    for _ in range(min(n + 1, 30)):
        terms.append(a)
        a, b = b, a + b
    return {
        "operation": "fibonacci",
        "n": n,
        "value": _big(fn),
        "digits": len(digits),
        "digit_sum": sum(map(int, digits)),
        "next": _big(fn1),
        # exact big-int division, rounded once to a float (approaches the golden ratio)
        "ratio_to_previous": fn / (fn1 - fn) if n >= 2 else None,
        "first_terms": terms,
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


_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24."""
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _pollard_brent(n: int, rng: random.Random) -> int:
    if n % 2 == 0:
        return 2
    while True:
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


def factorize(n: int) -> dict[int, int]:
    """Prime factorization ``{prime: exponent}`` (trial division, then Pollard-Brent rho)."""
    factors: Counter[int] = Counter()
    if n < 2:
        return {}
    for p in _small_primes(1000):
        while n % p == 0:
            factors[p] += 1
            n //= p
    stack = [n] if n > 1 else []
    rng = random.Random(n)
    while stack:
        m = stack.pop()
        if m == 1:
            continue
        if is_prime(m):
            factors[m] += 1
            continue
        d = _pollard_brent(m, rng)
        stack.extend((d, m // d))
    return dict(sorted(factors.items()))


def _factorize(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 1000:
        raise invalid_input('at most 1000 "numbers" to factorize')
    results = []
    for i, x in enumerate(nums, 1):
        if not 1 <= x <= MAX_FACTORIZE:
            raise invalid_input(f"numbers to factorize must be in 1..{MAX_FACTORIZE}", value=x)
        check()
        f = factorize(x)
        divisors = math.prod(e + 1 for e in f.values())
        results.append(
            {
                "n": x,
                "factors": [{"prime": p, "exponent": e} for p, e in f.items()],
                "is_prime": f == {x: 1},
                "divisor_count": divisors,
            }
        )
        progress(i / len(nums), f"factorized {i}/{len(nums)}")
    return {"operation": "factorize", "results": results}


def _gcd_lcm(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 10_000 or any(abs(x) > MAX_FACTORIZE for x in nums):
        raise invalid_input(f'gcd_lcm takes at most 10000 "numbers" within +-{MAX_FACTORIZE}')
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
