"""``text_analysis``: counts, top words, readability, lexicon sentiment and character
statistics of a text."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..agent.context import TaskContext
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

# fmt: off
#: word -> valence in -3..3 (a small hand-made lexicon in the spirit of AFINN)
SENTIMENT_LEXICON: dict[str, float] = {
    # positive
    "good": 2, "great": 3, "excellent": 3, "amazing": 3, "awesome": 3, "fantastic": 3,
    "wonderful": 3, "outstanding": 3, "superb": 3, "perfect": 3, "love": 3, "loved": 3,
    "like": 1, "liked": 2, "enjoy": 2, "enjoyed": 2, "happy": 2, "glad": 2, "pleased": 2,
    "satisfied": 2, "nice": 2, "fine": 1, "helpful": 2, "useful": 2, "reliable": 2,
    "fast": 1, "quick": 1, "easy": 1, "smooth": 2, "clean": 1, "clear": 1, "friendly": 2,
    "recommend": 2, "recommended": 2, "best": 3, "better": 2, "improved": 2, "impressive": 3,
    "beautiful": 3, "elegant": 2, "efficient": 2, "stable": 1, "solid": 2, "delighted": 3,
    "thanks": 2, "thank": 2, "success": 2, "successful": 2, "win": 2, "works": 1,
    "worth": 2, "favorite": 2, "brilliant": 3, "comfortable": 2, "affordable": 1,
    "responsive": 2, "intuitive": 2, "secure": 1, "accurate": 2, "polite": 2, "fresh": 1,
    # negative
    "bad": -2, "terrible": -3, "awful": -3, "horrible": -3, "poor": -2, "worst": -3,
    "worse": -2, "hate": -3, "hated": -3, "dislike": -2, "disappointed": -2,
    "disappointing": -2, "slow": -1, "broken": -2, "bug": -1, "buggy": -2, "crash": -2,
    "crashed": -2, "crashes": -2, "error": -1, "errors": -1, "fail": -2, "failed": -2,
    "failure": -2, "problem": -1, "problems": -1, "issue": -1, "issues": -1, "difficult": -1,
    "confusing": -2, "annoying": -2, "frustrating": -2, "frustrated": -2, "angry": -3,
    "unhappy": -2, "sad": -2, "useless": -3, "expensive": -1, "overpriced": -2, "rude": -2,
    "late": -1, "delay": -1, "delayed": -1, "missing": -1, "wrong": -2, "unreliable": -2,
    "unstable": -2, "ugly": -2, "noisy": -1, "dirty": -2, "refund": -1, "complaint": -2,
    "waste": -2, "wasted": -2, "lost": -1, "damaged": -2, "defective": -3, "leak": -1,
    "insecure": -2, "inaccurate": -2, "clunky": -2, "painful": -2,
}
NEGATORS = frozenset(
    "not no never none nobody nothing neither nor without hardly barely isn't aren't wasn't weren't "
    "don't doesn't didn't can't cannot couldn't won't wouldn't shouldn't haven't hasn't hadn't".split()
)
BOOSTERS = {"very": 1.3, "really": 1.3, "extremely": 1.5, "so": 1.2, "incredibly": 1.5, "super": 1.3,
            "absolutely": 1.4, "totally": 1.3, "quite": 1.1, "slightly": 0.6, "somewhat": 0.7}
# fmt: on

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_SENTENCE_END_RE = re.compile(r"[.!?…。！？]+")
#: negation and boosters do not reach across these
_CLAUSE_RE = re.compile(r"[.!?;:…。！？]+")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co fig no".split())


def syllables(word: str) -> int:
    """English syllable estimate (vowel groups, silent endings); at least 1."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1
    if len(w) <= 3:
        return 1
    w = re.sub(r"(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$", lambda m: m.group(0)[0], w)
    w = re.sub(r"^y", "", w)
    return max(1, len(re.findall(r"[aeiouy]+", w)))


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
    cats: Counter[str] = Counter()
    scripts: Counter[str] = Counter()
    letters: Counter[str] = Counter()
    upper = lower = non_ascii = 0
    for ch in text:
        cat = unicodedata.category(ch)
        cats[cat[0]] += 1
        if ord(ch) > 127:
            non_ascii += 1
        if cat[0] == "L":
            letters[ch.casefold()] += 1
            if cat == "Lu":
                upper += 1
            elif cat == "Ll":
                lower += 1
            name = unicodedata.name(ch, "")
            scripts[name.split(" ")[0] if name else "UNKNOWN"] += 1
    total = len(text)
    return {
        "total": total,
        "letters": cats["L"],
        "digits": cats["N"],
        "whitespace": sum(1 for c in text if c.isspace()),
        "punctuation": cats["P"],
        "symbols": cats["S"],
        "uppercase": upper,
        "lowercase": lower,
        "non_ascii": non_ascii,
        "distinct": len(set(text)),
        "lines": text.count("\n") + 1 if text else 0,
        "scripts": dict(scripts.most_common()),
        "top_letters": [{"char": c, "count": n} for c, n in letters.most_common(10)],
    }


def _sentiment(clauses: list[list[str]]) -> dict[str, Any]:
    """Sum of lexicon valences over clauses; a booster right before a word scales it and a
    negator among the 3 words before it (same clause) flips and damps it. ``score`` is the
    sum squashed into -1..1 (``raw / sqrt(raw**2 + 15)``, as VADER does)."""
    raw = 0.0
    drivers: dict[str, list[float]] = {}
    pos_hits = neg_hits = 0
    for tokens in clauses:
        r, p, n = _clause_sentiment(tokens, drivers)
        raw += r
        pos_hits += p
        neg_hits += n
    score = raw / math.sqrt(raw * raw + 15.0) if raw else 0.0
    label = "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"
    ranked = sorted(drivers.items(), key=lambda kv: (-abs(kv[1][0]), kv[0]))
    return {
        "score": round(score, 4),
        "label": label,
        "raw": round(raw, 3),
        "positive_hits": pos_hits,
        "negative_hits": neg_hits,
        "drivers": [{"word": w, "contribution": round(c, 3), "count": int(n)} for w, (c, n) in ranked[:10]],
    }


def _clause_sentiment(tokens: list[str], drivers: dict[str, list[float]]) -> tuple[float, int, int]:
    raw = 0.0
    pos_hits = neg_hits = 0
    for i, tok in enumerate(tokens):
        valence = SENTIMENT_LEXICON.get(tok)
        if valence is None:
            continue
        v = float(valence)
        if i > 0 and tokens[i - 1] in BOOSTERS:
            v *= BOOSTERS[tokens[i - 1]]
        negated = any(t in NEGATORS for t in tokens[max(0, i - 3) : i])
        if negated:
            v *= -0.75
        key = f"not {tok}" if negated else tok
        d = drivers.setdefault(key, [0.0, 0])
        d[0] += v
        d[1] += 1
        raw += v
        if v > 0:
            pos_hits += 1
        elif v < 0:
            neg_hits += 1
    return raw, pos_hits, neg_hits


def analyze_text(
    text: Any,
    *,
    top_n: int = 10,
    progress: Callable[[float, str | None], None] = no_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Counts, top words, readability, sentiment and character statistics of ``text``."""
    if not isinstance(text, str):
        raise invalid_input('input must be an object with "text" (a string)')
    if len(text) > MAX_TEXT_CHARS:
        raise invalid_input(f"text longer than {MAX_TEXT_CHARS} characters", length=len(text))
    if not isinstance(top_n, int) or isinstance(top_n, bool) or not 1 <= top_n <= 100:
        raise invalid_input("top_n must be an integer in 1..100")
    paragraphs = [p for p in _PARAGRAPH_RE.split(text) if p.strip()]
    tokens: list[str] = []
    clauses: list[list[str]] = []
    sentences = 0
    syllable_count = 0
    for i, para in enumerate(paragraphs, 1):
        check()
        words: list[str] = []
        for clause in _CLAUSE_RE.split(para):
            cw = [w.replace("’", "'").lower() for w in _WORD_RE.findall(clause)]
            if cw:
                clauses.append(cw)
                words.extend(cw)
        tokens.extend(words)
        sentences += _count_sentences(para)
        syllable_count += sum(syllables(w) for w in words)
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
        "sentiment": _sentiment(clauses),
        "characters": _char_stats(text),
    }
    progress(1.0, "analyzed")
    return result


def text_analysis(ctx: TaskContext) -> Any:
    """Handler for ``text_analysis`` tasks: input ``{"text": "...", "top_n": 10}``."""
    data = ctx.input
    if isinstance(data, str):
        data = {"text": data}
    if not isinstance(data, dict):
        raise invalid_input('input must be an object with "text" (a string)')
    return analyze_text(
        data.get("text"), top_n=data.get("top_n", 10), progress=ctx.progress_sync, check=ctx.check_cancelled
    )
