"""Event stores: where the log lives. ``open_store(url)`` picks the backend."""

from .base import EventStore, StoredEvent, open_store

__all__ = ["EventStore", "StoredEvent", "open_store"]
