"""``round(x, 3)`` and ``round(x, 4)`` of a float, the same float, without the decimal round trip.

The scheduler logs a few rounded figures with every assignment (the score and its
breakdown, the execution time, the agent's rates): nine ``round`` calls per
completed-and-reassigned task. ``round(x, n)`` on a float converts it to a
correctly rounded decimal string and back, about 250 ns on Python 3.11;
:func:`round3` and :func:`round4` return the very same float (sign of zero
included) in about half that, so nothing logged or folded changes.

Why the result is the same: with ``y = x * 10**n`` (the product rounded once,
so off the exact ``x * 10**n`` by at most half an ulp of ``y``, under ``2**-23``
below ``2**31``), when ``y`` is more than ``1e-6`` away from a tie (``k + 0.5``)
the exact product lies on the same side of that tie, so ``r = round(y)`` is the
integer ``round`` would pick; ``r / 10**n`` (both exact as floats, the division
rounded once) is then the float nearest ``r * 10**-n``, which is what ``round``
returns. ``r == 0`` keeps the sign of ``x`` (``x * 0.0``), as ``round`` does.
Anything else -- near a tie, ``|y| >= 2**31``, NaN, an infinity -- goes to
``round`` itself. ``tests/core/test_rounding.py`` checks this against ``round``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["round3", "round4"]

_LIMIT = 2.0**31


def _rounder(ndigits: int) -> Callable[[float], float]:
    scale = 10.0**ndigits

    def rounded(x: float) -> float:
        y = x * scale
        if -_LIMIT < y < _LIMIT:  # (False for NaN)
            r = round(y)
            d = y - r
            if -0.499999 < d < 0.499999:
                return r / scale if r else x * 0.0
        return round(x, ndigits)

    rounded.__name__ = rounded.__qualname__ = f"round{ndigits}"
    rounded.__doc__ = f"``round(x, {ndigits})`` for a float ``x`` (the same float; see the module docstring)."
    return rounded


round3 = _rounder(3)
round4 = _rounder(4)
