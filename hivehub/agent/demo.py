"""Demo handlers that do real work on their input, the three demo agents, and a
workload generator that submits realistic tasks.

Handlers (plain ``def``: they run in the agent's thread pool, report progress with
``ctx.progress_sync`` and poll ``ctx.check_cancelled``):

* ``data_processing``: statistics over ``{"records": [...]}`` or ``{"csv": "..."}``
* ``text_analysis``: counts, top words, Flesch reading ease, lexicon sentiment,
  language-agnostic character statistics for ``{"text": "..."}``
* ``math`` / ``numeric``: ``primes_up_to``, ``fibonacci``, ``statistics``,
  ``factorize``, ``gcd_lcm``

Invalid input fails the task with code ``INVALID_INPUT`` and ``retryable=False``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import random
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from itertools import compress
from typing import Any

from .context import Result, TaskContext, TaskFailure

__all__ = [
    "DEMO_HANDLERS",
    "analyze_records",
    "analyze_text",
    "compute_numeric",
    "data_processing",
    "demo_agents",
    "demo_workload",
    "flesch_reading_ease",
    "make_demo_task",
    "math_task",
    "register_demo_handlers",
    "syllables",
    "text_analysis",
]

MAX_ROWS = 1_000_000
MAX_TEXT_CHARS = 5_000_000
MAX_PRIME_LIMIT = 10_000_000
MAX_FIBONACCI_N = 20_000  # F(20000) has 4180 digits (Python's str() limit is 4300)
MAX_FACTORIZE = 10**18
MAX_NUMBERS = 1_000_000


def _invalid(message: str, **details: Any) -> TaskFailure:
    return TaskFailure("INVALID_INPUT", message, details, retryable=False)


def _noop_progress(fraction: float, step: str | None = None) -> None:
    return None


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


# =====================================================================================
# data_processing
# =====================================================================================

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
        import json

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
                raise _invalid(f"the CSV header cannot be parsed: {exc}") from None
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
        raise _invalid("the CSV has no header row")
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
        "sum": _r(math.fsum(values)),
        "mean": _r(statistics.fmean(values)),
        "min": min(values),
        "max": max(values),
        "median": _r(statistics.median(values)),
        "stdev": _r(statistics.stdev(values)) if n >= 2 else None,
    }
    if n >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        out["p25"], out["p75"] = _r(q1), _r(q3)
    else:
        out["p25"] = out["p75"] = _r(float(values[0]))
    return out


def analyze_records(
    data: Any,
    *,
    top_n: int = 5,
    progress: Callable[[float, str | None], None] = _noop_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Profile tabular data: ``{"records": [{...}, ...]}`` or ``{"csv": "a,b\\n1,2"}``.

    Every field is numeric when most of its non-empty values are numbers (numeric
    strings count), else text. A row is invalid when it is not an object / has the
    wrong number of CSV cells, or holds a non-number in a numeric field.
    """
    if not isinstance(data, dict) or ("records" not in data and "csv" not in data):
        raise _invalid('input must be an object with "records" (a list of objects) or "csv" (a string)')
    if not isinstance(top_n, int) or isinstance(top_n, bool) or not 1 <= top_n <= 100:
        raise _invalid("top_n must be an integer in 1..100")
    invalid: dict[int, str] = {}
    fields: dict[str, _Field] = {}
    if "records" in data:
        records = data["records"]
        if not isinstance(records, list):
            raise _invalid('"records" must be a list of objects')
        source = "records"
        rows: list[tuple[int, Any]] = list(enumerate(records, 1))
        header: list[str] | None = None
    else:
        text = data["csv"]
        if not isinstance(text, str):
            raise _invalid('"csv" must be a string')
        delimiter = data.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise _invalid('"delimiter" must be a single character')
        source = "csv"
        header, rows = _csv_rows(text, delimiter)
        for name in header:
            fields[name] = _Field(name)
    if len(rows) > MAX_ROWS:
        raise _invalid(f"at most {MAX_ROWS} rows are accepted", rows=len(rows))

    total = len(rows)
    chunk = max(50, math.ceil(total / 20)) if total else 1
    for start in range(0, total, chunk):
        check()
        for row_no, row in rows[start : start + chunk]:
            if header is None:
                if not isinstance(row, dict):
                    invalid[row_no] = f"not an object ({type(row).__name__})"
                    continue
                for key, value in row.items():
                    f = fields.get(str(key))
                    if f is None:
                        f = fields[str(key)] = _Field(str(key))
                    f.add(row_no, value)
            else:
                if isinstance(row, str):
                    invalid[row_no] = row
                    continue
                if len(row) != len(header):
                    invalid[row_no] = f"expected {len(header)} fields, got {len(row)}"
                    continue
                for name, value in zip(header, row, strict=True):
                    fields[name].add(row_no, value)
        done = min(total, start + chunk)
        progress(0.9 * done / total, f"parsed rows {done}/{total}")

    check()
    numeric: dict[str, Any] = {}
    text_fields: dict[str, Any] = {}
    kinds: list[dict[str, str]] = []
    for f in fields.values():
        present = len(f.numbers) + len(f.texts)
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
        elif present:
            values = Counter(t for _, t in f.texts)
            values.update(_as_text(v) for _, v in f.numbers)
            text_fields[f.name] = {
                "count": present,
                "missing": f.missing,
                "distinct": len(values),
                "top": [{"value": v, "count": c} for v, c in values.most_common(top_n)],
            }
            kinds.append({"name": f.name, "kind": "text"})
        else:
            kinds.append({"name": f.name, "kind": "empty"})
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


def data_processing(ctx: TaskContext) -> Result:
    """Handler for ``data_processing`` tasks (see :func:`analyze_records`)."""
    data = ctx.input
    top_n = data.get("top_n", 5) if isinstance(data, dict) else 5
    out = analyze_records(data, top_n=top_n, progress=ctx.progress_sync, check=ctx.check_cancelled)
    quality = out["valid_rows"] / out["row_count"] if out["row_count"] else 1.0
    return Result(out, quality=round(quality, 4))


# =====================================================================================
# text_analysis
# =====================================================================================

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
    progress: Callable[[float, str | None], None] = _noop_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Counts, top words, readability, sentiment and character statistics of ``text``."""
    if not isinstance(text, str):
        raise _invalid('input must be an object with "text" (a string)')
    if len(text) > MAX_TEXT_CHARS:
        raise _invalid(f"text longer than {MAX_TEXT_CHARS} characters", length=len(text))
    if not isinstance(top_n, int) or isinstance(top_n, bool) or not 1 <= top_n <= 100:
        raise _invalid("top_n must be an integer in 1..100")
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
            "flesch_reading_ease": _r(flesch, 2),
            "interpretation": _flesch_label(flesch),
            "flesch_kincaid_grade": _r(grade, 2),
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
        raise _invalid('input must be an object with "text" (a string)')
    return analyze_text(
        data.get("text"), top_n=data.get("top_n", 10), progress=ctx.progress_sync, check=ctx.check_cancelled
    )


# =====================================================================================
# math / numeric
# =====================================================================================


def _int_param(data: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = data.get(key)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise _invalid(f'"{key}" must be an integer in {lo}..{hi}', **{key: v})
    return v


def _numbers(data: dict[str, Any], *, integers: bool = False) -> list[Any]:
    nums = data.get("numbers")
    if not isinstance(nums, list) or not nums:
        raise _invalid('"numbers" must be a non-empty list')
    if len(nums) > MAX_NUMBERS:
        raise _invalid(f'at most {MAX_NUMBERS} "numbers"')
    for i, x in enumerate(nums):
        ok = isinstance(x, int) if integers else isinstance(x, int | float) and math.isfinite(x)
        if not ok or isinstance(x, bool):
            kind = "an integer" if integers else "a finite number"
            raise _invalid(f"numbers[{i}] is not {kind}", index=i, value=repr(x)[:50])
    return nums


def _small_primes(limit: int) -> list[int]:
    if limit < 2:
        return []
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return list(compress(range(limit + 1), sieve))


def iter_primes(limit: int, on_segment: Callable[[int], None] | None = None) -> Iterator[int]:
    """Primes <= ``limit`` by a segmented sieve of Eratosthenes."""
    if limit < 2:
        return
    base = _small_primes(math.isqrt(limit))
    size = 1 << 17
    for low in range(2, limit + 1, size):
        high = min(low + size - 1, limit)
        mark = bytearray([1]) * (high - low + 1)
        for p in base:
            if p * p > high:
                break
            start = max(p * p, (low + p - 1) // p * p)
            mark[start - low :: p] = bytes(len(range(start - low, high - low + 1, p)))
        yield from compress(range(low, high + 1), mark)
        if on_segment is not None:
            on_segment(high)


def _primes_up_to(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    n = _int_param(data, "n", 0, MAX_PRIME_LIMIT)

    def on_segment(high: int) -> None:
        check()
        progress(high / n, f"sieved up to {high}")

    count = total = twins = 0
    prev = largest = None
    first: list[int] = []
    last: list[int] = []
    keep_all = n <= 10_000
    everything: list[int] = []
    for p in iter_primes(n, on_segment):
        count += 1
        total += p
        if prev is not None and p - prev == 2:
            twins += 1
        prev = largest = p
        if len(first) < 10:
            first.append(p)
        last.append(p)
        if len(last) > 10:
            last.pop(0)
        if keep_all:
            everything.append(p)
    out: dict[str, Any] = {
        "operation": "primes_up_to",
        "n": n,
        "count": count,
        "sum": total,
        "largest": largest,
        "twin_prime_pairs": twins,
        "first": first,
        "last": last,
        "density": round(count / n, 6) if n else 0.0,
        "prime_number_theorem_estimate": round(n / math.log(n), 2) if n > 1 else 0.0,
    }
    if keep_all:
        out["primes"] = everything
    return out


def fibonacci(n: int) -> tuple[int, int]:
    """``(F(n), F(n+1))`` by fast doubling."""
    if n == 0:
        return 0, 1
    a, b = fibonacci(n >> 1)
    c = a * (2 * b - a)
    d = a * a + b * b
    return (d, c + d) if n & 1 else (c, d)


def _big(x: int) -> int | str:
    """Integers beyond 2**53 as strings, so JSON readers without big ints keep every digit."""
    if abs(x) <= 2**53:
        return x
    try:
        return str(x)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<{x.bit_length()}-bit integer>"


def _fibonacci(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    n = _int_param(data, "n", 0, MAX_FIBONACCI_N)
    progress(0.1, f"computing F({n})")
    fn, fn1 = fibonacci(n)
    check()
    digits = str(fn)
    progress(0.8, "summarizing")
    terms = []
    a, b = 0, 1
    for _ in range(min(n + 1, 30)):
        terms.append(a)
        a, b = b, a + b
    return {
        "operation": "fibonacci",
        "n": n,
        "value": _big(fn),
        "digits": len(digits),
        "digit_sum": sum(map(int, digits)),
        "next": _big(fn1),
        # exact big-int division, rounded once to a float (approaches the golden ratio)
        "ratio_to_previous": fn / (fn1 - fn) if n >= 2 else None,
        "first_terms": terms,
    }


def _statistics(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data)
    progress(0.2, "sorting")
    s = sorted(nums)
    check()
    n = len(s)
    modes = statistics.multimode(s)
    out: dict[str, Any] = {
        "operation": "statistics",
        "count": n,
        "sum": _r(math.fsum(s)),
        "mean": _r(statistics.fmean(s)),
        "median": _r(statistics.median(s)),
        # values that occur most often (none when every value is unique)
        "modes": modes[:10] if len(modes) < n else [],
        "min": s[0],
        "max": s[-1],
        "range": _r(s[-1] - s[0]),
        "variance": _r(statistics.variance(s)) if n >= 2 else None,
        "stdev": _r(statistics.stdev(s)) if n >= 2 else None,
        "population_stdev": _r(statistics.pstdev(s)),
    }
    progress(0.6, "quantiles")
    if n >= 2:
        q1, q2, q3 = statistics.quantiles(s, n=4, method="inclusive")
        iqr = q3 - q1
        lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        out["quartiles"] = [_r(q1), _r(q2), _r(q3)]
        out["iqr"] = _r(iqr)
        outliers = [x for x in s if x < lo or x > hi]
        out["outliers"] = {"count": len(outliers), "values": outliers[:20]}
    if all(x > 0 for x in s):
        out["geometric_mean"] = _r(statistics.geometric_mean(s))
        out["harmonic_mean"] = _r(statistics.harmonic_mean(s))
    return out


_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24."""
    if n < 2:
        return False
    for p in _MR_BASES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in _MR_BASES:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _pollard_brent(n: int, rng: random.Random) -> int:
    if n % 2 == 0:
        return 2
    while True:
        y, c, m = rng.randrange(1, n), rng.randrange(1, n), 128
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += m
            r *= 2
        if g == n:
            g = 1
            while g == 1:
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
        if g != n:
            return g


def factorize(n: int) -> dict[int, int]:
    """Prime factorization ``{prime: exponent}`` (trial division, then Pollard-Brent rho)."""
    factors: Counter[int] = Counter()
    if n < 2:
        return {}
    for p in _small_primes(1000):
        while n % p == 0:
            factors[p] += 1
            n //= p
    stack = [n] if n > 1 else []
    rng = random.Random(n)
    while stack:
        m = stack.pop()
        if m == 1:
            continue
        if is_prime(m):
            factors[m] += 1
            continue
        d = _pollard_brent(m, rng)
        stack.extend((d, m // d))
    return dict(sorted(factors.items()))


def _factorize(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 1000:
        raise _invalid('at most 1000 "numbers" to factorize')
    results = []
    for i, x in enumerate(nums, 1):
        if not 1 <= x <= MAX_FACTORIZE:
            raise _invalid(f"numbers to factorize must be in 1..{MAX_FACTORIZE}", value=x)
        check()
        f = factorize(x)
        divisors = math.prod(e + 1 for e in f.values())
        results.append(
            {
                "n": x,
                "factors": [{"prime": p, "exponent": e} for p, e in f.items()],
                "is_prime": f == {x: 1},
                "divisor_count": divisors,
            }
        )
        progress(i / len(nums), f"factorized {i}/{len(nums)}")
    return {"operation": "factorize", "results": results}


def _gcd_lcm(
    data: dict[str, Any], progress: Callable[..., None], check: Callable[[], None]
) -> dict[str, Any]:
    nums = _numbers(data, integers=True)
    if len(nums) > 10_000 or any(abs(x) > MAX_FACTORIZE for x in nums):
        raise _invalid(f'gcd_lcm takes at most 10000 "numbers" within +-{MAX_FACTORIZE}')
    g = math.gcd(*nums)
    lcm = math.lcm(*nums)
    return {"operation": "gcd_lcm", "count": len(nums), "gcd": g, "lcm": _big(lcm), "coprime": g == 1}


_OPERATIONS: dict[
    str, Callable[[dict[str, Any], Callable[..., None], Callable[[], None]], dict[str, Any]]
] = {
    "primes_up_to": _primes_up_to,
    "fibonacci": _fibonacci,
    "statistics": _statistics,
    "factorize": _factorize,
    "gcd_lcm": _gcd_lcm,
}


def compute_numeric(
    data: Any,
    *,
    progress: Callable[[float, str | None], None] = _noop_progress,
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Run one numeric operation: ``{"operation": "primes_up_to", "n": 100}``,
    ``{"operation": "fibonacci", "n": 90}``, ``{"operation": "statistics", "numbers": [...]}``,
    ``{"operation": "factorize", "numbers": [...]}``, ``{"operation": "gcd_lcm", "numbers": [...]}``.
    Without ``operation``, ``numbers`` means ``statistics``."""
    if not isinstance(data, dict):
        raise _invalid('input must be an object with an "operation"')
    op = data.get("operation") or ("statistics" if "numbers" in data else None)
    fn = _OPERATIONS.get(op) if isinstance(op, str) else None
    if fn is None:
        raise _invalid(f"unknown operation {op!r}", operations=sorted(_OPERATIONS))
    out = fn(data, progress, check)
    progress(1.0, "done")
    return out


def math_task(ctx: TaskContext) -> Any:
    """Handler for ``math`` / ``numeric`` tasks (see :func:`compute_numeric`)."""
    return compute_numeric(ctx.input, progress=ctx.progress_sync, check=ctx.check_cancelled)


#: task type -> handler
DEMO_HANDLERS: dict[str, Callable[[TaskContext], Any]] = {
    "data_processing": data_processing,
    "text_analysis": text_analysis,
    "math": math_task,
    "numeric": math_task,
}


def register_demo_handlers(agent: Any, types: Iterable[str] | None = None) -> None:
    """Add the demo handlers (all, or those of ``types``) to an agent."""
    for t in types if types is not None else DEMO_HANDLERS:
        agent.add_handler(t, DEMO_HANDLERS[t])


# =====================================================================================
# demo agents and workload
# =====================================================================================


def demo_agents(url: str = "ws://127.0.0.1:3001", *, token: str | None = None) -> list[Any]:
    """Three configured agents with the demo handlers (not started).

    Their ids are fixed (``demo-dataprocessor-1``, ...) so that after a hub restart they
    resume their own history instead of piling up as new agents."""
    from .ws import Agent

    data = Agent(
        "DataProcessor-1",
        {"data_processing": 0.9, "text_analysis": 0.4},
        url=url,
        type="specialist",
        agent_id="demo-dataprocessor-1",
        token=token,
        metadata={"demo": True},
    )
    register_demo_handlers(data, ["data_processing", "text_analysis"])
    text = Agent(
        "TextAnalyst-1",
        {"text_analysis": 0.9},
        url=url,
        type="specialist",
        agent_id="demo-textanalyst-1",
        token=token,
        metadata={"demo": True},
    )
    register_demo_handlers(text, ["text_analysis"])
    general = Agent(
        "Generalist-1",
        {"data_processing": 0.6, "text_analysis": 0.6, "math": 0.6, "numeric": 0.6},
        url=url,
        type="worker",
        max_concurrent_tasks=2,
        agent_id="demo-generalist-1",
        token=token,
        metadata={"demo": True},
    )
    register_demo_handlers(general)
    return [data, text, general]


# fmt: off
_REGIONS = ["north", "south", "east", "west", "central"]
_PRODUCTS = {"widget": 12.5, "gadget": 24.0, "gizmo": 7.25, "sprocket": 3.1, "flange": 15.8, "valve": 42.0}
_CHANNELS = ["web", "store", "phone", "partner"]
_SENSORS = ["boiler-1", "boiler-2", "chiller-a", "pump-7", "fan-3"]
_NOUNS = ["delivery", "support team", "app", "dashboard", "update", "checkout", "battery", "manual",
          "installation", "price", "screen", "service", "response", "interface", "package"]
_GOOD = ["great", "excellent", "fast", "reliable", "helpful", "intuitive", "smooth", "impressive", "friendly"]
_BAD = ["slow", "confusing", "broken", "disappointing", "buggy", "expensive", "unreliable", "frustrating"]
_OPENERS = ["Overall,", "Honestly,", "To be fair,", "Last week", "After two months,", "Sadly,", "In short,"]
_FILLERS = ["we tried it with our whole team", "the setup took about an hour",
            "it arrived on a Tuesday morning", "my colleague compared it with the old version",
            "the documentation covers the basics", "we used it every day"]
# fmt: on


def _sentence(rng: random.Random, tone: str) -> str:
    noun = rng.choice(_NOUNS)
    if tone == "mixed":
        tone = rng.choice(["positive", "negative"])
    adj = rng.choice(_GOOD if tone == "positive" else _BAD)
    pattern = rng.randrange(5)
    if pattern == 0:
        s = f"The {noun} was {rng.choice(['very ', 'really ', '', ''])}{adj}"
    elif pattern == 1:
        s = f"{rng.choice(_OPENERS)} {rng.choice(_FILLERS)}, and the {noun} felt {adj}"
    elif pattern == 2:
        other = rng.choice(_BAD if tone == "positive" else _GOOD)
        s = f"I would not call the {noun} {other}; it is {adj}"
    elif pattern == 3:
        s = f"Our {noun} experience was {adj} compared with what we expected"
    else:
        s = f"{rng.choice(_FILLERS).capitalize()}"
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", "!"])


def _demo_text(rng: random.Random) -> tuple[str, str]:
    tone = rng.choice(["positive", "negative", "mixed"])
    paragraphs = []
    for _ in range(rng.randint(2, 5)):
        paragraphs.append(" ".join(_sentence(rng, tone) for _ in range(rng.randint(2, 6))))
    return "\n\n".join(paragraphs), tone


def _demo_records(rng: random.Random) -> list[Any]:
    rows: list[Any] = []
    for k in range(rng.randint(40, 400)):
        product = rng.choice(list(_PRODUCTS))
        row: dict[str, Any] = {
            "order_id": f"O-{rng.randrange(10**5):05d}",
            "region": rng.choice(_REGIONS),
            "product": product,
            "channel": rng.choice(_CHANNELS),
            "quantity": rng.randint(1, 20),
            "unit_price": round(max(0.5, rng.gauss(_PRODUCTS[product], _PRODUCTS[product] * 0.1)), 2),
            "discount": rng.choice([0, 0, 0, 0.05, 0.1, 0.15]),
        }
        roll = rng.random()
        if roll < 0.02:
            row["quantity"] = rng.choice(["n/a", "unknown", "-"])
        elif roll < 0.03:
            del row["unit_price"]
        elif roll < 0.035:
            rows.append(f"corrupted line {k}")
            continue
        rows.append(row)
    return rows


def _demo_csv(rng: random.Random) -> str:
    lines = ["sensor,minute,temperature_c,humidity_pct,status"]
    for minute in range(rng.randint(60, 300)):
        sensor = rng.choice(_SENSORS)
        temp = rng.gauss(21.0 if sensor.startswith("fan") else 65.0, 4.0)
        status = "alarm" if temp > 72 else rng.choice(["ok", "ok", "ok", "maintenance"])
        roll = rng.random()
        if roll < 0.02:
            lines.append(f"{sensor},{minute},{temp:.1f}")  # truncated row
        elif roll < 0.03:
            lines.append(f"{sensor},{minute},ERR,{rng.uniform(20, 80):.1f},{status}")
        else:
            lines.append(f"{sensor},{minute},{temp:.1f},{rng.uniform(20, 80):.1f},{status}")
    return "\n".join(lines) + "\n"


def make_demo_task(rng: random.Random) -> dict[str, Any]:
    """One realistic TaskSpec dict (type, description, priority, requirements, input)."""
    kind = rng.choices(["data_processing", "text_analysis", "math"], weights=[4, 3.5, 2.5])[0]
    priority = rng.choices([1, 2, 3, 4], weights=[3, 5, 2, 0.5])[0]
    if kind == "data_processing":
        if rng.random() < 0.5:
            records = _demo_records(rng)
            task_input: Any = {"records": records, "top_n": 3}
            description = f"Profile {len(records)} sales orders"
        else:
            text = _demo_csv(rng)
            task_input = {"csv": text}
            description = f"Profile sensor log ({text.count(chr(10)) - 1} readings)"
    elif kind == "text_analysis":
        text, _tone = _demo_text(rng)
        task_input = {"text": text, "top_n": 8}
        description = f"Analyze customer review #{rng.randrange(1000, 9999)}"
    else:
        op = rng.choice(["primes_up_to", "fibonacci", "statistics", "factorize", "gcd_lcm"])
        if op == "primes_up_to":
            task_input = {"operation": op, "n": rng.randint(10_000, 2_000_000)}
        elif op == "fibonacci":
            task_input = {"operation": op, "n": rng.randint(50, 20_000)}
        elif op == "statistics":
            mu, sigma = rng.uniform(10, 500), rng.uniform(1, 50)
            task_input = {
                "operation": op,
                "numbers": [round(rng.gauss(mu, sigma), 3) for _ in range(rng.randint(50, 500))],
            }
        elif op == "factorize":
            task_input = {
                "operation": op,
                "numbers": [rng.randint(10**6, 10**12) for _ in range(rng.randint(3, 8))],
            }
        else:
            common = rng.randint(2, 60)
            task_input = {
                "operation": op,
                "numbers": [common * rng.randint(1, 500) for _ in range(rng.randint(2, 6))],
            }
        description = f"Compute {op.replace('_', ' ')}"
    return {
        "type": kind,
        "description": description,
        "priority": priority,
        "required_capabilities": [{"name": kind, "min_proficiency": rng.choice([0.0, 0.3, 0.5])}],
        "input": task_input,
        "timeout_seconds": 120.0,
        "max_retries": 2,
        "metadata": {"source": "demo_workload"},
    }


async def demo_workload(
    submit: Callable[[dict[str, Any]], Awaitable[Any]],
    *,
    seed: int | None = None,
    min_interval: float = 2.0,
    max_interval: float = 4.0,
    count: int | None = None,
) -> int:
    """Submit a demo task every ``min_interval``..``max_interval`` seconds via
    ``await submit(task_spec_dict)``; forever, or ``count`` times. Returns how many."""
    rng = random.Random(seed)
    sent = 0
    while count is None or sent < count:
        await submit(make_demo_task(rng))
        sent += 1
        if count is None or sent < count:
            await asyncio.sleep(rng.uniform(min_interval, max_interval))
    return sent
