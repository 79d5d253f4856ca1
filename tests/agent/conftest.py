from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from hivehub.agent import Agent

from .fakehub import FakeHttpHub, FakeWsHub


@pytest.fixture
async def hub() -> AsyncIterator[FakeWsHub]:
    h = FakeWsHub()
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
async def http_hub() -> AsyncIterator[FakeHttpHub]:
    h = FakeHttpHub()
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Any], Coroutine[Any, Any, asyncio.Task[None]]]]:
    """``task = await running(agent)``: run the agent in the background; stopped at teardown."""
    started: list[tuple[Any, asyncio.Task[None]]] = []

    async def start(agent: Any) -> asyncio.Task[None]:
        t = asyncio.create_task(agent.run())
        started.append((agent, t))
        await agent.wait_registered(5)
        return t

    yield start
    for agent, t in started:
        if not t.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(agent.stop(grace=0, flush_timeout=0.2), 5)
        if not t.done():
            t.cancel()
        with contextlib.suppress(BaseException):
            await t


def make_agent(hub: FakeWsHub, **kw: Any) -> Agent:
    kw.setdefault("reconnect_base", 0.01)
    kw.setdefault("reconnect_cap", 0.05)
    return Agent(
        kw.pop("name", "Tester"), kw.pop("capabilities", {"data_processing": 0.8}), url=hub.url, **kw
    )
