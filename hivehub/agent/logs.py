"""The SDK's default logging: its INFO lines on stderr unless the program configured logging."""

from __future__ import annotations

import logging
import os

#: the format of the handler :func:`default_logging` attaches (the one ``hive agent`` uses)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _level(value: str | int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        named = logging.getLevelNamesMapping().get(value.strip().upper())
        if named is not None:
            return named
    raise ValueError(f"log_level must be a logging level name or number (got {value!r})")


def default_logging(level: str | int | None = None) -> logging.Handler | None:
    """Show the SDK's INFO lines (connected, registered, task started/finished) on
    stderr when the program has not configured logging itself.

    Only when neither the ``hivehub`` logger nor the root logger has a handler (a
    program that calls ``logging.basicConfig`` or adds handlers is left alone), a
    stderr handler is attached to ``hivehub`` at ``level``, else ``HIVE_LOG_LEVEL``,
    else INFO. Called when an agent runs; ``log_level="WARNING"`` (or
    ``HIVE_LOG_LEVEL=WARNING``) keeps only problems, ``"OFF"`` nothing.

    Returns the handler it attached, or None."""
    hub = logging.getLogger("hivehub")
    if hub.handlers or logging.getLogger().handlers:
        return None
    chosen = level if level is not None else os.environ.get("HIVE_LOG_LEVEL") or "INFO"
    if isinstance(chosen, str) and chosen.strip().upper() in ("OFF", "NONE"):
        handler: logging.Handler = logging.NullHandler()
        hub.addHandler(handler)
        hub.propagate = False  # not even logging's last-resort WARNING output
        return handler
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    hub.addHandler(handler)
    hub.setLevel(_level(chosen))
    return handler
