"""What adapters read of the hive: a typed reader, and the view at the committed sequence.

The service handles a command at once (the core's state moves ahead of the
log) and commits its events a moment later; a commit can fail, and then that
state never existed. So every answer built from the state (REST replies,
``/ws`` snapshots, ``get_status``, a pull agent's claim) goes through
:meth:`CommittedView.read`: the answer is built synchronously from the state
at sequence S, and shown only once S is committed; if the commit covering S
fails, the service rebuilds the state from the log first, and the answer is
built again from that. Nothing is copied and nothing is added per event: a
read costs at most one commit's wait.

:class:`HiveReader` (``server/reader.py``, re-exported here) is the one place
adapters read the core through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..core.errors import StoreUnavailable
from ..core.model import Task
from .reader import HiveReader
from .service import HubService

__all__ = ["CommittedView", "HiveReader"]

T = TypeVar("T")


class CommittedView:
    """Reads at the committed sequence (see the module docstring)."""

    def __init__(self, service: HubService) -> None:
        self.service = service

    async def read(self, build: Callable[[HiveReader], T]) -> T:
        """``build(reader)`` runs synchronously on the state at some sequence S and
        must return what is shown (bytes, or values that no later event changes);
        its result is returned once S is committed. When the commit covering S
        fails it runs again, on the state rebuilt from the log. ``build`` may run
        more than once; exceptions it raises propagate."""
        svc = self.service
        while True:
            hive = svc.hive
            value = build(HiveReader(hive))
            seq = hive.sequence
            if seq <= svc.published_seq:
                return value
            try:
                await svc.wait_published(seq)
            except StoreUnavailable:
                if svc.hive is hive:
                    raise  # the state could not be rebuilt from the log: nothing to show
                continue  # the state was rebuilt from the log: build again from it
            return value

    async def task(self, task_id: str, encode: Callable[[Task | None], T]) -> T:
        """``encode(task)`` at the committed sequence: from memory, or when the core
        evicted it (``retain_finished``) folded from its own events in the store."""
        got = await self.read(
            lambda r: (encode(t) if (t := r.task(task_id)) is not None else None, r.is_evicted(task_id))
        )
        value, evicted = got
        if value is not None:
            return value
        if not evicted:
            return encode(None)
        return encode(await self.service.task(task_id))
