"""A real ``hive serve`` for the client tests, shared by a module (``--no-demo``).

Tests that share it use their own task types, capability names and ids, so they
do not see each other's work."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import TIME_SCALE
from tests.hubproc import Hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub") / "hive.db", "--heartbeat-timeout", "120").start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Unique names per test: ``uid("type")`` -> ``"type-1a2b3c"``."""
    tag = uuid.uuid4().hex[:6]
    return lambda name: f"{name}-{tag}"


class Collector:
    """Consumes a stream in a task; tests wait for conditions, never for time."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._consume())

    async def _consume(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
                self._changed.set()
        except BaseException as exc:
            self.error = exc
            self._changed.set()
            raise

    async def until(
        self, cond: Callable[[list[Any]], Any], timeout: float = 10.0, what: str = "condition"
    ) -> Any:
        async def wait() -> Any:
            while True:
                v = cond(self.items)
                if v:
                    return v
                if self.error is not None:
                    raise AssertionError(f"stream failed while waiting for {what}: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(wait(), timeout * TIME_SCALE)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}; got {[self._label(i) for i in self.items][-20:]}"
            ) from None

    @staticmethod
    def _label(item: Any) -> str:
        if isinstance(item, dict):
            return f"{item.get('sequence')}:{item.get('type')}"
        return repr(item)

    async def stop(self) -> None:
        await self.stream.close()
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass


def task_ids(items: list[Any], typ: str = "task_created") -> list[str]:
    return [e["data"]["task"]["id"] for e in items if isinstance(e, dict) and e.get("type") == typ]
