"""A workload generator that submits realistic demo tasks."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

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
