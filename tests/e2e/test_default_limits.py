"""The defaults a new user meets in a first load test: a producer on one machine that
posts tasks in a loop as fast as it can is never answered 429 (``--rate-limit auto``
limits per token only once auth is on), and the limiter still answers 429 with
``Retry-After`` where it applies (docs/security.md, "Rate limits")."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hivehub.client import HiveClient, RateLimited
from hivehub.server.clientlimits import AUTO_RATE_LIMIT
from tests.e2e.test_security import make_token
from tests.hubproc import Hub

N = 2_000


async def _produce(url: str, n: int, token: str | None = None) -> float:
    """One client posting ``n`` tasks one after another, as fast as it can; tasks/s."""
    async with HiveClient(url, token) as c:
        t0 = time.perf_counter()
        ids = {(await c.submit_task(type="noop", description=f"task {i}"))["id"] for i in range(n)}
        rate = n / (time.perf_counter() - t0)
    assert len(ids) == n
    return rate


async def _flood(url: str, token: str, n: int) -> tuple[int, list[RateLimited]]:
    """``n`` writes at once from one token: (accepted, refusals)."""
    async with HiveClient(url, token) as c:
        got = await asyncio.gather(*(c.submit_task(type="noop") for _ in range(n)), return_exceptions=True)
    limited = [g for g in got if isinstance(g, RateLimited)]
    others = [g for g in got if isinstance(g, BaseException) and not isinstance(g, RateLimited)]
    assert not others, others[:3]
    return len(got) - len(limited), limited


def test_a_producer_loop_with_the_defaults_meets_no_429(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hive.db").start()  # every limit at its default, auth off
    try:
        rate = asyncio.run(_produce(hub.url, N))  # raises RateLimited on a 429
        print(f"{N} tasks from one client in a loop: {rate:.0f}/s")
    finally:
        hub.stop()


def test_with_auth_on_a_loop_passes_and_a_flood_from_one_token_is_429(tmp_path: Path) -> None:
    db = tmp_path / "hive.db"
    operator, other = make_token(db, "operator"), make_token(db, "operator")
    hub = Hub(db).start()  # --rate-limit auto: AUTO_RATE_LIMIT per token, auth is on
    try:
        asyncio.run(_produce(hub.url, N, operator))
        # far more at once than the bucket (2 x AUTO_RATE_LIMIT) plus what refills
        # while the hub takes them: some are refused, with the wait to honour
        n = int(6 * AUTO_RATE_LIMIT)
        accepted, limited = asyncio.run(_flood(hub.url, operator, n))
        assert limited and accepted >= 2 * AUTO_RATE_LIMIT - N, (accepted, len(limited))
        assert limited[0].code == "rate_limited" and limited[0].details["limit"] == AUTO_RATE_LIMIT
        assert limited[0].details["retry_after"] >= 0  # the header says at least 1 s
        # another token has its own bucket
        asyncio.run(_produce(hub.url, 10, other))
    finally:
        hub.stop()
