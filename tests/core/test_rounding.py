"""core/rounding.py: round3/round4 return exactly what round(x, 3)/round(x, 4) do."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hivehub.core.rounding import round3, round4

ROUNDERS = ((round3, 3), (round4, 4))


def same(a: float, b: float) -> bool:
    """The same float: equal (or both NaN), with the same sign (of a zero too)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@settings(max_examples=3000)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float(x: float) -> None:
    for f, n in ROUNDERS:
        assert same(f(x), round(x, n)), (x, n)


@settings(max_examples=3000)
@given(st.integers(-(10**11), 10**11), st.integers(-3, 3))
def test_at_and_beside_ties(k: int, ulps: int) -> None:
    """Halves (k + 0.5) / 10**n and the floats a few ulps either side: where
    the product x * 10**n can round to the other side of the tie."""
    for f, n in ROUNDERS:
        x = (k + 0.5) / 10**n
        for _ in range(abs(ulps)):
            x = math.nextafter(x, math.copysign(math.inf, ulps))
        assert same(f(x), round(x, n)), (x, n)


def test_the_figures_the_scheduler_rounds() -> None:
    # scores, rates and times as they come: ratios of small counts, sums of ms
    for ok in range(60):
        for bad in range(60):
            x = (ok + 1) / (ok + bad + 2)
            assert same(round4(x), round(x, 4))
            assert same(round3(x * 1234.5678), round(x * 1234.5678, 3))
    for x in (0.0, -0.0, 1e-9, -1e-9, 0.00005, -0.00005, 0.0005, 2.0**31, -(2.0**31), 1e300, 0.5, 1.0):
        for f, n in ROUNDERS:
            assert same(f(x), round(x, n)), (x, n)
