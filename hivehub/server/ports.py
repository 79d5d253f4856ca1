"""What a component needs of its neighbours, as small protocols.

A component is built with the collaborators it calls; when one of them is built
after it (the status needs the stream's subscriber count, the stream's snapshot
needs the status), it is given the narrow protocol below instead, which the hub
(``server/hub.py``) implements. Nothing here imports a component.
"""

from __future__ import annotations

from typing import Any, Protocol

from .reader import HiveReader


class StatusBoard(Protocol):
    """The hive status and the active alerts at a reader's sequence (the snapshot's
    ``status`` and ``alerts``, ``get_status``)."""

    def status(self, reader: HiveReader) -> dict[str, Any]: ...

    def alerts(self, reader: HiveReader | None = None) -> list[dict[str, Any]]: ...


class Waker(Protocol):
    """Wakes an agent's parked pull claim (the agent gateway)."""

    def wake(self, agent_id: str) -> None: ...
