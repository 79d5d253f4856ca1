"""Event stores: where the log lives. ``open_store(url)`` picks the backend.

The factory lives here, above the backends: ``base.py`` defines the contract and
knows no implementation, each backend imports ``base``, and only this module
imports the backends (lazily, so an optional driver is loaded only when used)."""

from .base import EventStore, StoredEvent

__all__ = ["EventStore", "StoredEvent", "open_store"]


def open_store(url: str, busy_timeout_ms: int = 5000) -> EventStore:
    """``memory:``, a SQLite path or ``sqlite:///path``, or ``postgresql://...``."""
    if url in ("memory", "memory:", ":memory:"):
        from .memory import MemoryEventStore

        return MemoryEventStore()
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresEventStore

        return PostgresEventStore(url)
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    from .sqlite import SQLiteEventStore

    return SQLiteEventStore(path, busy_timeout_ms=busy_timeout_ms)
