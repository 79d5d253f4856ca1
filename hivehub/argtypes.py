"""Range-checked number types for argparse flags (``hive serve``, ``hive agent``).

A bad value is a usage error: argparse prints ``argument --port: must be between
1 and 65535`` and exits with status 2, before anything starts. Defaults given as
strings (from environment variables) go through the same check.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (either bound optional)."""

    def parse(raw: str) -> int:
        try:
            v = int(raw)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{raw!r} is not an integer") from None
        _check(v, lo, hi, lo_open=False)
        return v

    parse.__name__ = "integer"  # argparse names the type in "invalid integer value"
    parse.doc = "integer" + _range_doc(lo, hi, lo_open=False)  # type: ignore[attr-defined]  # docs/configuration.md
    return parse


def number(
    lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
) -> Callable[[str], float]:
    """A finite number in ``[lo, hi]``, or ``(lo, hi]`` with ``lo_open``."""

    def parse(raw: str) -> float:
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a finite number")
        _check(v, lo, hi, lo_open=lo_open)
        return v

    parse.__name__ = "number"
    parse.doc = "number" + _range_doc(lo, hi, lo_open=lo_open)  # type: ignore[attr-defined]
    return parse


def auto_or_number(lo: float | None = None, hi: float | None = None) -> Callable[[str], float | None]:
    """``auto`` (None: the hub decides, see the option's help) or a number in ``[lo, hi]``."""
    return auto_or(number(lo, hi))


def auto_or(inner: Callable[[str], Any]) -> Callable[[str], Any]:
    """``auto`` (None: the hub decides, see the option's help) or what ``inner`` parses."""

    def parse(raw: str) -> Any:
        if isinstance(raw, str) and raw.strip().lower() == "auto":
            return None
        return inner(raw)

    parse.__name__ = inner.__name__
    parse.doc = "`auto` or " + inner.doc  # type: ignore[attr-defined]
    return parse


def _range_doc(lo: float | None, hi: float | None, *, lo_open: bool) -> str:
    if lo is not None and hi is not None:
        return f", {lo:g}..{hi:g}"
    if lo is not None:
        return f", > {lo:g}" if lo_open else f", >= {lo:g}"
    return f", <= {hi:g}" if hi is not None else ""


def _check(v: float, lo: float | None, hi: float | None, *, lo_open: bool) -> None:
    below = lo is not None and (v <= lo if lo_open else v < lo)
    above = hi is not None and v > hi
    if not (below or above):
        return
    low = "" if lo is None else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    if hi is None:
        raise argparse.ArgumentTypeError(f"must be {low} (got {v:g})")
    if lo is None:
        raise argparse.ArgumentTypeError(f"must be <= {hi:g} (got {v:g})")
    raise argparse.ArgumentTypeError(f"must be {low} and <= {hi:g} (got {v:g})")


PORT = integer(1, 65535)
POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)
SECONDS = number(0, lo_open=True)  # a duration that must pass: > 0
NON_NEGATIVE = number(0)
AUTO_OR_NON_NEGATIVE = auto_or_number(0)
AUTO_OR_POSITIVE_INT = auto_or(integer(1))
PERCENT = number(0, 100)
