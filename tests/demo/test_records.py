"""The data_processing handler profiles records and CSV."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from hivehub.agent import Result, TaskFailure
from hivehub.demo import (
    analyze_records,
    data_processing,
)

from .helpers import ctx_for


def test_records_numeric_and_text_fields() -> None:
    out = analyze_records(
        {"records": [{"x": 1, "city": "Oslo"}, {"x": 2, "city": "Rome"}, {"x": 3, "city": "Oslo"}]}
    )
    x = out["numeric"]["x"]
    assert (x["count"], x["mean"], x["min"], x["max"], x["median"], x["sum"]) == (3, 2.0, 1, 3, 2, 6.0)
    assert x["stdev"] == 1.0
    city = out["text"]["city"]
    assert city["top"][0] == {"value": "Oslo", "count": 2}
    assert city["distinct"] == 2
    assert out["row_count"] == 3 and out["invalid_rows"] == 0 and out["valid_rows"] == 3
    assert out["fields"] == [{"name": "x", "kind": "numeric"}, {"name": "city", "kind": "text"}]


def test_records_invalid_rows_and_missing_values() -> None:
    out = analyze_records(
        {
            "records": [
                {"price": "10.5", "qty": 1},
                {"price": 20, "qty": None},
                "not a record",
                {"price": "n/a", "qty": 2},
                {"price": 30.5},
            ]
        }
    )
    price = out["numeric"]["price"]
    assert price["count"] == 3 and price["invalid"] == 1
    assert price["mean"] == pytest.approx(statistics.fmean([10.5, 20, 30.5]))
    assert out["numeric"]["qty"]["missing"] == 1  # None; a missing key is not counted per field
    assert out["row_count"] == 5
    assert out["invalid_rows"] == 2
    assert [e["row"] for e in out["invalid_examples"]] == [3, 4]
    assert "not an object" in out["invalid_examples"][0]["reason"]


def test_csv_parsing_and_invalid_rows() -> None:
    text = "name,score,team\nann,10,red\nbob,20,blue\n\ncat,oops,red\ndan,30\neve,40,red\n"
    out = analyze_records({"csv": text})
    assert out["source"] == "csv"
    assert out["row_count"] == 5  # the blank line is skipped
    assert out["invalid_rows"] == 2
    reasons = {e["row"]: e["reason"] for e in out["invalid_examples"]}
    assert reasons[4] == "expected 3 fields, got 2"
    assert "not a number" in reasons[3]
    score = out["numeric"]["score"]
    assert (score["count"], score["mean"], score["median"]) == (3, pytest.approx(70 / 3, abs=1e-6), 20)
    assert out["text"]["team"]["top"][0] == {"value": "red", "count": 3}


def test_csv_delimiter_and_quoting() -> None:
    out = analyze_records({"csv": 'a;b\n"1";"x;y"\n2;z\n', "delimiter": ";"})
    assert out["numeric"]["a"]["mean"] == 1.5
    assert {t["value"] for t in out["text"]["b"]["top"]} == {"x;y", "z"}


def test_data_processing_handler_reports_progress_and_quality() -> None:
    records = [{"v": i} for i in range(1000)] + ["bad"] * 10
    ctx, seen = ctx_for({"records": records})
    res = data_processing(ctx)
    assert isinstance(res, Result)
    assert res.value["numeric"]["v"]["mean"] == 499.5
    assert res.quality == pytest.approx(1000 / 1010, abs=1e-4)
    fractions = [f for f, _ in seen]
    assert len(fractions) >= 10 and fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize("bad", [None, [], {"rows": []}, {"records": "x"}, {"csv": 5}, {"csv": ""}])
def test_data_processing_rejects_bad_input(bad: Any) -> None:
    with pytest.raises(TaskFailure) as info:
        data_processing(ctx_for(bad)[0])
    assert info.value.code == "INVALID_INPUT" and info.value.retryable is False


def test_a_generated_data_set_and_the_quality_gate() -> None:
    ctx, seen = ctx_for(
        {"dataset": {"kind": "sales_orders", "rows": 2000, "seed": 4}, "max_invalid_share": 0.2}
    )
    res = data_processing(ctx)
    assert isinstance(res, Result) and res.value["row_count"] == 2000
    assert 0 < res.value["invalid_rows"] < 200 and res.value["numeric"]["quantity"]["count"] > 1800
    assert seen[0] == (0.0, "generating the data set")
    faulty = {"kind": "sensor_log", "rows": 1000, "seed": 4, "corrupted_share": 0.35, "sensor": "pump-7"}
    with pytest.raises(TaskFailure) as info:
        data_processing(ctx_for({"dataset": faulty, "max_invalid_share": 0.2})[0])
    f = info.value
    assert f.code == "DATA_QUALITY" and f.retryable is False
    assert 0.25 < f.details["invalid_rows"] / f.details["row_count"] < 0.45
    assert "rows" in f.message and "over the accepted 20%" in f.message
    assert f.details["invalid_examples"]


@pytest.mark.parametrize(
    "bad",
    [
        {"dataset": {"kind": "tables", "rows": 5}},
        {"dataset": {"kind": "sales_orders", "rows": 0}},
        {"dataset": {"kind": "sales_orders", "rows": 5, "corrupted_share": 2}},
        {"records": [{"a": 1}], "max_invalid_share": "x"},
    ],
)
def test_bad_data_set_specs(bad: Any) -> None:
    with pytest.raises(TaskFailure) as info:
        data_processing(ctx_for(bad)[0])
    assert info.value.code == "INVALID_INPUT"
