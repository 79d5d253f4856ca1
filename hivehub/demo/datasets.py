"""Synthetic data sets for the demo: sales orders, sensor logs, customer reviews and
support chats, generated from a seed.

A demo task may carry its data inline (``{"records": [...]}``, ``{"text": "..."}``)
or name a data set (``{"dataset": {...}}``, ``{"corpus": {...}}``) that the handler
generates before working on it, as a real task names a table or a bucket instead of
carrying it: the event log keeps a few bytes, the handler does the full work.
"""

from __future__ import annotations

import random
from typing import Any

from .inputs import invalid_input

__all__ = [
    "DATASET_KINDS",
    "CORPUS_KINDS",
    "corpus_text",
    "dataset_input",
    "review",
    "sales_orders",
    "sensor_log",
]

MAX_DATASET_ROWS = 200_000
MAX_CORPUS_ITEMS = 20_000

# fmt: off
_REGIONS = ["north", "south", "east", "west", "central"]
_PRODUCTS = {"widget": 12.5, "gadget": 24.0, "gizmo": 7.25, "sprocket": 3.1, "flange": 15.8, "valve": 42.0}
_CHANNELS = ["web", "store", "phone", "partner"]
_SENSORS = ["boiler-1", "boiler-2", "chiller-a", "pump-7", "fan-3"]
_NOUNS = ["delivery", "support team", "app", "dashboard", "update", "checkout", "battery", "manual",
          "installation", "price", "screen", "service", "response", "interface", "package"]
# words VADER's lexicon knows, so the analysis finds the tone the generator meant
_GOOD = ["great", "excellent", "helpful", "impressive", "friendly", "wonderful", "pleasant", "fantastic"]
_BAD = ["confusing", "broken", "disappointing", "frustrating", "terrible", "annoying", "useless", "sluggish"]
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


def review(rng: random.Random, tone: str | None = None) -> tuple[str, str]:
    """One customer review (2 to 5 paragraphs) and its intended tone."""
    tone = tone or rng.choice(["positive", "negative", "mixed"])
    paragraphs = []
    for _ in range(rng.randint(2, 5)):
        paragraphs.append(" ".join(_sentence(rng, tone) for _ in range(rng.randint(2, 6))))
    return "\n\n".join(paragraphs), tone


_CHAT_OPENERS = ["Hi,", "Hello,", "Thanks for waiting.", "Quick question:", "Update:", "Sorry,"]


def support_chat(rng: random.Random, messages: int) -> str:
    """A support chat transcript: one paragraph per message."""
    lines = []
    for k in range(messages):
        who = "Agent" if k % 2 else "Customer"
        tone = rng.choice(["positive", "negative", "negative", "mixed"]) if who == "Customer" else "positive"
        body = " ".join(_sentence(rng, tone) for _ in range(rng.randint(1, 3)))
        lines.append(f"{who}: {rng.choice(_CHAT_OPENERS)} {body}")
    return "\n\n".join(lines)


def sales_orders(rng: random.Random, rows: int, corrupted_share: float = 0.035) -> list[Any]:
    """Order records; about ``corrupted_share`` of them are broken (a quantity that is
    not a number, a missing price, a line that is not a record at all)."""
    out: list[Any] = []
    products = list(_PRODUCTS)
    for k in range(rows):
        product = rng.choice(products)
        row: dict[str, Any] = {
            "order_id": f"O-{rng.randrange(10**6):06d}",
            "region": rng.choice(_REGIONS),
            "product": product,
            "channel": rng.choice(_CHANNELS),
            "quantity": rng.randint(1, 20),
            "unit_price": round(max(0.5, rng.gauss(_PRODUCTS[product], _PRODUCTS[product] * 0.1)), 2),
            "discount": rng.choice([0, 0, 0, 0.05, 0.1, 0.15]),
        }
        roll = rng.random() / corrupted_share if corrupted_share > 0 else 1.0
        if roll < 0.55:
            row["quantity"] = rng.choice(["n/a", "unknown", "-"])
        elif roll < 0.8:
            del row["unit_price"]
        elif roll < 1.0:
            out.append(f"corrupted line {k}")
            continue
        out.append(row)
    return out


def sensor_log(
    rng: random.Random, readings: int, faulty_share: float = 0.03, sensor: str | None = None
) -> str:
    """A CSV sensor log; about ``faulty_share`` of the lines are truncated or hold ``ERR``."""
    lines = ["sensor,minute,temperature_c,humidity_pct,status"]
    for minute in range(readings):
        name = sensor or rng.choice(_SENSORS)
        temp = rng.gauss(21.0 if name.startswith("fan") else 65.0, 4.0)
        status = "alarm" if temp > 72 else rng.choice(["ok", "ok", "ok", "maintenance"])
        roll = rng.random() / faulty_share if faulty_share > 0 else 1.0
        if roll < 0.6:
            lines.append(f"{name},{minute},{temp:.1f}")  # truncated row
        elif roll < 1.0:
            lines.append(f"{name},{minute},ERR,{rng.uniform(20, 80):.1f},{status}")
        else:
            lines.append(f"{name},{minute},{temp:.1f},{rng.uniform(20, 80):.1f},{status}")
    return "\n".join(lines) + "\n"


DATASET_KINDS = ("sales_orders", "sensor_log")
CORPUS_KINDS = ("reviews", "support_chat")


def _spec_int(spec: dict[str, Any], key: str, lo: int, hi: int, default: int | None = None) -> int:
    v = spec.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise invalid_input(f'"{key}" must be an integer in {lo}..{hi}', **{key: v})
    return v


def _spec_share(spec: dict[str, Any], key: str, default: float) -> float:
    v = spec.get(key, default)
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v <= 1:
        raise invalid_input(f'"{key}" must be a number in 0..1', **{key: v})
    return float(v)


def dataset_input(spec: Any) -> dict[str, Any]:
    """``{"kind": "sales_orders", "rows": N, "seed": S, "corrupted_share": 0.03}`` or
    ``{"kind": "sensor_log", "rows": N, "seed": S, "corrupted_share": p, "sensor": "pump-7"}``
    -> the ``{"records": [...]}`` / ``{"csv": "..."}`` input it stands for."""
    if not isinstance(spec, dict) or spec.get("kind") not in DATASET_KINDS:
        raise invalid_input('"dataset" must be an object with "kind" in ' + ", ".join(DATASET_KINDS))
    rows = _spec_int(spec, "rows", 1, MAX_DATASET_ROWS)
    rng = random.Random(_spec_int(spec, "seed", 0, 2**63, 0))
    if spec["kind"] == "sales_orders":
        return {"records": sales_orders(rng, rows, _spec_share(spec, "corrupted_share", 0.035))}
    sensor = spec.get("sensor")
    if sensor is not None and not isinstance(sensor, str):
        raise invalid_input('"sensor" must be a string')
    return {"csv": sensor_log(rng, rows, _spec_share(spec, "corrupted_share", 0.03), sensor)}


def corpus_text(spec: Any) -> str:
    """``{"kind": "reviews", "count": N, "seed": S}`` (N reviews, a blank line between
    paragraphs) or ``{"kind": "support_chat", "count": N, "seed": S}`` (N messages)."""
    if not isinstance(spec, dict) or spec.get("kind") not in CORPUS_KINDS:
        raise invalid_input('"corpus" must be an object with "kind" in ' + ", ".join(CORPUS_KINDS))
    count = _spec_int(spec, "count", 1, MAX_CORPUS_ITEMS)
    rng = random.Random(_spec_int(spec, "seed", 0, 2**63, 0))
    if spec["kind"] == "reviews":
        return "\n\n".join(review(rng)[0] for _ in range(count))
    return support_chat(rng, count)
