"""An agent's id, kept between runs so a restarted agent is the same agent.

The hub assigns an id at the first registration; the SDK writes it to an id file
and sends it as ``id`` on every later registration, so a restarted process keeps
its tasks, its history and what the hub learned about it (``docs/agent-protocol.md``
§3.2). The file is ``<state_dir>/<name>.id`` (one file per agent name; the name is
made file-safe) or any path given as ``id_file``.

While an agent runs it holds an exclusive lock on its id file. A second process
with the same name and state directory cannot take that lock: it runs with a new
id of its own (not saved) instead of sharing the first one's identity, which the
hub would answer by closing the older connection (4002).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import IO

try:  # POSIX; elsewhere the file works without the lock
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["IdFile", "default_state_dir", "id_file_path"]

log = logging.getLogger("hivehub.agent")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_state_dir() -> Path:
    """``$HIVE_AGENT_STATE_DIR``, else ``$XDG_STATE_HOME/hivehub/agents``, else
    ``~/.local/state/hivehub/agents`` (used by ``hive agent``; the library's
    :class:`~hivehub.agent.Agent` saves nothing unless given ``state_dir``/``id_file``)."""
    explicit = os.environ.get("HIVE_AGENT_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "hivehub" / "agents"


def id_file_path(state_dir: str | os.PathLike[str], name: str) -> Path:
    """The id file of agent ``name`` in ``state_dir``. A name that is not file-safe
    gets a short hash of itself appended, so two such names never share a file."""
    safe = _UNSAFE.sub("_", name)
    if safe != name or safe in (".", ".."):
        safe = f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return Path(state_dir) / f"{safe}.id"


class IdFile:
    """One agent's id file: :meth:`acquire` (lock) and :meth:`read` at start,
    :meth:`write` after each registration, :meth:`release` at the end."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        """Open and lock the file. False when another process holds it (or it cannot
        be created): then nothing is read or written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held while the agent runs
        except OSError as exc:
            log.warning(
                "cannot open the agent id file %s: %s; the id will not survive a restart", self.path, exc
            )
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                log.warning(
                    "agent id file %s is in use by another process: running with a new id that will "
                    "not survive a restart (give each agent its own name or state directory)",
                    self.path,
                )
                return False
        self._fh = fh
        return True

    def read(self) -> str | None:
        if self._fh is None:
            return None
        self._fh.seek(0)
        text = self._fh.read().strip()
        # anything that is not one plausible id (a torn write, an edited file) is ignored
        return text if text and len(text) <= 100 and "\n" not in text else None

    def write(self, agent_id: str) -> None:
        """Rewrite in place: the lock is on this open file, so it is not replaced."""
        if self._fh is None or self.read() == agent_id:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(agent_id + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            log.warning("cannot write the agent id file %s: %s", self.path, exc)

    def clear(self) -> None:
        """Forget the id (the hub removed the agent: the next run registers anew)."""
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()  # closing drops the lock
            self._fh = None
