"""``HiveClient``: the async REST client of the hub (aiohttp).

Every method returns the hub's JSON as plain Python objects (dicts and lists,
field names as in ``/api/openapi.json``). Failures raise the hub's own error
classes (``hivehub.core.errors``) with ``.code``, ``.message``, ``.details`` and
``.status``; a hub that cannot be reached raises :class:`HubUnreachable`.

::

    async with HiveClient("http://127.0.0.1:3001") as hive:
        task = await hive.submit_task(type="summarize", input={"text": "..."},
                                      required_capabilities={"nlp": 0.7})
        done = await hive.wait_for_task(task["id"], timeout=60)
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from .bodies import capabilities_arg, task_spec
from .errors import HubUnreachable, from_error_body, unreachable
from .stream import EventStream
from .urls import EVENTS_WS, http_url, ws_url

DEFAULT_URL = "http://127.0.0.1:3001"
#: task statuses after which nothing more happens unless someone retries the task
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def _params(**kw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in kw.items():
        if v is None or v == "":
            continue
        if isinstance(v, (list, tuple, set, frozenset)):
            v = ",".join(str(x) for x in v)
        out[k] = str(getattr(v, "value", v))
    return out


def _path(collection: str, name: str) -> str:
    return f"/api/{collection}/{quote(name, safe='')}"


def _params_body(**kw: Any) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if v is not None}


def _unwrap(reply: dict[str, Any], key: str) -> dict[str, Any]:
    """``{"task": {...}}`` -> the task (a hub answering the bare object works too)."""
    inner = reply.get(key)
    return inner if isinstance(inner, dict) else reply


class HiveClient:
    """Async REST client. Use as ``async with HiveClient(url) as hive`` or call :meth:`close`.

    Args:
        url: the hub (``http://host:port``; ``ws://`` and a trailing ``/ws`` are accepted).
        token: sent as ``Authorization: Bearer <token>`` (and ``?token=`` on /ws).
        timeout: seconds for each request (connect + answer); ``None`` for no limit.
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float | None = 30) -> None:
        self.url = http_url(url)
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"HiveClient({self.url!r})"

    @property
    def ws_url(self) -> str:
        """The /ws event stream address."""
        return ws_url(self.url + EVENTS_WS, EVENTS_WS)  # after the base's own path prefix, if any

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # ----------------------------------------------------------- lifecycle

    async def __aenter__(self) -> HiveClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every stream opened from this client, then the HTTP session."""
        for s in list(self._streams):
            await s.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self.auth_headers()
            )
        return self._session

    # ----------------------------------------------------------- transport

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
    ) -> Any:
        """One REST call; returns the decoded JSON (``None`` for an empty body).

        A status >= 400 raises the hub's error unless it is listed in ``ok``."""
        url = self.url + path
        data = _enc.encode(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with self._http().request(method, url, data=data, params=params, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.InvalidURL as exc:
            raise ValueError(f"invalid hub URL {url!r}") from exc
        except aiohttp.ClientError as exc:
            raise unreachable(
                f"cannot reach the hub at {self.url}: {exc or type(exc).__name__}", url=self.url
            ) from exc
        except TimeoutError as exc:
            raise unreachable(
                f"no answer from the hub at {self.url} within {self.timeout}s", url=self.url
            ) from exc
        try:
            decoded = _dec.decode(raw) if raw.strip() else None
        except msgspec.DecodeError:
            decoded = None
            if status < 400:
                raise from_error_body(
                    None, status, f"HTTP {status}: the hub answered non-JSON: {raw[:200]!r}"
                ) from None
        if status >= 400 and status not in set(ok):
            raise from_error_body(decoded, status, f"HTTP {status}: {raw[:200].decode(errors='replace')}")
        return decoded

    async def request_object(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
    ) -> dict[str, Any]:
        """:meth:`request` for a route that answers a JSON object (every route but
        the ones answering a list or no body).

        Raises:
            HiveError: the hub's error, or the answer is not a JSON object."""
        decoded = await self.request(method, path, body, params, ok)
        if not isinstance(decoded, dict):
            raise from_error_body(
                None, None, f"{method} {path}: the hub answered {type(decoded).__name__}, not a JSON object"
            )
        return decoded

    async def _pages(
        self, path: str, key: str, params: dict[str, str], limit: int | None, page_size: int
    ) -> AsyncIterator[Any]:
        cursor: str | None = None
        n = 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - n))
            page = await self.request("GET", path, params={**params, **_params(limit=size, cursor=cursor)})
            for item in page[key]:
                yield item
                n += 1
                if limit is not None and n >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # ----------------------------------------------------------- hub

    async def health(self) -> dict[str, Any]:
        """``/health``: the module report (returned, not raised, when it is 503 unhealthy)."""
        return await self.request_object("GET", "/health", ok=(503,))

    async def status(self) -> dict[str, Any]:
        """``/api/hive/status``: metrics, ``sequence``, ``published_sequence``, modules."""
        return await self.request_object("GET", "/api/hive/status")

    async def api_info(self) -> dict[str, Any]:
        return await self.request_object("GET", "/api")

    async def openapi(self) -> dict[str, Any]:
        return await self.request_object("GET", "/api/openapi.json")

    async def alerts(self) -> list[dict[str, Any]]:
        """Active alerts."""
        body = await self.request("GET", "/api/alerts")
        return list(body.get("alerts", [])) if isinstance(body, dict) else list(body or [])

    async def modules(self) -> dict[str, Any]:
        """Module states and the signals behind them."""
        return await self.request_object("GET", "/api/modules")

    # ----------------------------------------------------------- agents

    async def list_agents(
        self,
        status: str | None = None,
        type: str | None = None,
        capability: str | None = None,
        limit: int | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching agent, walking ``next_cursor`` pages; at most ``limit`` of them."""
        params = _params(status=status, type=type, capability=capability)
        async for a in self._pages("/api/agents", "agents", params, limit, page_size):
            yield a

    async def agents(self, **filters: Any) -> list[dict[str, Any]]:
        """:meth:`list_agents` as a list."""
        return [a async for a in self.list_agents(**filters)]

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return await self.request_object("GET", f"/api/agents/{quote(agent_id, safe='')}")

    async def register_agent(
        self,
        name: str,
        *,
        type: str = "worker",
        capabilities: Any = None,
        max_concurrent_tasks: int = 1,
        id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register an agent; ``capabilities`` as ``{"nlp": 0.8}`` or the wire list."""
        body = {
            "name": name,
            "type": type,
            "capabilities": capabilities_arg(capabilities, "proficiency") or [],
            "max_concurrent_tasks": max_concurrent_tasks,
            "id": id,
            "metadata": metadata,
        }
        return await self.request_object(
            "POST", "/api/agents", {k: v for k, v in body.items() if v is not None}
        )

    async def update_agent(
        self,
        agent_id: str,
        *,
        name: str | None = None,
        capabilities: Any = None,
        max_concurrent_tasks: int | None = None,
    ) -> dict[str, Any]:
        """Change an agent's name, capabilities or concurrency (only the given fields)."""
        body = {
            "name": name,
            "capabilities": capabilities_arg(capabilities, "proficiency"),
            "max_concurrent_tasks": max_concurrent_tasks,
        }
        return await self.request_object(
            "PATCH",
            f"/api/agents/{quote(agent_id, safe='')}",
            {k: v for k, v in body.items() if v is not None},
        )

    async def reset_learning(self, agent_id: str, capabilities: list[str] | None = None) -> dict[str, Any]:
        """Operator: put learned proficiencies back to the declared ones (all, or the
        named capabilities); logged as ``agent_learning_reset``. Returns the agent."""
        body = {} if capabilities is None else {"capabilities": list(capabilities)}
        return await self.request_object("POST", f"/api/agents/{agent_id}/reset-learning", body)

    async def remove_agent(self, agent_id: str) -> dict[str, Any]:
        """Remove an agent; returns the ``agent_removed`` data (with ``cleanup_summary``)."""
        return await self.request_object("DELETE", f"/api/agents/{quote(agent_id, safe='')}")

    # ----------------------------------------------------------- tasks

    async def submit_task(self, spec: Mapping[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Submit one task: ``submit_task(type="x", priority="high", input={...},
        required_capabilities={"x": 0.5}, timeout_seconds=60, max_retries=3, depends_on=[...])``."""
        return await self.request_object("POST", "/api/tasks", task_spec(spec, **fields))

    async def submit_tasks(self, specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Submit up to 1000 tasks at once; the hub validates all before creating any."""
        body = await self.request("POST", "/api/tasks/batch", {"tasks": [task_spec(s) for s in specs]})
        return list(body["tasks"])

    async def list_tasks(
        self,
        status: str | None = None,
        type: str | None = None,
        agent_id: str | None = None,
        priority: int | str | None = None,
        limit: int | None = None,
        order: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching task, newest first (``order="asc"`` for oldest first)."""
        params = _params(status=status, type=type, agent_id=agent_id, priority=priority, order=order)
        async for t in self._pages("/api/tasks", "tasks", params, limit, page_size):
            yield t

    async def tasks(self, **filters: Any) -> list[dict[str, Any]]:
        """:meth:`list_tasks` as a list."""
        return [t async for t in self.list_tasks(**filters)]

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self.request_object("GET", f"/api/tasks/{quote(task_id, safe='')}")

    async def task_attempts(self, task_id: str) -> dict[str, Any]:
        """``{"task_id", "attempts": [...]}``: each attempt's agent, times, outcome, error and usage."""
        return await self.request_object("GET", f"/api/tasks/{quote(task_id, safe='')}/attempts")

    async def cancel_task(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        body = {"reason": reason} if reason else {}
        return await self.request_object("POST", f"/api/tasks/{quote(task_id, safe='')}/cancel", body)

    async def retry_task(self, task_id: str) -> dict[str, Any]:
        return await self.request_object("POST", f"/api/tasks/{quote(task_id, safe='')}/retry", {})

    # ----------------------------------------------------------- people in the loop

    async def approve_task(self, task_id: str, comment: str | None = None) -> dict[str, Any]:
        """Operator: let a task waiting in ``awaiting_approval`` run (``task_approved``,
        ``approved_by`` = the caller's identity). Returns the task.

        Raises:
            InvalidTransition: the task is not awaiting approval (409)."""
        body = {"comment": comment} if comment else {}
        return await self._task_object("approve", task_id, body)

    async def reject_task(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        """Operator: refuse a task waiting for approval; it is cancelled
        (``task_rejected`` then ``task_cancelled``). Returns the task."""
        body = {"reason": reason} if reason else {}
        return await self._task_object("reject", task_id, body)

    async def answer_task(self, task_id: str, answer: str, request_id: str | None = None) -> dict[str, Any]:
        """Operator: answer the question of a task in ``input_required``; the task
        runs again. ``request_id`` guards against answering a newer question than
        the one read. Returns the task.

        Raises:
            InvalidInput: the question has ``choices`` and ``answer`` is none of them.
            InvalidTransition: the task is not waiting for input (409)."""
        body: dict[str, Any] = {"answer": answer}
        if request_id:
            body["request_id"] = request_id
        return await self._task_object("input", task_id, body)

    async def inbox(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The tasks waiting for a person: ``awaiting_approval`` ones, then
        ``input_required`` ones (each newest first)."""
        out: list[dict[str, Any]] = []
        for status in ("awaiting_approval", "input_required"):
            out += [t async for t in self.list_tasks(status=status, limit=limit)]
        return out

    async def _task_object(self, action: str, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.request_object("POST", f"/api/tasks/{quote(task_id, safe='')}/{action}", body)
        return _unwrap(reply, "task")

    # ----------------------------------------------------------- quotas and budgets

    async def set_quota(
        self,
        name: str,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_concurrent: int | None = None,
    ) -> dict[str, Any]:
        """Operator: create or replace the quota pool ``name`` (limits left ``None``
        are unlimited; at least one must be given). Returns the pool's view."""
        body = _params_body(
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            max_concurrent=max_concurrent,
        )
        return _unwrap(await self.request_object("PUT", _path("quotas", name), body), "quota")

    async def list_quotas(self) -> list[dict[str, Any]]:
        """Every quota pool, with ``in_flight``, ``paused_until`` and the ``agents`` drawing on it."""
        return list((await self.request_object("GET", "/api/quotas")).get("quotas", []))

    async def get_quota(self, name: str) -> dict[str, Any]:
        """One pool. Raises ``QuotaNotFound`` (404 ``quota_not_found``)."""
        return _unwrap(await self.request_object("GET", _path("quotas", name)), "quota")

    async def delete_quota(self, name: str) -> dict[str, Any]:
        """Operator: delete a pool; returns ``{"deleted": name}``.
        Raises a 409 ``quota_in_use`` while a registered agent names it."""
        return await self.request_object("DELETE", _path("quotas", name))

    async def set_budget(
        self, owner: str, *, tokens_per_day: int | None = None, cost_usd_per_day: float | None = None
    ) -> dict[str, Any]:
        """Operator: set the daily budget of ``owner`` (a token's name, or
        ``anonymous``). Returns the budget's view (spent and reserved today)."""
        body = _params_body(tokens_per_day=tokens_per_day, cost_usd_per_day=cost_usd_per_day)
        return _unwrap(await self.request_object("PUT", _path("budgets", owner), body), "budget")

    async def list_budgets(self) -> list[dict[str, Any]]:
        """Every owner's budget, with today's spending and whether it is ``blocked``."""
        return list((await self.request_object("GET", "/api/budgets")).get("budgets", []))

    async def get_budget(self, owner: str) -> dict[str, Any]:
        """One budget. Raises ``BudgetNotFound`` (404 ``budget_not_found``)."""
        return _unwrap(await self.request_object("GET", _path("budgets", owner)), "budget")

    async def delete_budget(self, owner: str) -> dict[str, Any]:
        """Operator: remove an owner's budget; returns ``{"deleted": owner}``."""
        return await self.request_object("DELETE", _path("budgets", owner))

    # ----------------------------------------------------------- events

    async def events(
        self, since: int = 0, types: Iterable[str] | str | None = None, limit: int = 1000
    ) -> dict[str, Any]:
        """One page of the log over HTTP: ``{"events": [...], "next_since": N}``."""
        params = _params(since=since, types=types, limit=limit)
        return await self.request_object("GET", "/api/events", params=params)

    async def iter_events(
        self, since: int = 0, types: Iterable[str] | str | None = None, page: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every logged event after ``since`` up to now, page by page."""
        while True:
            body = await self.events(since, types, page)
            for e in body["events"]:
                yield e
            if body["next_since"] == since:
                return
            since = body["next_since"]

    def stream(
        self,
        types: Iterable[str] | str | None = None,
        agent_id: str | None = None,
        task_id: str | None = None,
        since: int | None = None,
        snapshot: bool = False,
        **options: Any,
    ) -> EventStream:
        """The live /ws event stream (see :class:`hivehub.client.EventStream` for ``options``)."""
        s = EventStream(
            self, types=types, agent_id=agent_id, task_id=task_id, since=since, snapshot=snapshot, **options
        )
        self._streams.add(s)
        return s

    async def wait_for_task(
        self,
        task_id: str,
        timeout: float | None = None,
        *,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
        since: int | None = None,
    ) -> dict[str, Any]:
        """Follow the task's events on /ws until it is completed, failed (for good) or
        cancelled, and return it. ``on_event`` sees each event about the task (for
        progress); ``since`` replays from that sequence (e.g. taken before submitting).
        Raises ``TimeoutError`` after ``timeout`` seconds."""

        async def follow() -> dict[str, Any]:
            start = since
            if start is None:
                start = int((await self.status()).get("published_sequence", 0))
            task = await self.get_task(task_id)
            if task["status"] in TERMINAL_STATUSES:
                return task
            # the stream replays from ``start`` (taken before the look-up), so nothing
            # that happened after the look-up can slip past
            async with self.stream(task_id=task_id, since=start) as events:
                async for ev in events:
                    if ev.get("type") == "error":
                        continue
                    if on_event is not None:
                        r = on_event(ev)
                        if inspect.isawaitable(r):
                            await r
                    typ, data = ev.get("type"), ev.get("data") or {}
                    final = typ in ("task_completed", "task_cancelled") or (
                        typ == "task_failed" and not data.get("retry_scheduled")
                    )
                    if final:
                        task = await self.get_task(task_id)
                        if task["status"] in TERMINAL_STATUSES:
                            return task
            raise unreachable(f"the event stream ended before task {task_id} finished", task_id=task_id)

        if timeout is None:
            return await follow()
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel in 3.11
            return await follow()


__all__ = ["DEFAULT_URL", "HiveClient", "HubUnreachable", "TERMINAL_STATUSES"]
