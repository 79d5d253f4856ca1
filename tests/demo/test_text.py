"""The text_analysis handler: counts, readability, sentiment, characters."""

from __future__ import annotations

import pytest

from hivehub.agent import TaskFailure
from hivehub.demo import (
    analyze_text,
    flesch_reading_ease,
    syllables,
    text_analysis,
)

from .helpers import ctx_for


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
