"""``data_processing``: a profile of tabular data (``{"records": [...]}`` or ``{"csv": "..."}``)."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..agent.context import Result, TaskContext, TaskFailure
from .datasets import dataset_input
from .inputs import MAX_ROWS, invalid_input, no_progress, rounded

_MISSING = object()
_NOT_A_NUMBER = object()


def _as_number(v: Any) -> Any:
    """An int/float for numeric values and numeric strings; _MISSING; or _NOT_A_NUMBER."""
    if v is None:
        return _MISSING
    if isinstance(v, bool):
        return _NOT_A_NUMBER
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else _NOT_A_NUMBER
    if isinstance(v, str):
        s = v.strip()
        if not s:
            return _MISSING
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            return _NOT_A_NUMBER
        return f if math.isfinite(f) else _NOT_A_NUMBER
    return _NOT_A_NUMBER


def _as_text(v: Any) -> str:
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))[:200]
    return str(v)


class _Field:
    __slots__ = ("missing", "name", "numbers", "texts")

    def __init__(self, name: str) -> None:
        self.name = name
        self.numbers: list[tuple[int, int | float]] = []
        self.texts: list[tuple[int, str]] = []
        self.missing = 0

    def add(self, row: int, value: Any) -> None:
        n = _as_number(value)
        if n is _MISSING:
            self.missing += 1
        elif n is _NOT_A_NUMBER:
            self.texts.append((row, _as_text(value)))
        else:
            self.numbers.append((row, n))


def _csv_rows(text: str, delimiter: str) -> tuple[list[str], list[tuple[int, Any]]]:
    """Header and ``(row_number, cells | error)`` pairs of a CSV document."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, Any]] = []
    n = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise invalid_input(f"the CSV header cannot be parsed: {exc}") from None
            n += 1
            rows.append((n, f"unparseable CSV line {reader.line_num}: {exc}"))
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank line
        if header is None:
            header = _unique_names(cells)
            continue
        n += 1
        rows.append((n, cells))
    if header is None:
        raise invalid_input("the CSV has no header row")
    return header, rows


def _unique_names(cells: list[str]) -> list[str]:
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, c in enumerate(cells):
        name = c.strip() or f"column_{i + 1}"
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def _numeric_summary(values: list[int | float]) -> dict[str, Any]:
    n = len(values)
    out: dict[str, Any] = {
        "count": n,
        "sum": rounded(math.fsum(values)),
        "mean": rounded(statistics.fmean(values)),
        "min": min(values),
        "max": max(values),
        "median": rounded(statistics.median(values)),
        "stdev": rounded(statistics.stdev(values)) if n >= 2 else None,
    }
    if n >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        out["p25"], out["p75"] = rounded(q1), rounded(q3)
    else:
        out["p25"] = out["p75"] = rounded(float(values[0]))
    return out


def _source_rows(data: dict[str, Any]) -> tuple[str, list[str] | None, list[tuple[int, Any]]]:
    """``(source, CSV header or None, (row number, row) pairs)`` of the input."""
    if "records" in data:
        records = data["records"]
        if not isinstance(records, list):
            raise invalid_input('"records" must be a list of objects')
        return "records", None, list(enumerate(records, 1))
    text = data["csv"]
    if not isinstance(text, str):
        raise invalid_input('"csv" must be a string')
    delimiter = data.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise invalid_input('"delimiter" must be a single character')
    header, rows = _csv_rows(text, delimiter)
    return "csv", header, rows


def _add_row(fields: dict[str, _Field], header: list[str] | None, row_no: int, row: Any) -> str | None:
    """Feed one row's values to their fields; the reason when the row is malformed."""
    if header is None:
        if not isinstance(row, dict):
            return f"not an object ({type(row).__name__})"
        for key, value in row.items():
            f = fields.get(str(key))
            if f is None:
                f = fields[str(key)] = _Field(str(key))
            f.add(row_no, value)
        return None
    if isinstance(row, str):
        return row  # the CSV line could not be parsed: the reason says why
    if len(row) != len(header):
        return f"expected {len(header)} fields, got {len(row)}"
    for name, value in zip(header, row, strict=True):
        fields[name].add(row_no, value)
    return None


def _text_summary(f: _Field, top_n: int) -> dict[str, Any]:
    values = Counter(t for _, t in f.texts)
    values.update(_as_text(v) for _, v in f.numbers)
    return {
        "count": len(f.numbers) + len(f.texts),
        "missing": f.missing,
        "distinct": len(values),
        "top": [{"value": v, "count": c} for v, c in values.most_common(top_n)],
    }


def _summarize_fields(
    fields: dict[str, _Field], invalid: dict[int, str], top_n: int
) -> tuple[list[dict[str, str]], dict[str, Any], dict[str, Any]]:
    """``(kinds, numeric summaries, text summaries)``; a text value in a numeric field
    makes its row invalid (added to ``invalid`` unless the row already is)."""
    numeric: dict[str, Any] = {}
    text_fields: dict[str, Any] = {}
    kinds: list[dict[str, str]] = []
    for f in fields.values():
        # Rows that are invalid for structural reasons did not feed any field.
        if f.numbers and len(f.numbers) >= len(f.texts):
            for row_no, value in f.texts:
                invalid.setdefault(row_no, f"field {f.name!r}: {value[:50]!r} is not a number")
            numeric[f.name] = {
                **_numeric_summary([v for _, v in f.numbers]),
                "missing": f.missing,
                "invalid": len(f.texts),
            }
            kinds.append({"name": f.name, "kind": "numeric"})
        elif f.numbers or f.texts:
            text_fields[f.name] = _text_summary(f, top_n)
            kinds.append({"name": f.name, "kind": "text"})
        else:
            kinds.append({"name": f.name, "kind": "empty"})
    return kinds, numeric, text_fields


def analyze_records(
    data: Any,
    *,
    top_n: int = 5,
    progress: Callable[[float, str | None], None] = no_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Profile tabular data: ``{"records": [{...}, ...]}`` or ``{"csv": "a,b\\n1,2"}``.

    Every field is numeric when most of its non-empty values are numbers (numeric
    strings count), else text. A row is invalid when it is not an object / has the
    wrong number of CSV cells, or holds a non-number in a numeric field.
    """
    if not isinstance(data, dict) or ("records" not in data and "csv" not in data):
        raise invalid_input('input must be an object with "records" (a list of objects) or "csv" (a string)')
    if not isinstance(top_n, int) or isinstance(top_n, bool) or not 1 <= top_n <= 100:
        raise invalid_input("top_n must be an integer in 1..100")
    source, header, rows = _source_rows(data)
    fields = {name: _Field(name) for name in header or []}
    if len(rows) > MAX_ROWS:
        raise invalid_input(f"at most {MAX_ROWS} rows are accepted", rows=len(rows))

    invalid: dict[int, str] = {}
    total = len(rows)
    chunk = max(50, math.ceil(total / 20)) if total else 1
    for start in range(0, total, chunk):
        check()
        for row_no, row in rows[start : start + chunk]:
            reason = _add_row(fields, header, row_no, row)
            if reason is not None:
                invalid[row_no] = reason
        done = min(total, start + chunk)
        progress(0.9 * done / total, f"parsed rows {done}/{total}")

    check()
    kinds, numeric, text_fields = _summarize_fields(fields, invalid, top_n)
    progress(1.0, "summarized")
    examples = [{"row": r, "reason": invalid[r]} for r in sorted(invalid)[:10]]
    return {
        "source": source,
        "row_count": total,
        "valid_rows": total - len(invalid),
        "invalid_rows": len(invalid),
        "invalid_examples": examples,
        "fields": kinds,
        "numeric": numeric,
        "text": text_fields,
    }


def _quality_gate(out: dict[str, Any], max_invalid_share: Any) -> None:
    """Fail the task when more rows are invalid than the caller accepts."""
    if max_invalid_share is None:
        return
    if not isinstance(max_invalid_share, int | float) or isinstance(max_invalid_share, bool):
        raise invalid_input('"max_invalid_share" must be a number in 0..1')
    if not 0 <= max_invalid_share <= 1:
        raise invalid_input(
            '"max_invalid_share" must be a number in 0..1', max_invalid_share=max_invalid_share
        )
    total, bad = out["row_count"], out["invalid_rows"]
    if total and bad / total > max_invalid_share:
        raise TaskFailure(
            "DATA_QUALITY",
            f"{bad} of {total} rows ({bad / total:.0%}) are invalid, over the accepted "
            f"{max_invalid_share:.0%}",
            {
                "invalid_rows": bad,
                "row_count": total,
                "max_invalid_share": max_invalid_share,
                "invalid_examples": out["invalid_examples"][:5],
            },
            retryable=False,  # the data, not the agent: another attempt finds the same rows
        )


def data_processing(ctx: TaskContext) -> Result:
    """Handler for ``data_processing`` tasks (see :func:`analyze_records`).

    The input may name a generated data set instead of carrying the rows
    (``{"dataset": {"kind": "sales_orders", "rows": 40000, "seed": 7}}``, see
    ``datasets.py``), and may set ``max_invalid_share``: more invalid rows than that
    fail the task with ``DATA_QUALITY``."""
    data = ctx.input
    if isinstance(data, dict) and "dataset" in data:
        ctx.progress_sync(0.0, "generating the data set")
        data = {**{k: v for k, v in data.items() if k != "dataset"}, **dataset_input(data["dataset"])}
    top_n = data.get("top_n", 5) if isinstance(data, dict) else 5
    out = analyze_records(data, top_n=top_n, progress=ctx.progress_sync, check=ctx.check_cancelled)
    _quality_gate(out, data.get("max_invalid_share"))
    quality = out["valid_rows"] / out["row_count"] if out["row_count"] else 1.0
    return Result(out, quality=round(quality, 4))
