"""A workload generator that submits realistic demo tasks.

It opens with a scripted first minute (:data:`OPENING`) so that a new user sees the
hive at work within it, with the demo agents of ``agents.py``:

* a burst of large order profiles that queues on the prefetching DataProcessor-1
  while Generalist-1 is still coming online: the hub recalls the one waiting there
  for Generalist-1's free slot (a rebalance: ``task_recalled``);
* a stream of single customer reviews that TextAnalyst-1 takes one by one: after
  20 outcomes (the hub's default ``--learning-min-outcomes``) it runs a learning
  cycle, so the default is kept and the demo still reaches it;
* real failures: a sensor log with a third of its lines corrupted (``DATA_QUALITY``,
  not retried), a 50-digit semiprime that cannot be factorized within its time
  budget (``FACTORIZATION_BUDGET_EXCEEDED``, not retried), and a support-chat
  archive longer than TextAnalyst-1's time budget (``TIME_BUDGET_EXCEEDED``,
  retried on another agent, which completes it);
* tasks that run for a second or more with real progress (order profiles, prime
  counts, review batches).

After it, a random mix at a gentler pace (:func:`make_demo_task`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .datasets import review, sales_orders, sensor_log

__all__ = ["OPENING", "demo_workload", "make_demo_task"]

Spec = dict[str, Any]


def _task(kind: str, description: str, task_input: Any, rng: random.Random, **extra: Any) -> Spec:
    spec: Spec = {
        "type": kind,
        "description": description,
        "priority": rng.choices([1, 2, 3, 4], weights=[3, 5, 2, 0.5])[0],
        "required_capabilities": [{"name": kind, "min_proficiency": rng.choice([0.0, 0.3, 0.5])}],
        "input": task_input,
        "timeout_seconds": 120.0,
        "max_retries": 2,
        "metadata": {"source": "demo_workload"},
    }
    spec.update(extra)
    return spec


# ------------------------------------------------------------------ the kinds of task


def order_profile(rng: random.Random, rows: int | None = None) -> Spec:
    rows = rows or rng.choice([20_000, 30_000, 40_000, 60_000])
    dataset = {"kind": "sales_orders", "rows": rows, "seed": rng.randrange(2**31)}
    return _task("data_processing", f"Profile {rows:,} sales orders", {"dataset": dataset, "top_n": 3}, rng)


def small_order_profile(rng: random.Random) -> Spec:
    records = sales_orders(rng, rng.randint(40, 400))
    return _task(
        "data_processing", f"Profile {len(records)} sales orders", {"records": records, "top_n": 3}, rng
    )


def sensor_profile(rng: random.Random, faulty: bool = False) -> Spec:
    """A sensor log; a faulty sensor's has a third of its lines broken, over the
    task's accepted 20 %: the task fails with ``DATA_QUALITY``."""
    if faulty:
        rows, sensor = rng.choice([8_000, 12_000]), rng.choice(["pump-7", "boiler-2"])
        dataset = {"kind": "sensor_log", "rows": rows, "seed": rng.randrange(2**31)}
        dataset.update(corrupted_share=0.35, sensor=sensor)
        return _task(
            "data_processing",
            f"Profile {rows:,} sensor readings from {sensor}",
            {"dataset": dataset, "max_invalid_share": 0.2},
            rng,
        )
    if rng.random() < 0.5:
        text = sensor_log(rng, rng.randint(60, 300))
        return _task(
            "data_processing",
            f"Profile sensor log ({text.count(chr(10)) - 1} readings)",
            {"csv": text, "max_invalid_share": 0.2},
            rng,
        )
    rows = rng.choice([10_000, 20_000, 30_000])
    dataset = {"kind": "sensor_log", "rows": rows, "seed": rng.randrange(2**31)}
    return _task(
        "data_processing",
        f"Profile {rows:,} sensor readings",
        {"dataset": dataset, "max_invalid_share": 0.2},
        rng,
    )


def single_review(rng: random.Random) -> Spec:
    text, tone = review(rng)
    number = rng.randrange(1000, 9999)
    return _task(
        "text_analysis", f"Analyze customer review #{number} ({tone})", {"text": text, "top_n": 8}, rng
    )


def review_batch(rng: random.Random) -> Spec:
    count = rng.choice([150, 200, 300])
    corpus = {"kind": "reviews", "count": count, "seed": rng.randrange(2**31)}
    return _task("text_analysis", f"Analyze {count} customer reviews", {"corpus": corpus, "top_n": 8}, rng)


def chat_archive(rng: random.Random, messages: int | None = None) -> Spec:
    """A support-chat archive; at 20,000 messages (several seconds of analysis) it
    takes longer than TextAnalyst-1's time budget (``agents.TEXT_ANALYST_BUDGET``)
    and is retried on another agent."""
    messages = messages or rng.choice([500, 1_000, 20_000])
    corpus = {"kind": "support_chat", "count": messages, "seed": rng.randrange(2**31)}
    return _task(
        "text_analysis", f"Analyze support chat archive ({messages:,} messages)", {"corpus": corpus}, rng
    )


def primes(rng: random.Random, n: int | None = None) -> Spec:
    n = n or rng.choice([100_000, 250_000, 500_000, 1_000_000])
    return _task("math", f"Compute primes up to {n:,}", {"operation": "primes_up_to", "n": n}, rng)


def factorize(rng: random.Random, hard: bool = False) -> Spec:
    """Numbers up to 10^12 or 10^24; ``hard``: two 50-digit products of two 25-digit
    primes, which the 3 s budget cannot factor (``FACTORIZATION_BUDGET_EXCEEDED``)."""
    if hard:
        # p * q with p, q prime near 10^24 and 7 * 10^25 (checked by the tests)
        numbers = [1000000000000000000000007 * 70000000000000000000000109, rng.randint(10**11, 10**12)]
        return _task(
            "math",
            "Factorize 2 numbers up to 10^50",
            {"operation": "factorize", "numbers": numbers, "time_budget_seconds": 3},
            rng,
        )
    exp = rng.choice([12, 12, 24])
    numbers = [rng.randint(10 ** (exp - 2), 10**exp) for _ in range(rng.randint(3, 8))]
    return _task(
        "math",
        f"Factorize {len(numbers)} numbers up to 10^{exp}",
        {"operation": "factorize", "numbers": numbers},
        rng,
    )


def fibonacci(rng: random.Random) -> Spec:
    n = rng.randint(50, 20_000)
    return _task("math", f"Compute Fibonacci number F({n:,})", {"operation": "fibonacci", "n": n}, rng)


def measurements(rng: random.Random) -> Spec:
    mu, sigma = rng.uniform(10, 500), rng.uniform(1, 50)
    numbers = [round(rng.gauss(mu, sigma), 3) for _ in range(rng.randint(50, 500))]
    return _task(
        "math", f"Summarize {len(numbers)} measurements", {"operation": "statistics", "numbers": numbers}, rng
    )


def gcd_lcm(rng: random.Random) -> Spec:
    common = rng.randint(2, 60)
    numbers = [common * rng.randint(1, 500) for _ in range(rng.randint(2, 6))]
    return _task(
        "math",
        f"Find the GCD and LCM of {len(numbers)} numbers",
        {"operation": "gcd_lcm", "numbers": numbers},
        rng,
    )


#: (weight, maker) of the random mix after the opening
MIX: list[tuple[float, Callable[[random.Random], Spec]]] = [
    (8, single_review),
    (2, review_batch),
    (1.2, chat_archive),
    (3, order_profile),
    (1.5, small_order_profile),
    (1.5, sensor_profile),
    (0.4, lambda rng: sensor_profile(rng, faulty=True)),
    (2, primes),
    (1.5, factorize),
    (0.25, lambda rng: factorize(rng, hard=True)),
    (0.8, fibonacci),
    (0.8, measurements),
    (0.5, gcd_lcm),
]


def make_demo_task(rng: random.Random) -> Spec:
    """One realistic TaskSpec dict (type, description, priority, requirements, input)."""
    weights = [w for w, _ in MIX]
    maker = rng.choices([m for _, m in MIX], weights=weights)[0]
    return maker(rng)


def _opening() -> list[tuple[float, Callable[[random.Random], Spec]]]:
    """(seconds after the start, maker): the scripted first minute."""
    script: list[tuple[float, Callable[[random.Random], Spec]]] = [
        # the burst: three large profiles that queue on the prefetching DataProcessor-1
        # (Generalist-1 comes online a few seconds later: server/demo.py)
        (0.0, lambda rng: order_profile(rng, 120_000)),
        (0.0, lambda rng: order_profile(rng, 120_000)),
        (0.0, lambda rng: order_profile(rng, 120_000)),
        (8.0, lambda rng: sensor_profile(rng, faulty=True)),
        (10.0, lambda rng: chat_archive(rng, 20_000)),
        (12.0, lambda rng: primes(rng, 500_000)),
        (14.0, lambda rng: factorize(rng, hard=True)),
        (18.0, review_batch),
        (22.0, lambda rng: order_profile(rng, 40_000)),
        (26.0, lambda rng: primes(rng, 250_000)),
        (30.0, factorize),
        (34.0, lambda rng: sensor_profile(rng)),
        (38.0, lambda rng: chat_archive(rng, 1_000)),
        (42.0, lambda rng: order_profile(rng, 30_000)),
    ]
    # single reviews, one every 1.5 s once Generalist-1 is online (a review waiting
    # for an agent would go to it as it joins, and keep it from taking the queued
    # profiles): 26 before the 45 s mark, so TextAnalyst-1, which takes each one in
    # milliseconds, passes 20 outcomes and learns
    script += [(3.5 + 1.5 * k, single_review) for k in range(26)]
    return sorted(script, key=lambda e: e[0])


#: the scripted first minute: (seconds after the start, maker)
OPENING = _opening()


async def demo_workload(
    submit: Callable[[Spec], Awaitable[Any]],
    *,
    seed: int | None = None,
    min_interval: float = 1.0,
    max_interval: float = 3.0,
    count: int | None = None,
    opening: bool = True,
) -> int:
    """Submit the opening (unless ``opening=False``), then a random demo task every
    ``min_interval``..``max_interval`` seconds via ``await submit(task_spec_dict)``;
    forever, or until ``count`` tasks in all. Returns how many were submitted."""
    rng = random.Random(seed)
    sent = 0
    if opening:
        start = time.monotonic()
        for at, maker in OPENING:
            if count is not None and sent >= count:
                return sent
            delay = start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await submit(maker(rng))
            sent += 1
    while count is None or sent < count:
        await asyncio.sleep(rng.uniform(min_interval, max_interval))
        await submit(make_demo_task(rng))
        sent += 1
    return sent
