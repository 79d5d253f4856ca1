"""How an agent runs, whatever its transport: one option object shared by the push
:class:`~hivehub.agent.Agent`, the :class:`~hivehub.agent.PullAgent` and ``hive agent``.

::

    opts = AgentOptions(type="specialist", max_concurrent_tasks=4, token=TOKEN)
    push = Agent("Worker-1", {"nlp": 0.8}, url="ws://hub:3001", options=opts)
    pull = PullAgent("Worker-2", {"nlp": 0.8}, url="http://hub:3001", options=opts)

Every field may also be given to the constructors as a keyword
(``Agent(..., token=TOKEN)``); a keyword wins over the same field of ``options``.
What only one transport has (the push agent's ``register_timeout``, the pull
agent's ``claim_wait``...) stays a keyword of that constructor.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec

from hivehub.core.model import MAX_PREFETCH, AgentType, Capability

__all__ = ["AgentOptions", "normalize_capabilities"]


#: the SDK's prefetch (``AgentOptions.prefetch``). The hub queues at most about 50 ms of
#: work (``core.model.PREFETCH_WINDOW_MS``), so this bounds only sub-3 ms tasks: deep
#: enough that the hub handles a single-slot agent's reports in batches (measured on
#: the defaults bench, 4 one-slot agents: hub CPU 0.30 ms per task at 16 against
#: 0.39-0.51 ms at 4, and 1.4-1.6x the throughput in the same conditions)
DEFAULT_PREFETCH = 16


@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """The transport-independent settings of an agent.

    Args:
        type: ``worker`` | ``coordinator`` | ``specialist`` | ``learner``
        max_concurrent_tasks: tasks executed at once (also announced to the hub)
        agent_id: resume this agent id (otherwise the hub assigns one at the first
            registration and the agent keeps it for its reconnects)
        token: access token (sent as ``Authorization: Bearer``, and as ``?token=`` on
            the WebSocket)
        metadata: AgentSpec ``metadata``
        heartbeat_interval: seconds between heartbeats (default: the hub's value)
        reconnect_base, reconnect_cap: exponential backoff with full jitter between
            connection attempts and report resends:
            ``uniform(0, min(cap, base * 2**failures))`` (:func:`hivehub.core.policies.backoff`)
        executor: the thread pool of plain ``def`` handlers (default: the agent's own)
        progress_interval: at most one progress report per task per this many seconds;
            the first goes out at once, the newest value wins, none follows the outcome
        max_result_bytes: a larger result (as JSON) fails the task with
            ``RESULT_TOO_LARGE`` instead of being sent; None: no check
        state_dir: keep the id between runs in ``<state_dir>/<name>.id`` (locked while
            running), so a restarted process is the same agent (``identity.py``)
        id_file: the same with an explicit file path
        llm: an ``LLMClient`` for ``ctx.llm`` / ``llm_handler`` (see :mod:`hivehub.agent.llm`)
        quota: the quota pool (``PUT /api/quotas/<name>``) its model calls draw from
        prefetch: the most tasks the hub may assign beyond ``max_concurrent_tasks``;
            they wait in the agent until a slot frees, so a slot never waits a round
            trip for its next task. The hub uses fewer for slow tasks (it sizes the
            depth from the measured task time) and recalls an unstarted one when
            another agent has a slot free. 0: none. WebSocket agents only (a pull
            agent claims one task per free slot).

    Raises:
        ValueError: ``max_concurrent_tasks`` below 1, ``prefetch`` outside 0..64, or a
            backoff bound not > 0.
    """

    type: str | AgentType = "worker"
    max_concurrent_tasks: int = 1
    agent_id: str | None = None
    token: str | None = None
    metadata: Mapping[str, Any] | None = None
    heartbeat_interval: float | None = None
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    executor: ThreadPoolExecutor | None = None
    progress_interval: float = 0.2
    max_result_bytes: int | None = 1_000_000
    state_dir: str | os.PathLike[str] | None = None
    id_file: str | os.PathLike[str] | None = None
    #: the model client of ``ctx.llm`` and ``llm_handler`` (:class:`hivehub.agent.llm.LLMClient`);
    #: give it ``price=LLMPrice(...)`` so a task's ``max_cost_usd`` can stop its stream
    llm: Any = None
    #: the quota pool its model calls draw from (AgentSpec ``quota``)
    quota: str | None = None
    #: tasks assigned ahead of a free slot (AgentSpec ``prefetch``; see above)
    prefetch: int = DEFAULT_PREFETCH

    def __post_init__(self) -> None:
        if self.max_concurrent_tasks < 1:
            raise ValueError("max_concurrent_tasks must be >= 1")
        if not 0 <= self.prefetch <= MAX_PREFETCH:
            raise ValueError(f"prefetch must be between 0 and {MAX_PREFETCH}")
        if self.reconnect_base <= 0 or self.reconnect_cap <= 0:
            raise ValueError("reconnect_base and reconnect_cap must be > 0")
        AgentType(self.type)  # ValueError for an unknown type, before anything starts

    def replace(self, **changes: Any) -> AgentOptions:
        """A copy with ``changes`` (field names; TypeError for any other name)."""
        return dataclasses.replace(self, **changes) if changes else self


def normalize_capabilities(
    capabilities: Mapping[str, float] | Iterable[Capability | Mapping[str, Any] | tuple[Any, ...]] | None,
) -> list[Capability]:
    """Accept ``{"name": proficiency}``, Capability structs, dicts or ``(name, prof[, rate])``."""
    if capabilities is None:
        return []
    items: list[Any]
    if isinstance(capabilities, Mapping):
        items = [{"name": k, "proficiency": v} for k, v in capabilities.items()]
    else:
        items = []
        for c in capabilities:
            if isinstance(c, Capability):
                items.append(msgspec.structs.asdict(c))
            elif isinstance(c, tuple):
                items.append(dict(zip(("name", "proficiency", "learning_rate"), c, strict=False)))
            else:
                items.append(dict(c))
    try:
        return msgspec.convert(items, list[Capability])
    except msgspec.ValidationError as e:
        raise ValueError(f"invalid capabilities: {e}") from None
