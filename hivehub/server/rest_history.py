"""REST routes of the history: every task the log holds, chart series, one agent over time.

These read the store's history tables (``core/summary.py``, ``store/history_sql.py``),
not the core's memory: they cover every task ever logged, survive restarts, and
are at the committed sequence (the tables are written in the transaction of the
events that change them). ``GET`` under ``/api``: the read role.

- ``GET /api/history/tasks``: a page of tasks, newest first, filtered and searched;
  the cursor is a keyset on the ``task_created`` sequence (stable while tasks arrive);
- ``GET /api/history/series``: counts, latency percentiles, tokens, cost and tasks by
  state per bucket over a window of 5 min to 24 h (at most 300 buckets);
- ``GET /api/history/agents/{id}``: an agent's proficiency per capability over time
  and its tasks per bucket (its recent tasks: ``/api/history/tasks?agent_id=``).

Bad values answer 422 ``invalid_input`` with the ``parameter`` in the details.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from ..core.errors import AgentNotFound, InvalidInput
from ..core.model import TaskStatus
from ..core.summary import TaskSummary, bucket_plan, fold_series
from ..store.base import TOTAL_CAP, TaskQuery
from .routes import q_int, raw_json, route, svc

_enc = msgspec.json.Encoder()

#: the longest text search and filter value accepted
MAX_TEXT = 200
#: the shortest text search: the trigram index has no shorter keys (a shorter one
#: would scan every task)
MIN_SEARCH = 3
MIN_WINDOW, MAX_WINDOW = 300, 86_400
#: performance reports in an agent's answer (the window's, thinned out beyond this)
MAX_POINTS = 300
_STATUSES = {s.value for s in TaskStatus}


class HistoryTask(msgspec.Struct):
    id: str
    type: str
    description: str
    status: str
    priority: int
    agent_id: str | None
    owner: str
    #: ISO-8601 (UTC)
    created_at: str
    updated_at: str
    finished_at: str | None
    attempts: int
    failures: int
    error_code: str | None
    #: additions to the contract: the error's message, the completed attempt's
    #: execution time, model usage, and the task's place in the log
    error_message: str | None = None
    latency_ms: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    created_sequence: int = 0


class HistoryPage(msgspec.Struct):
    tasks: list[HistoryTask]
    #: pass as ``cursor`` for the next page; ``null`` on the last one
    next_cursor: str | None
    #: tasks matching the filters (every page, not only this one); ``null`` when more
    #: than ``total_exceeds`` match (counting is capped; every task is counted exactly)
    total: int | None
    #: an addition: the cap ``total`` was over (10,000), else ``null``
    total_exceeds: int | None = None


class HistorySeries(msgspec.Struct):
    window: int
    step: int
    #: unix seconds: each bucket's start
    t: list[int]
    created: list[int]
    completed: list[int]
    failed: list[int]
    cancelled: list[int]
    retried: list[int]
    latency_p50_ms: list[float | None]
    latency_p95_ms: list[float | None]
    latency_p99_ms: list[float | None]
    tokens: list[int]
    cost_usd: list[float]
    #: tasks in each state at each bucket's end: pending, running, completed, failed, cancelled
    by_state: dict[str, list[int]]


class CapabilitySeries(msgspec.Struct):
    t: list[float]
    value: list[float]


class AgentTaskSeries(msgspec.Struct):
    t: list[int]
    completed: list[int]
    failed: list[int]
    latency_p50_ms: list[float | None]


class PerformanceSeries(msgspec.Struct):
    t: list[float]
    success_rate: list[float | None]
    latency_ms: list[float | None]


class AgentHistory(msgspec.Struct):
    agent_id: str
    proficiency: dict[str, CapabilitySeries]
    tasks: AgentTaskSeries
    #: an addition: the agent's performance reports in the window (success rate,
    #: mean latency), at most 300, evenly thinned out
    performance: PerformanceSeries


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def _task(r: TaskSummary) -> HistoryTask:
    return HistoryTask(
        id=r.id,
        type=r.type,
        description=r.description,
        status=r.status,
        priority=r.priority,
        agent_id=r.agent_id,
        owner=r.owner,
        created_at=_iso(r.created_at) or "",
        updated_at=_iso(r.updated_at) or "",
        finished_at=_iso(r.finished_at),
        attempts=r.attempts,
        failures=r.failures,
        error_code=r.error_code,
        error_message=r.error_message,
        latency_ms=r.latency_ms,
        tokens=r.tokens,
        cost_usd=r.cost_usd,
        created_sequence=r.created_sequence,
    )


# ----------------------------------------------------------------- parameters


def _text(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT:
        raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters", parameter=name)
    if "\x00" in raw:
        raise InvalidInput(f"{name} contains a NUL character", parameter=name)
    return raw


def _search(request: web.Request) -> str | None:
    text = _text(request, "q")
    if text is not None and len(text) < MIN_SEARCH:
        raise InvalidInput(f"q must be at least {MIN_SEARCH} characters", parameter="q", value=text)
    return text


def _statuses(request: web.Request) -> tuple[str, ...]:
    out: list[str] = []
    for raw in request.query.getall("status", []):
        for s in raw.split(","):
            s = s.strip()
            if not s:
                continue
            if s not in _STATUSES:
                raise InvalidInput(f"status must be one of {sorted(_STATUSES)}", parameter="status", value=s)
            if s not in out:
                out.append(s)
    return tuple(out)


def parse_time(raw: str, name: str) -> float:
    """Unix seconds, or ISO-8601 (a time without a zone is UTC)."""
    try:
        v = float(raw)
    except ValueError:
        if len(raw) > 6 and raw[-6] == " ":  # an unescaped "+02:00" arrives as " 02:00"
            raw = raw[:-6] + "+" + raw[-5:]
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(
                f"{name} must be ISO-8601 or unix seconds", parameter=name, value=raw
            ) from None
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be a finite number", parameter=name, value=raw)
    return v


def _time(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    return None if raw is None or raw == "" else parse_time(raw, name)


_CURSOR_PREFIX = "h1:"


def cursor_out(before: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{before}".encode()).decode().rstrip("=")


def cursor_in(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        before = int(text.removeprefix(_CURSOR_PREFIX))
        if before < 1:
            raise ValueError(text)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("malformed cursor (pass next_cursor as it was)", parameter="cursor") from None
    return before


def _window(request: web.Request) -> tuple[int, float | None]:
    window = q_int(request, "window", 3600, MIN_WINDOW, MAX_WINDOW)
    raw = request.query.get("step", "auto")
    if raw in ("", "auto"):
        return window, None
    try:
        step = int(raw)
    except ValueError:
        raise InvalidInput("step must be auto or whole seconds", parameter="step", value=raw) from None
    if not 1 <= step <= window:
        raise InvalidInput(f"step must be between 1 and the window ({window})", parameter="step", value=step)
    return window, float(step)


# ----------------------------------------------------------------- routes


@route(
    "GET",
    "/api/history/tasks",
    "Every task the log holds, newest first: filtered, searched, paged by a cursor",
    response=HistoryPage,
    query={
        "status": "task status; repeat it or separate with commas",
        "type": "task type",
        "agent_id": "the assigned (or last) agent",
        "owner": "whose token submitted it (anonymous without auth)",
        "q": "text: a substring (3 characters or more) of the id, type, description or error, ignoring case",
        "from": "created at or after: ISO-8601 or unix seconds",
        "to": "created before: ISO-8601 or unix seconds",
        "limit": "1..500 (default 50)",
        "cursor": "from next_cursor",
    },
    errors=(422,),
)
async def history_tasks(request: web.Request) -> web.Response:
    created_from, created_to = _time(request, "from"), _time(request, "to")
    if created_from is not None and created_to is not None and created_to < created_from:
        raise InvalidInput("to is before from", parameter="to")
    q = TaskQuery(
        statuses=_statuses(request),
        type=_text(request, "type"),
        agent_id=_text(request, "agent_id"),
        owner=_text(request, "owner"),
        text=_search(request),
        created_from=created_from,
        created_to=created_to,
        before=cursor_in(request.query.get("cursor")),
        limit=q_int(request, "limit", 50, 1, 500),
    )
    page = await svc(request).store.history_tasks(q)
    body = HistoryPage(
        [_task(r) for r in page.tasks],
        cursor_out(page.next_before) if page.next_before is not None else None,
        page.total,
        TOTAL_CAP if page.total is None else None,
    )
    return raw_json(_enc.encode(body))


async def _series(request: web.Request, agent_id: str | None) -> dict[str, Any]:
    window, step = _window(request)
    now = svc(request).clock().timestamp()
    start, n, size = bucket_plan(window, step, now)
    rows, before = await svc(request).store.series_rows(start, start + n * size, agent_id)
    out = fold_series(rows, start, n, size, before)
    out["window"] = window
    return out


@route(
    "GET",
    "/api/history/series",
    "Chart series from the log: counts, latency percentiles, tokens, cost and tasks by state per bucket",
    response=HistorySeries,
    query={
        "window": f"seconds, {MIN_WINDOW}..{MAX_WINDOW} (default 3600), ending now",
        "step": "bucket seconds or auto (default: at most 300 buckets)",
        "agent_id": "only this agent's tasks",
    },
    errors=(422,),
)
async def history_series(request: web.Request) -> web.Response:
    out = await _series(request, _text(request, "agent_id"))
    return raw_json(_enc.encode(out))


@route(
    "GET",
    "/api/history/agents/{agent_id}",
    "One agent over time: proficiency per capability (all), tasks per bucket and performance reports in the window",
    response=AgentHistory,
    query={
        "window": f"seconds of the tasks series, {MIN_WINDOW}..{MAX_WINDOW} (default 3600)",
        "step": "auto",
    },
    errors=(404, 422),
)
async def history_agent(request: web.Request) -> web.Response:
    agent_id = request.match_info["agent_id"]
    store = svc(request).store
    series = await _series(request, agent_id)
    points = await store.agent_points(agent_id, since=float(series["t"][0]))
    if not points and svc(request).reader().find_agent(agent_id) is None:
        raise AgentNotFound(f"no agent {agent_id} in the log", agent_id=agent_id)
    proficiency: dict[str, CapabilitySeries] = {}
    perf = PerformanceSeries([], [], [])
    for p in points:
        if p.capability is None:
            perf.t.append(p.at)
            perf.success_rate.append(p.success_rate)
            perf.latency_ms.append(p.latency_ms)
        elif p.proficiency is not None:
            c = proficiency.setdefault(p.capability, CapabilitySeries([], []))
            c.t.append(p.at)
            c.value.append(p.proficiency)
    # one report per finished task: at most MAX_POINTS of them, evenly spread
    every = max(1, math.ceil(len(perf.t) / MAX_POINTS))
    if every > 1:
        perf = PerformanceSeries(perf.t[::every], perf.success_rate[::every], perf.latency_ms[::every])
    body = AgentHistory(
        agent_id=agent_id,
        proficiency=proficiency,
        tasks=AgentTaskSeries(series["t"], series["completed"], series["failed"], series["latency_p50_ms"]),
        performance=perf,
    )
    return raw_json(_enc.encode(body))
