"""The text_analysis handler: counts, readability, sentiment, characters."""

from __future__ import annotations

import pytest

from hivehub.agent import TaskFailure
from hivehub.demo import (
    analyze_text,
    flesch_reading_ease,
    syllables,
    text_analysis,
    text_analysis_within,
)

from .helpers import ctx_for


def test_syllables_and_flesch() -> None:
    assert [syllables(w) for w in ("cat", "table", "beautiful", "readability", "the")] == [1, 2, 3, 5, 1]
    assert syllables("hivehubification") >= 3  # not in the CMU dictionary: hyphenation
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
    bad = analyze_text("The app is not good. It broke twice and the manual is confusing.")["sentiment"]
    assert bad["label"] == "negative" and bad["score"] < 0
    words = {d["word"]: d["contribution"] for d in bad["drivers"]}
    assert words["not good"] < 0 and words["confusing"] < 0
    assert "good" not in words  # the negation was seen
    neutral = analyze_text("The meeting is on Tuesday at the office.")["sentiment"]
    assert neutral == {**neutral, "label": "neutral", "score": 0.0, "drivers": [], "neutral": 1.0}
    mixed = analyze_text("The update is wonderful.\n\nThe manual is terrible.\n\nIt ships on Monday.")
    assert mixed["sentiment"]["paragraphs"] == {"positive": 1, "negative": 1, "neutral": 1}


def test_generated_reviews_read_with_the_tone_they_were_written_in() -> None:
    import random

    from hivehub.demo.datasets import review

    rng = random.Random(11)
    for tone in ("positive", "negative"):
        labels = [analyze_text(review(rng, tone)[0])["sentiment"]["label"] for _ in range(20)]
        assert labels.count(tone) >= 16, (tone, labels)


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


def test_a_corpus_and_a_time_budget() -> None:
    spec = {"corpus": {"kind": "support_chat", "count": 400, "seed": 3}}
    out = text_analysis(ctx_for(spec, type="text_analysis")[0])
    assert out["paragraphs"] == 400 and out["top_words"]
    ctx, seen = ctx_for(spec, type="text_analysis")
    with pytest.raises(TaskFailure) as info:
        text_analysis_within(0.0)(ctx)  # no time at all: it stops before the first paragraph ends
    f = info.value
    assert f.code == "TIME_BUDGET_EXCEEDED" and f.retryable is True
    assert f.details["paragraphs"] == 400 and f.details["paragraphs_done"] < 400
    with pytest.raises(TaskFailure) as bad:
        text_analysis(ctx_for({"corpus": {"kind": "poems", "count": 3}})[0])
    assert bad.value.code == "INVALID_INPUT"
