"""The SQLite store's schema: the first version's tables and the migrations after it,
applied in order at open (``meta.schema_version``; ``store/sqlite.py``)."""

from __future__ import annotations

from . import history_sql as H
from .base import JSON_NUL, JSON_NUL_KEY, TASK_ID_PATHS

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS events (
        sequence INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        body BLOB NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]


def _task_id_expr() -> str:
    cases = " ".join(
        f"WHEN '{typ}' THEN json_extract(replace(CAST(body AS TEXT), '{JSON_NUL}', '{JSON_NUL_KEY}'), '$.{'.'.join(path)}')"
        for typ, path in TASK_ID_PATHS.items()
    )
    return f"CASE type {cases} END"


#: Versioned migrations after the base schema (version 1), each applied once, in
#: one transaction with the bump of ``meta.schema_version``.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        2,
        [
            # one task's events (GET /api/tasks/{id} of a task evicted from memory);
            # logs written before the column are backfilled from the bodies
            "ALTER TABLE events ADD COLUMN task_id TEXT",
            f"UPDATE events SET task_id = {_task_id_expr()}",
            "CREATE INDEX IF NOT EXISTS events_task_id ON events(task_id, sequence) WHERE task_id IS NOT NULL",
        ],
    ),
]
MIGRATIONS.append(
    (
        3,
        [
            # the history tables (core/summary.py, store/history_sql.py): written with
            # the events that change them; an older log is backfilled on open
            # (meta.history_sequence: the sequence they are at)
            """CREATE TABLE IF NOT EXISTS task_summary (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                description TEXT NOT NULL,
                status TEXT NOT NULL,
                priority INTEGER NOT NULL,
                owner TEXT NOT NULL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                agent_id TEXT,
                started_at REAL,
                finished_at REAL,
                retried_at REAL,
                attempts INTEGER NOT NULL DEFAULT 0,
                failures INTEGER NOT NULL DEFAULT 0,
                error_code TEXT,
                error_message TEXT,
                latency_ms REAL,
                tokens INTEGER NOT NULL DEFAULT 0,
                cost_usd REAL NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE IF NOT EXISTS agent_points (
                agent_id TEXT NOT NULL, sequence INTEGER NOT NULL, at REAL NOT NULL, capability TEXT,
                proficiency REAL, success_rate REAL, latency_ms REAL
            )""",
            *H.index_statements(),
            # text search: substrings of 3 characters or more through the trigram
            # index (an external-content table: the text lives once, in task_summary)
            """CREATE VIRTUAL TABLE IF NOT EXISTS task_fts USING fts5(
                id, type, description, error_code, error_message,
                content='task_summary', content_rowid='seq', tokenize='trigram')""",
            """CREATE TRIGGER IF NOT EXISTS task_summary_ai AFTER INSERT ON task_summary BEGIN
                INSERT INTO task_fts(rowid, id, type, description, error_code, error_message)
                VALUES (new.seq, new.id, new.type, new.description, new.error_code, new.error_message);
            END""",
            """CREATE TRIGGER IF NOT EXISTS task_summary_ad AFTER DELETE ON task_summary BEGIN
                INSERT INTO task_fts(task_fts, rowid, id, type, description, error_code, error_message)
                VALUES ('delete', old.seq, old.id, old.type, old.description, old.error_code, old.error_message);
            END""",
            """CREATE TRIGGER IF NOT EXISTS task_summary_au AFTER UPDATE OF error_code, error_message
            ON task_summary BEGIN
                INSERT INTO task_fts(task_fts, rowid, id, type, description, error_code, error_message)
                VALUES ('delete', old.seq, old.id, old.type, old.description, old.error_code, old.error_message);
                INSERT INTO task_fts(rowid, id, type, description, error_code, error_message)
                VALUES (new.seq, new.id, new.type, new.description, new.error_code, new.error_message);
            END""",
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('history_sequence', '0')",
        ],
    )
)
MIGRATIONS.append(
    (
        4,
        [
            # the text index is written by write_history, not by triggers: an FTS5
            # insert from a trigger flushes the index's pending terms at each
            # statement (one tiny segment per row, then merging them: ~60 us a row
            # measured, against ~8 us a row for one INSERT of a whole batch)
            "DROP TRIGGER IF EXISTS task_summary_ai",
            "DROP TRIGGER IF EXISTS task_summary_ad",
            "DROP TRIGGER IF EXISTS task_summary_au",
        ],
    )
)
MIGRATIONS.append(
    (
        5,
        [
            # snapshots of the folded state (store/snapshot.py), the newest KEEP_SNAPSHOTS
            """CREATE TABLE IF NOT EXISTS snapshots (
                sequence INTEGER PRIMARY KEY,
                format INTEGER NOT NULL,
                schema TEXT NOT NULL,
                config TEXT NOT NULL,
                head TEXT NOT NULL,
                body BLOB NOT NULL
            )""",
        ],
    )
)
MIGRATIONS.append(
    (
        6,
        [
            # a snapshot's body in pieces, each written in a short transaction of its
            # own; snapshot_blobs names a row's pieces once they all are, in the
            # transaction that writes the row (sqlite_snapshots.py)
            """CREATE TABLE IF NOT EXISTS snapshot_chunks (
                blob INTEGER NOT NULL,
                n INTEGER NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (blob, n)
            )""",
            """CREATE TABLE IF NOT EXISTS snapshot_blobs (
                sequence INTEGER PRIMARY KEY,
                blob INTEGER NOT NULL
            )""",
        ],
    )
)
SCHEMA_VERSION = str(MIGRATIONS[-1][0])
