"""``SyncHiveClient``: the same client for scripts without asyncio.

An event loop runs in a daemon thread; every method submits the coroutine of
:class:`HiveClient` to it and blocks for the result (exceptions are re-raised
in the caller's thread, same classes). ``stream()`` returns a blocking iterator::

    with SyncHiveClient("http://127.0.0.1:3001") as hive:
        t = hive.submit_task(type="x", input={"n": 1})
        for ev in hive.stream(task_id=t["id"], since=0):
            print(ev["type"])
            if ev["type"] == "task_completed":
                break
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .rest import DEFAULT_URL, HiveClient
from .stream import EventStream

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hive-client-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("SyncHiveClient called from its own event loop thread (use HiveClient there)")
        fut = asyncio.run_coroutine_threadsafe(_await(coro), self.loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        async def step() -> tuple[bool, Any]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, None

        try:
            while True:
                ok, item = self.run(step())
                if not ok:
                    return
                yield item
        finally:
            close = getattr(agen, "aclose", None)
            if close is not None and not self.loop.is_closed():
                self.run(close())

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _await(aw: Awaitable[T]) -> T:
    return await aw


class SyncEventStream:
    """A blocking view of :class:`EventStream`: iterate it, or use ``get(timeout)``."""

    def __init__(self, runner: _LoopThread, stream: EventStream) -> None:
        self._r = runner
        self.stream = stream

    def __iter__(self) -> SyncEventStream:
        return self

    def __next__(self) -> Any:
        async def step() -> tuple[bool, Any]:
            try:
                return True, await self.stream.__anext__()
            except StopAsyncIteration:
                return False, None

        ok, item = self._r.run(step())
        if not ok:
            raise StopIteration
        return item

    def get(self, timeout: float | None = None) -> Any:
        """The next message; ``TimeoutError`` after ``timeout`` seconds, ``StopIteration`` when closed."""
        return self._r.run(self.stream.next(timeout))

    def __enter__(self) -> SyncEventStream:
        self._r.run(_start(self.stream))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def last_sequence(self) -> int | None:
        return self.stream.last_sequence

    @property
    def reconnects(self) -> int:
        return self.stream.reconnects

    def request(
        self, type: str, data: dict[str, Any] | None = None, timeout: float | None = 30.0
    ) -> dict[str, Any]:
        return self._r.run(self.stream.request(type, data, timeout))

    def ping(self, timeout: float | None = 10.0) -> float:
        return self._r.run(self.stream.ping(timeout))

    def subscribe(self, **filters: Any) -> dict[str, Any]:
        return self._r.run(self.stream.subscribe(**filters))

    def on(self, type: str, handler: Callable[[Any], Any] | None = None) -> Any:
        """Handlers run on the client's loop thread."""
        return self.stream.on(type, handler)

    def run(self) -> None:
        """Dispatch to the :meth:`on` handlers until closed (blocks)."""
        self._r.run(self.stream.run())

    def wait_connected(self, timeout: float | None = None) -> None:
        self._r.run(self.stream.wait_connected(timeout))

    def close(self) -> None:
        if not self._r.loop.is_closed():
            self._r.run(self.stream.close())


async def _start(stream: EventStream) -> None:
    stream.start()


class SyncHiveClient:
    """Blocking twin of :class:`HiveClient` (same arguments, same methods, same errors)."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float | None = 30) -> None:
        self._r = _LoopThread()
        self.client = HiveClient(url, token, timeout)

    @property
    def url(self) -> str:
        return self.client.url

    def __enter__(self) -> SyncHiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._r.loop.is_closed():
            try:
                self._r.run(self.client.close(), timeout=15)
            finally:
                self._r.stop()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._r.run(getattr(self.client, name)(*args, **kwargs))

    # REST (see HiveClient for the arguments)
    def health(self) -> dict[str, Any]:
        return self._call("health")  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self._call("status")  # type: ignore[no-any-return]

    def api_info(self) -> dict[str, Any]:
        return self._call("api_info")  # type: ignore[no-any-return]

    def openapi(self) -> dict[str, Any]:
        return self._call("openapi")  # type: ignore[no-any-return]

    def alerts(self) -> list[dict[str, Any]]:
        return self._call("alerts")  # type: ignore[no-any-return]

    def modules(self) -> dict[str, Any]:
        return self._call("modules")  # type: ignore[no-any-return]

    def list_agents(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._r.iterate(self.client.list_agents(**filters))

    def agents(self, **filters: Any) -> list[dict[str, Any]]:
        return self._call("agents", **filters)  # type: ignore[no-any-return]

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self._call("get_agent", agent_id)  # type: ignore[no-any-return]

    def register_agent(self, name: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("register_agent", name, **kwargs)  # type: ignore[no-any-return]

    def update_agent(self, agent_id: str, **kwargs: Any) -> dict[str, Any]:
        return self._call("update_agent", agent_id, **kwargs)  # type: ignore[no-any-return]

    def remove_agent(self, agent_id: str) -> dict[str, Any]:
        return self._call("remove_agent", agent_id)  # type: ignore[no-any-return]

    def reset_learning(self, agent_id: str, capabilities: list[str] | None = None) -> dict[str, Any]:
        return self._call("reset_learning", agent_id, capabilities)  # type: ignore[no-any-return]

    def submit_task(self, spec: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        return self._r.run(self.client.submit_task(spec, **fields))

    def submit_tasks(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("submit_tasks", specs)  # type: ignore[no-any-return]

    def list_tasks(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._r.iterate(self.client.list_tasks(**filters))

    def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        return self._call("tasks", **filters)  # type: ignore[no-any-return]

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self._call("get_task", task_id)  # type: ignore[no-any-return]

    def task_attempts(self, task_id: str) -> dict[str, Any]:
        return self._call("task_attempts", task_id)  # type: ignore[no-any-return]

    def cancel_task(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._call("cancel_task", task_id, reason)  # type: ignore[no-any-return]

    def retry_task(self, task_id: str) -> dict[str, Any]:
        return self._call("retry_task", task_id)  # type: ignore[no-any-return]

    def approve_task(self, task_id: str, comment: str | None = None) -> dict[str, Any]:
        return self._call("approve_task", task_id, comment)  # type: ignore[no-any-return]

    def reject_task(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._call("reject_task", task_id, reason)  # type: ignore[no-any-return]

    def answer_task(self, task_id: str, answer: str, request_id: str | None = None) -> dict[str, Any]:
        return self._call("answer_task", task_id, answer, request_id)  # type: ignore[no-any-return]

    def inbox(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._call("inbox", limit)  # type: ignore[no-any-return]

    def set_quota(self, name: str, **limits: Any) -> dict[str, Any]:
        return self._call("set_quota", name, **limits)  # type: ignore[no-any-return]

    def list_quotas(self) -> list[dict[str, Any]]:
        return self._call("list_quotas")  # type: ignore[no-any-return]

    def get_quota(self, name: str) -> dict[str, Any]:
        return self._call("get_quota", name)  # type: ignore[no-any-return]

    def delete_quota(self, name: str) -> dict[str, Any]:
        return self._call("delete_quota", name)  # type: ignore[no-any-return]

    def set_budget(self, owner: str, **limits: Any) -> dict[str, Any]:
        return self._call("set_budget", owner, **limits)  # type: ignore[no-any-return]

    def list_budgets(self) -> list[dict[str, Any]]:
        return self._call("list_budgets")  # type: ignore[no-any-return]

    def get_budget(self, owner: str) -> dict[str, Any]:
        return self._call("get_budget", owner)  # type: ignore[no-any-return]

    def delete_budget(self, owner: str) -> dict[str, Any]:
        return self._call("delete_budget", owner)  # type: ignore[no-any-return]

    def events(self, since: int = 0, types: Any = None, limit: int = 1000) -> dict[str, Any]:
        return self._call("events", since, types, limit)  # type: ignore[no-any-return]

    def iter_events(self, since: int = 0, types: Any = None) -> Iterator[dict[str, Any]]:
        return self._r.iterate(self.client.iter_events(since, types))

    def wait_for_task(self, task_id: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``on_event`` callbacks run on the client's loop thread."""
        return self._call("wait_for_task", task_id, timeout, **kwargs)  # type: ignore[no-any-return]

    def stream(
        self,
        types: Any = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        since: int | None = None,
        snapshot: bool = False,
        **options: Any,
    ) -> SyncEventStream:
        """A blocking :class:`SyncEventStream` (connects on first use)."""

        async def make() -> EventStream:
            return self.client.stream(types, agent_id, task_id, since, snapshot, **options)

        return SyncEventStream(self._r, self._r.run(make()))


__all__ = ["SyncEventStream", "SyncHiveClient"]
