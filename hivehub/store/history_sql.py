"""The SQL of the history tables (``core/summary.py``), shared by SQLite and PostgreSQL.

Both stores keep the same two tables, ``task_summary`` (one row per task, keyed by
the ``seq`` of its ``task_created``) and ``agent_points``, and write them in the
transaction that appends the events changing them. This module builds their
statements with the placeholders of either dialect (``?`` or ``$n``); each store
adds its own text search (SQLite: FTS5 with the trigram tokenizer; PostgreSQL:
``ILIKE`` over a generated column, indexed with ``pg_trgm`` where it is installed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..core.summary import COLUMNS, FINAL, AgentPoint, SummaryChange, TaskSummary, apply_change, combine
from .base import TOTAL_CAP, NewEvent, StoredEvent, TaskQuery, unfiltered

#: the summary's columns as the tables name them (``created_sequence`` is the key ``seq``)
SQL_COLUMNS = tuple("seq" if c == "created_sequence" else c for c in COLUMNS)
SELECT_COLUMNS = ", ".join(SQL_COLUMNS)
POINT_COLUMNS = ("agent_id", "sequence", "at", "capability", "proficiency", "success_rate", "latency_ms")
SERIES_COLUMNS = "status, created_at, started_at, finished_at, retried_at, latency_ms, tokens, cost_usd"

#: (column, index name) of each filter; each index ends with ``seq`` so a page of one
#: filter is a range of its index read backwards
FILTER_INDEXES = (("status", "status"), ("type", "type"), ("agent_id", "agent"), ("owner", "owner"))


def index_statements(table: str = "task_summary") -> list[str]:
    out = [
        f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table}({col}, seq)" for col, name in FILTER_INDEXES
    ]
    out += [
        f"CREATE INDEX IF NOT EXISTS {table}_created ON {table}(created_at)",
        f"CREATE INDEX IF NOT EXISTS {table}_finished ON {table}(finished_at)",
        f"CREATE INDEX IF NOT EXISTS {table}_agent_finished ON {table}(agent_id, finished_at)",
        # the series' counts of tasks finished before its window: one range per final status
        f"CREATE INDEX IF NOT EXISTS {table}_status_finished ON {table}(status, finished_at)",
        f"CREATE INDEX IF NOT EXISTS {table}_agent_status_finished ON {table}(agent_id, status, finished_at)",
        "CREATE INDEX IF NOT EXISTS agent_points_agent ON agent_points(agent_id, sequence)",
    ]
    return out


class Placeholders:
    """``?`` for SQLite, ``$1, $2, ...`` for PostgreSQL."""

    def __init__(self, numbered: bool) -> None:
        self.numbered = numbered
        self.params: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.numbered else "?"


def row_values(row: TaskSummary, key: Callable[[str], str | None]) -> tuple[Any, ...]:
    values = [getattr(row, c) for c in COLUMNS]
    values[COLUMNS.index("id")] = key(row.id)
    return tuple(values)


#: the counters a change adds to (``add_failures``, ...), each also settable (a manual retry resets failures)
COUNTERS = ("failures", "tokens", "cost_usd")


def update_sql(change: SummaryChange, numbered: bool) -> str:
    """``UPDATE`` of one change: the set columns, then each counter as its set value
    (else itself) plus what is added; the parameters are :func:`update_params`."""
    p = Placeholders(numbered)
    sets = [f"{c} = {p(None)}" for c in change.set if c not in COUNTERS]
    casts = {"failures": "::int", "tokens": "::bigint", "cost_usd": "::float8"} if numbered else {}
    for c in COUNTERS:
        cast = casts.get(c, "")
        base = f"{p(None)}{cast}" if c in change.set else c
        added = f"{base} + {p(None)}{cast}"
        if c == "cost_usd":  # (rounded as core.summary.apply_change rounds)
            added = f"round(CAST({added} AS NUMERIC), 9)" if numbered else f"round({added}, 9)"
        sets.append(f"{c} = {added}")
    return f"UPDATE task_summary SET {', '.join(sets)} WHERE id = {p(None)}"


def update_params(change: SummaryChange, key: Callable[[str], str | None]) -> tuple[Any, ...]:
    values = [v for c, v in change.set.items() if c not in COUNTERS]
    adds = {"failures": change.add_failures, "tokens": change.add_tokens, "cost_usd": change.add_cost}
    for c in COUNTERS:
        if c in change.set:
            values.append(change.set[c])
        values.append(adds[c])
    return (*values, key(change.task_id))


class Plan(NamedTuple):
    """The history writes of a batch, each task's row written once: ``creates`` (rows
    with the batch's later changes of the same task folded in), ``updates`` (one
    combined change per task, grouped by the columns they set, so each group is one
    ``executemany``), ``points``. The groups commute: each touches other rows."""

    creates: list[TaskSummary]
    updates: dict[tuple[str, ...], list[SummaryChange]]
    points: list[AgentPoint]


def plan(events: Sequence[StoredEvent | NewEvent]) -> Plan:
    created: dict[str, TaskSummary] = {}
    changed: dict[str, SummaryChange] = {}
    points: list[AgentPoint] = []
    for e in events:
        if not isinstance(e, NewEvent):
            continue
        points += e.points
        ch = e.summary
        if ch is None:
            continue
        if ch.create is not None:
            # (a duplicate id: the new row replaces the old, and its changes so far)
            changed.pop(ch.task_id, None)
            created.pop(ch.task_id, None)
            apply_change(created, ch)
        elif ch.task_id in created:
            apply_change(created, ch)
        elif ch.task_id in changed:
            changed[ch.task_id] = combine(changed[ch.task_id], ch)
        else:
            changed[ch.task_id] = ch
    updates: dict[tuple[str, ...], list[SummaryChange]] = {}
    for ch in changed.values():
        cols = tuple(sorted(ch.set))
        updates.setdefault(cols, []).append(ch._replace(set={k: ch.set[k] for k in cols}))
    return Plan(list(created.values()), updates, points)


def point_values(p: AgentPoint) -> tuple[Any, ...]:
    return tuple(p)


def where(
    q: TaskQuery,
    p: Placeholders,
    status: str | None,
    text: Callable[[Placeholders, str], str] | None,
    with_cursor: bool = True,
    prefix: str = "",
    seq: str = "seq",
) -> str:
    """The ``WHERE`` of a page (``status``: one of several statuses, queried apart;
    ``prefix``: the summary table's alias; ``seq``: the column the cursor bounds)."""
    conds: list[str] = []
    if status is not None:
        conds.append(f"{prefix}status = {p(status)}")
    elif q.statuses:
        conds.append(f"{prefix}status IN ({', '.join(p(s) for s in q.statuses)})")
    for col, value in (("type", q.type), ("agent_id", q.agent_id), ("owner", q.owner)):
        if value is not None:
            conds.append(f"{prefix}{col} = {p(value)}")
    if q.created_from is not None:
        conds.append(f"{prefix}created_at >= {p(q.created_from)}")
    if q.created_to is not None:
        conds.append(f"{prefix}created_at < {p(q.created_to)}")
    if with_cursor and q.before is not None:
        conds.append(f"{seq} < {p(q.before)}")
    if q.text and text is not None:
        conds.append(text(p, q.text))
    return " AND ".join(conds) if conds else "1 = 1"


def _matching(
    q: TaskQuery,
    p: Placeholders,
    status: str | None,
    text: Callable[[Placeholders, str], str],
    fts_match: str | None,
    with_cursor: bool,
    ordered: bool = True,
) -> str:
    """``SELECT <seq> FROM ... WHERE ... ORDER BY <seq> DESC`` of the matching tasks.

    ``fts_match`` (SQLite, a search of 3 characters or more): the text index drives
    the query, newest first (FTS5 walks its rowids backwards and stops at the
    limit), each hit checked against the other filters; a ``seq IN (MATCH)``
    instead would collect every hit before the first row."""
    if fts_match is None:
        w = where(q, p, status, text, with_cursor)
        return f"SELECT seq FROM task_summary WHERE {w}" + (" ORDER BY seq DESC" if ordered else "")
    m = p(fts_match)
    w = where(q._replace(text=None), p, status, None, with_cursor, prefix="s.", seq="task_fts.rowid")
    return (
        "SELECT task_fts.rowid FROM task_fts CROSS JOIN task_summary s ON s.seq = task_fts.rowid"
        f" WHERE task_fts MATCH {m} AND {w}" + (" ORDER BY task_fts.rowid DESC" if ordered else "")
    )


def page_queries(
    q: TaskQuery, numbered: bool, text: Callable[[Placeholders, str], str], fts_match: str | None = None
) -> list[tuple[str, list[Any]]]:
    """One query per asked status (each a backward range of its ``(status, seq)``
    index), or one for no or one status; each answers ``limit + 1`` rows, newest
    first; the caller merges them (:func:`merge_pages`). The keys are found first,
    then only their rows are read (a time range sorts keys, not whole rows)."""
    statuses: list[str | None] = list(q.statuses) if len(q.statuses) > 1 else [None]
    out = []
    for st in statuses:
        p = Placeholders(numbered)
        inner = _matching(q, p, st, text, fts_match, True)
        lim = p(q.limit + 1)
        out.append(
            (
                f"SELECT {SELECT_COLUMNS} FROM task_summary WHERE seq IN ({inner} LIMIT {lim}) ORDER BY seq DESC",
                p.params,
            )
        )
    return out


def count_query(
    q: TaskQuery, numbered: bool, text: Callable[[Placeholders, str], str], fts_match: str | None = None
) -> tuple[str, list[Any]]:
    """``COUNT`` of the matching tasks, at most ``TOTAL_CAP + 1`` of them counted
    (every task when unfiltered)."""
    if unfiltered(q):
        return "SELECT COUNT(*) FROM task_summary", []
    p = Placeholders(numbered)
    # (unordered: any matching rows count, and an order could make the planner sort them all)
    inner = _matching(q, p, None, text, fts_match, False, ordered=False)
    return f"SELECT COUNT(*) FROM ({inner} LIMIT {p(TOTAL_CAP + 1)}) AS m", p.params


def merge_pages(pages: list[list[tuple[Any, ...]]], limit: int) -> tuple[list[TaskSummary], int | None]:
    """The newest ``limit`` rows of the pages and the cursor of the next page."""
    key = SQL_COLUMNS.index("seq")
    rows = sorted((r for page in pages for r in page), key=lambda r: r[key], reverse=True)[: limit + 1]
    tasks = [to_summary(r) for r in rows[:limit]]
    return tasks, (tasks[-1].created_sequence if len(rows) > limit and tasks else None)


def to_summary(r: Sequence[Any]) -> TaskSummary:
    values = dict(zip(COLUMNS, r, strict=True))
    return TaskSummary(**values)


def series_queries(
    start: float, end: float, agent_id: str | None, numbered: bool
) -> list[tuple[str, list[Any]]]:
    """The tasks alive in the window: unfinished ones created before its end, and
    those finished in or after it (two ranges of the ``finished_at`` index rather
    than one ``OR``); then the count of those finished before it for each final
    status (one range of ``(status, finished_at)`` each). SQLite is told the index of
    the first two: its planner would take ``created_at`` (every task is created
    before the end) and read every row."""
    out = []
    table = "task_summary"
    if not numbered:
        table += f" INDEXED BY task_summary_{'agent_finished' if agent_id is not None else 'finished'}"
    for finished in (False, True):
        p = Placeholders(numbered)
        # (placeholders in the order they appear: SQLite's ``?`` bind by position)
        c = f"finished_at >= {p(start)}" if finished else "finished_at IS NULL"
        c += f" AND created_at < {p(end)}"
        if agent_id is not None:
            c += f" AND agent_id = {p(agent_id)}"
        out.append((f"SELECT {SERIES_COLUMNS} FROM {table} WHERE {c}", p.params))
    p = Placeholders(numbered)
    counts = []
    for status in sorted(FINAL):
        head = f"SELECT {p(status)}, COUNT(*) FROM task_summary"
        c = f"status = {p(status)} AND finished_at < {p(start)}"
        if agent_id is not None:
            c += f" AND agent_id = {p(agent_id)}"
        counts.append(f"{head} WHERE {c}")
    out.append((" UNION ALL ".join(counts), p.params))
    return out
