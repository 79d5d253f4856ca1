"""The scheduler's indexes, kept by ``apply`` (``projection.py``) and read by decisions.

Every function here is called while an event is applied, so a replay of the
log builds the same indexes as the live hive, entry for entry:

- The ready queue holds one :class:`ReadyQueue` per owner and requirement
  signature, ordered by :func:`~hivehub.core.policies.queue_key` (priority with
  aging), ties by the sequence the entry was made in. Entries are dropped
  lazily, but the top of every queue is always current (:func:`clean_ready`
  runs whenever a task leaves the queue), so the scheduler only reads.
- The capability index maps a capability name to the agents that declare it, so
  candidate search reads the smallest posting list instead of scanning agents.
- The free-agent heaps: for each capability (and ``""`` for "any agent") a heap
  of the agents that could take work now (online, a free slot, not draining),
  keyed by their score for a task requiring just that capability
  (``policies.base_score``). Every change to an agent bumps its version and
  pushes fresh entries; stale ones are dropped when they surface here or when a
  heap is compacted.
- ``_online_prof`` keeps, per capability, the sorted proficiencies of online
  agents, so ``task_created.matching_agents`` is a binary search.

The timers (retries not due yet, task deadlines) are drained here by time
(:func:`drain_retries`, :func:`drain_deadlines`), and read without popping
(:func:`due`).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from typing import Any

from .model import HELD, ONLINE, Agent, AgentStatus, Task, TaskStatus
from .policies import queue_key
from .readyqueue import ReadyQueue
from .state import HiveState, ReadyKey, Signature

AS = AgentStatus
#: the statuses in which an agent takes work (a frozenset of members bound once: an
#: attribute of an Enum class costs ~150 ns on Python 3.11, and this runs per event)
_TAKES_WORK = frozenset({AS.IDLE, AS.ACTIVE})


def signature(t: Task) -> Signature:
    req = t.required_capabilities
    if len(req) == 1:  # (the common case, without sorting)
        r = req[0]
        return ((r.name, r.min_proficiency),)
    return tuple(sorted((r.name, r.min_proficiency) for r in req))


def ready_key(t: Task) -> ReadyKey:
    """The task's ready group: its owner (budgets block per owner) and its signature."""
    return (t.owner, signature(t))


# ---------------------------------------------------------------- ready queue


def next_ready_seq(s: HiveState) -> int:
    s._ready_seq += 1
    return s._ready_seq


def enqueue(s: HiveState, t: Task, seq: int | None = None) -> None:
    """Put a pending task whose dependencies are met in the ready queue, with the
    entry sequence ``seq`` (a retry got its own when it was scheduled) or a new one."""
    if seq is None:
        seq = next_ready_seq(s)
    key = queue_key(t.created_at.timestamp(), t.priority, s.config.aging_seconds)
    sig = ready_key(t)
    q = s._ready.get(sig)
    if q is None:
        q = s._ready[sig] = ReadyQueue()
    q.push((key, seq, t.id))
    replaced = s._queued.get(t.id)
    s._queued[t.id] = seq
    if replaced is not None:
        clean_ready(s, sig)  # the replaced entry may be the top
    s._dirty = True


def dequeue(s: HiveState, t: Task) -> None:
    """The task left ``pending``: its entry is stale (dropped now if it is a top)."""
    if s._queued.pop(t.id, None) is not None:
        clean_ready(s, (t.owner, signature(t)))  # (ready_key, inline)


def clean_ready(s: HiveState, sig: ReadyKey) -> None:
    """Drop the stale entries at the top of one ready queue (and the queue once empty)."""
    q = s._ready.get(sig)
    if q is not None and not q.clean(s._queued):
        del s._ready[sig]


# ---------------------------------------------------------------- agents


def index_agent(s: HiveState, a: Agent) -> None:
    for c in a.capabilities:
        s._cap_index.setdefault(c.name, set()).add(a.id)


def unindex_agent(s: HiveState, a: Agent) -> None:
    for c in a.capabilities:
        ids = s._cap_index.get(c.name)
        if ids is not None:
            ids.discard(a.id)
            if not ids:
                del s._cap_index[c.name]


def agent_changed(s: HiveState, agent_id: str, *, load_only: bool = False) -> None:
    """Re-index one agent (load, metrics, status, capabilities, removal):
    a new version, and fresh heap entries if it could take work.

    ``load_only``: only its load or metrics changed (a task event), so its online
    entries (status and capabilities) stand as the last full re-index left them."""
    v = s._ver.get(agent_id, 0) + 1
    s._ver[agent_id] = v
    a = s.agents.get(agent_id)
    if not load_only:
        _sync_online(s, agent_id, a)
    # ``_over``: it holds more tasks than slots (prefetched work waits there);
    # ``_open``: online, not draining, and a slot with nothing assigned to fill it
    # (``core/prefetch.py``)
    load = len(a.current_tasks) if a is not None else 0
    if a is not None and load > a.max_concurrent_tasks:
        s._over[agent_id] = None
    elif s._over:
        s._over.pop(agent_id, None)
    if a is not None and load < a.max_concurrent_tasks and a.status in _TAKES_WORK and not a.draining:
        s._open[agent_id] = None
    else:
        s._open.pop(agent_id, None)
    # (Agent.free_slots inline, its prefetch_depth read only for an agent that prefetches)
    if (
        a is None
        or a.status not in _TAKES_WORK
        or a.draining
        or a.max_concurrent_tasks + (a.prefetch_depth if a.prefetch > 0 else 0) <= load
    ):
        s._eligible.discard(agent_id)
        if a is not None:
            # its entries just went stale, and the best of them tend to be tops (an
            # agent that just took work was the best free one): drop those now
            # (_clean_free for "" and each capability, inline)
            free, ver = s._free, s._ver
            heap = free.get("")
            while heap and ver.get(heap[0][1]) != heap[0][2]:
                heapq.heappop(heap)
            for c in a.capabilities:
                heap = free.get(c.name)
                while heap and ver.get(heap[0][1]) != heap[0][2]:
                    heapq.heappop(heap)
        return
    s._eligible.add(agent_id)
    w = s.config.weights
    # policies.base_score for "" and for each capability, term by term in its order
    # (so the same floats), the shared terms computed once
    m = a.metrics
    rel = w.reliability * ((m.tasks_completed + 1) / (m.tasks_completed + m.tasks_failed + 2))
    avail = w.availability * (1.0 - len(a.current_tasks) / a.max_concurrent_tasks)
    wp = w.proficiency
    _push_free(s, "", (-(wp * 1.0 + rel + avail), agent_id, v))
    caps = a.capabilities
    if len(caps) == 1:
        c = caps[0]
        _push_free(s, c.name, (-(wp * c.proficiency + rel + avail), agent_id, v))
        return
    first: dict[str, float] = {}  # (a name declared twice scores by its first entry, as Agent.capability)
    for c in caps:
        prof = first.setdefault(c.name, c.proficiency)
        _push_free(s, c.name, (-(wp * prof + rel + avail), agent_id, v))


def _push_free(s: HiveState, key: str, entry: tuple[float, str, int]) -> None:
    heap = s._free.get(key)
    if heap is None:
        heap = s._free[key] = []
    heapq.heappush(heap, entry)
    ver = s._ver
    if len(heap) > 4 * len(s.agents) + 64:  # mostly stale: compact
        heap = [e for e in heap if ver.get(e[1]) == e[2]]
        heapq.heapify(heap)
        s._free[key] = heap
    while heap and ver.get(heap[0][1]) != heap[0][2]:  # (as _clean_free)
        heapq.heappop(heap)


def _clean_free(s: HiveState, key: str) -> None:
    """Drop the stale entries at the top of one free-agent heap."""
    heap = s._free.get(key)
    if heap is None:
        return
    ver = s._ver
    while heap and ver.get(heap[0][1]) != heap[0][2]:
        heapq.heappop(heap)


def _sync_online(s: HiveState, agent_id: str, a: Agent | None) -> None:
    online = a is not None and a.status in ONLINE
    if online:
        s._online.add(agent_id)
    else:
        s._online.discard(agent_id)
    want = {c.name: c.proficiency for c in a.capabilities} if a is not None and online else {}
    have = s._online_caps.get(agent_id, {})
    if want == have:
        return
    for name, prof in have.items():
        lst = s._online_prof[name]
        del lst[bisect.bisect_left(lst, prof)]
        if not lst:
            del s._online_prof[name]
    for name, prof in want.items():
        bisect.insort(s._online_prof.setdefault(name, []), prof)
    if want:
        s._online_caps[agent_id] = want
    else:
        s._online_caps.pop(agent_id, None)


# ---------------------------------------------------------------- timers


def drain_retries(s: HiveState, mono: float) -> None:
    """Retries due at ``mono`` join the ready queue, with the entry sequence they got
    when the failure was applied (so when this runs changes no order)."""
    while s._delayed and s._delayed[0][0] <= mono:
        _, task_id, attempt, seq = heapq.heappop(s._delayed)
        t = s.tasks.get(task_id)
        if (
            t is not None
            and t.status == TaskStatus.PENDING
            and t.attempt == attempt
            and task_id not in s._queued
        ):
            if s._deps_met(t):
                enqueue(s, t, seq)


def drain_deadlines(s: HiveState, mono: float) -> None:
    """Drop the task and input deadlines due at ``mono`` (a Tick has acted on each)."""
    while s._deadlines and s._deadlines[0][0] <= mono:
        heapq.heappop(s._deadlines)
    while s._input_deadlines and s._input_deadlines[0][0] <= mono:
        heapq.heappop(s._input_deadlines)


def live_deadlines(s: HiveState) -> list[tuple[float, str, int]]:
    """The task deadlines that can still time a task out, sorted (so a heap): an
    entry of a task that is gone, no longer held, or on another attempt is skipped
    by the Tick that finds it due (``tick.on_tick``) and only waits there to be
    drained. (Lazy deletion: ``apply`` does not look for the entries of a task that
    finishes, and a snapshot writes only these, ``store/snapshot.py``.)"""
    tasks = s.tasks
    out = []
    for entry in s._deadlines:
        t = tasks.get(entry[1])
        if t is not None and t.attempt == entry[2] and t.status in HELD:
            out.append(entry)
    out.sort()
    return out


# ---------------------------------------------------------------- heaps, read only


def in_order(heap: list[Any]) -> Iterator[Any]:
    """The entries of a heap smallest first, without popping (O(k log k) for the first k)."""
    if not heap:
        return
    frontier = [(heap[0], 0)]
    n = len(heap)
    while frontier:
        entry, i = heapq.heappop(frontier)
        yield entry
        for c in (2 * i + 1, 2 * i + 2):
            if c < n:
                heapq.heappush(frontier, (heap[c], c))


def due(heap: list[Any], mono: float) -> list[Any]:
    """The entries of a timer heap due at ``mono`` (first field <= ``mono``), in order, without popping."""
    out = []
    for entry in in_order(heap):
        if entry[0] > mono:
            break
        out.append(entry)
    return out
