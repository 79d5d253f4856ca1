"""The demo handlers compute real results from their input."""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import msgspec
import pytest

from hivehub.agent import Agent, Result, TaskContext, TaskFailure
from hivehub.agent.demo import (
    DEMO_HANDLERS,
    analyze_records,
    analyze_text,
    compute_numeric,
    data_processing,
    demo_agents,
    demo_workload,
    factorize,
    fibonacci,
    flesch_reading_ease,
    is_prime,
    make_demo_task,
    math_task,
    syllables,
    text_analysis,
)
from hivehub.core.commands import TaskSpec

from .fakehub import make_task


def ctx_for(input: Any, type: str = "data_processing") -> tuple[TaskContext, list[tuple[float, str | None]]]:
    seen: list[tuple[float, str | None]] = []
    ctx = TaskContext(
        make_task("t1", type=type, input=input), on_progress=lambda c, f, s: seen.append((f, s))
    )
    return ctx, seen


# --------------------------------------------------------------------------- data_processing


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


# --------------------------------------------------------------------------- text_analysis


def test_syllables_and_flesch() -> None:
    assert [syllables(w) for w in ("cat", "table", "beautiful", "readability", "the")] == [1, 2, 3, 5, 1]
    # 6 words, 1 sentence, 6 syllables: 206.835 - 1.015 * 6 - 84.6 = 116.145
    assert flesch_reading_ease(6, 1, 6) == pytest.approx(116.145)
    out = analyze_text("The cat sat on the mat.")
    assert out["words"] == 6 and out["sentences"] == 1
    assert out["readability"]["flesch_reading_ease"] == pytest.approx(116.15, abs=0.01)
    assert out["readability"]["interpretation"] == "very easy"
    hard = analyze_text(
        "Notwithstanding considerable institutional heterogeneity, organizational accountability "
        "mechanisms necessitate comprehensive evaluation methodologies."
    )
    assert hard["readability"]["flesch_reading_ease"] < 0
    assert hard["readability"]["interpretation"] == "very difficult"


def test_counts_top_words_and_sentences() -> None:
    text = (
        "Dr. Smith reviewed the release. The release shipped on time!\n\n"
        "Was the release good? Pi is 3.14 and the site is example.com"
    )
    out = analyze_text(text, top_n=3)
    assert out["paragraphs"] == 2
    assert out["sentences"] == 4
    assert out["top_words"][0] == {"word": "release", "count": 3}
    assert all(w["word"] not in {"the", "is", "and", "dr"} for w in out["top_words"])


def test_sentiment_with_negation_and_drivers() -> None:
    good = analyze_text("The support team was really helpful. Great product, I love it.")["sentiment"]
    assert good["label"] == "positive" and 0 < good["score"] <= 1
    assert {d["word"] for d in good["drivers"]} >= {"helpful", "great", "love"}
    bad = analyze_text("The app is not good. It crashed twice and the manual is confusing.")["sentiment"]
    assert bad["label"] == "negative" and bad["score"] < 0
    words = {d["word"]: d["contribution"] for d in bad["drivers"]}
    assert words["not good"] < 0 and "crashed" in words  # negation stays within its sentence
    neutral = analyze_text("The meeting is on Tuesday at the office.")["sentiment"]
    assert neutral == {**neutral, "label": "neutral", "score": 0.0, "drivers": []}


def test_character_stats_are_language_agnostic() -> None:
    out = analyze_text("Привет, мир! Hello 123 日本語")
    chars = out["characters"]
    assert chars["digits"] == 3
    assert chars["scripts"]["CYRILLIC"] == 9
    assert chars["scripts"]["LATIN"] == 5
    assert chars["scripts"]["CJK"] == 3
    assert chars["punctuation"] == 2
    assert chars["non_ascii"] == 12
    assert out["words"] == 4


def test_text_analysis_handler_progress_per_paragraph() -> None:
    ctx, seen = ctx_for({"text": "One.\n\nTwo.\n\nThree."}, type="text_analysis")
    out = text_analysis(ctx)
    assert out["paragraphs"] == 3
    steps = [s for _, s in seen]
    assert steps[:3] == ["paragraph 1/3", "paragraph 2/3", "paragraph 3/3"]
    empty = analyze_text("")
    assert empty["words"] == 0 and empty["readability"]["flesch_reading_ease"] is None
    with pytest.raises(TaskFailure):
        text_analysis(ctx_for({"text": 42})[0])


# --------------------------------------------------------------------------- math


def test_primes() -> None:
    out = compute_numeric({"operation": "primes_up_to", "n": 100})
    assert out["count"] == 25 and out["sum"] == 1060 and out["largest"] == 97
    assert out["primes"][:5] == [2, 3, 5, 7, 11]
    assert out["twin_prime_pairs"] == 8
    big = compute_numeric({"operation": "primes_up_to", "n": 1_000_000})
    assert big["count"] == 78498 and big["largest"] == 999983 and "primes" not in big
    assert compute_numeric({"operation": "primes_up_to", "n": 1})["count"] == 0


def test_fibonacci() -> None:
    assert [fibonacci(n)[0] for n in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
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


def test_factorize_and_gcd() -> None:
    assert factorize(600851475143) == {71: 1, 839: 1, 1471: 1, 6857: 1}
    assert factorize(2**10 * 3**4) == {2: 10, 3: 4}
    assert factorize(1000000007 * 998244353) == {998244353: 1, 1000000007: 1}
    assert is_prime(2**61 - 1) and not is_prime(2**61 + 1)
    out = compute_numeric({"operation": "factorize", "numbers": [97, 360]})
    assert out["results"][0]["is_prime"] is True
    assert out["results"][1]["divisor_count"] == 24
    g = compute_numeric({"operation": "gcd_lcm", "numbers": [12, 18, 30]})
    assert (g["gcd"], g["lcm"]) == (6, 180)


@pytest.mark.parametrize(
    "bad",
    [
        {"operation": "nope"},
        {"operation": "primes_up_to", "n": -5},
        {"operation": "primes_up_to", "n": 10**12},
        {"operation": "statistics", "numbers": []},
        {"operation": "statistics", "numbers": [1, "x"]},
        {"operation": "factorize", "numbers": [1.5]},
        "numbers",
    ],
)
def test_math_rejects_bad_input(bad: Any) -> None:
    with pytest.raises(TaskFailure) as info:
        math_task(ctx_for(bad, type="math")[0])
    assert info.value.code == "INVALID_INPUT" and info.value.retryable is False


# --------------------------------------------------------------------------- agents and workload


def test_demo_agents() -> None:
    agents = demo_agents("http://127.0.0.1:3999")
    assert [a.name for a in agents] == ["DataProcessor-1", "TextAnalyst-1", "Generalist-1"]
    assert [a.agent_id for a in agents] == ["demo-dataprocessor-1", "demo-textanalyst-1", "demo-generalist-1"]
    assert all(isinstance(a, Agent) and a.url == "ws://127.0.0.1:3999/agents/ws" for a in agents)
    dp, ta, gen = agents
    assert str(dp.type) == "specialist" and {c.name: c.proficiency for c in dp.capabilities} == {
        "data_processing": 0.9,
        "text_analysis": 0.4,
    }
    assert set(ta.handlers) == {"text_analysis"}
    assert gen.max_concurrent_tasks == 2 and set(gen.handlers) >= {"data_processing", "text_analysis", "math"}
    assert set(DEMO_HANDLERS) == {"data_processing", "text_analysis", "math", "numeric"}


async def test_demo_workload_submits_valid_task_specs() -> None:
    submitted: list[dict[str, Any]] = []

    async def submit(spec: dict[str, Any]) -> None:
        submitted.append(spec)

    assert await demo_workload(submit, seed=7, min_interval=0, max_interval=0, count=12) == 12
    assert len(submitted) == 12
    for spec in submitted:
        msgspec.convert(spec, TaskSpec)  # the hub accepts it
        assert spec["required_capabilities"][0]["name"] == spec["type"]
    assert {s["type"] for s in submitted} == {"data_processing", "text_analysis", "math"}


def test_every_demo_task_is_handled() -> None:
    rng = random.Random(3)
    for _ in range(30):
        spec = make_demo_task(rng)
        ctx, seen = ctx_for(spec["input"], type=spec["type"])
        out = DEMO_HANDLERS[spec["type"]](ctx)
        value = out.value if isinstance(out, Result) else out
        msgspec.json.encode(value)
        assert seen and seen[-1][0] == 1.0
