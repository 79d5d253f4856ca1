"""Scheduling: the ready queue, the capability index, and assignment.

Part of the :class:`~hivehub.core.hive.Hive` (a mixin; see ``_state.py``).

- The ready queue holds one heap per requirement signature, ordered by
  :func:`~hivehub.core.policies.queue_key` (priority with aging). Entries are
  dropped lazily: a task that left ``pending`` keeps its heap entry until it
  reaches the top.
- The capability index maps a capability name to the agents that declare it, so
  candidate search reads the smallest posting list instead of scanning agents.
- The free-agent heaps make one assignment cost O(K log n), not O(agents): for
  each capability (and ``""`` for "any agent") a heap of the agents that could
  take work now (online, a free slot, not draining), keyed by their score for a
  task requiring just that capability (``policies.base_score``). Every change to
  an agent bumps its version and pushes fresh entries; stale ones are dropped
  when they surface. A pick pops up to ``PICK_K`` agents that meet every
  requirement from the heap of the rarest required capability, scores them fully
  (mean proficiency over all requirements, the retry penalty) and takes the best.
  For a single requirement this is the exact best agent; for several it is the
  best among the top ``PICK_K`` by the first one.
- ``online_prof`` keeps, per capability, the sorted proficiencies of online
  agents, so ``task_created.matching_agents`` is a binary search.
- :meth:`SchedulingMixin._schedule` assigns the globally first ready task among
  the groups some agent could take, to the best-scoring eligible agent, until no
  group can make progress. It runs only when something marked the hive dirty.
"""

from __future__ import annotations

import bisect
import heapq
from datetime import datetime, timedelta
from typing import Any

from . import events as ev
from ._state import HiveState
from .model import ONLINE, Agent, AgentStatus, Task, TaskStatus
from .policies import base_score, queue_key, score_agent

TS = TaskStatus
AS = AgentStatus

#: agents meeting the requirements that one pick compares by full score
PICK_K = 8


class SchedulingMixin(HiveState):
    _cap_index: dict[str, set[str]]
    _ready: dict[tuple[tuple[str, float], ...], list[tuple[float, int, str]]]
    _ready_seq: int
    _queued: dict[str, int]  # task id -> ready entry seq (lazy deletion)
    _free: dict[str, list[tuple[float, str, int]]]  # capability ("" = any) -> (-score, agent, version)
    _ver: dict[str, int]
    _online_prof: dict[str, list[float]]  # capability -> sorted proficiencies of online agents
    _online_caps: dict[str, dict[str, float]]  # agent -> what it contributes to _online_prof
    _online: set[str]
    _eligible: set[str]  # agents that could take work now
    _changed_agents: set[str]  # touched by events since the index was last refreshed

    @staticmethod
    def _signature(t: Task) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((r.name, r.min_proficiency) for r in t.required_capabilities))

    def _deps_met(self, t: Task) -> bool:
        for d in t.depends_on:
            dt = self.tasks.get(d)
            status = dt.status if dt is not None else self.evicted.get(d, TS.COMPLETED)
            if status != TS.COMPLETED:
                return False
        return True

    def _enqueue(self, t: Task) -> None:
        self._ready_seq += 1
        key = queue_key(t.created_at.timestamp(), t.priority, self.config.aging_seconds)
        heapq.heappush(self._ready.setdefault(self._signature(t), []), (key, self._ready_seq, t.id))
        self._queued[t.id] = self._ready_seq
        self._dirty = True

    def _candidates(self, required: list[Any]) -> list[Agent]:
        """Agents meeting every requirement, found through the capability index
        (the smallest posting list of the required names), not a scan of all agents."""
        if not required:
            return list(self.agents.values())
        best: set[str] | None = None
        for r in required:
            ids = self._cap_index.get(r.name)
            if not ids:
                return []
            if best is None or len(ids) < len(best):
                best = ids
        assert best is not None
        out = []
        for aid in best:
            a = self.agents[aid]
            if a.meets(required):
                out.append(a)
        return out

    def _pick_agent(self, t: Task) -> tuple[Agent, float, dict[str, float], int] | None:
        self._refresh_index()
        if not self._eligible:
            return None  # every agent is busy, offline or draining
        req = t.required_capabilities
        key = min((r.name for r in req), key=lambda n: len(self._free.get(n, ()))) if req else ""
        heap = self._free.get(key)
        if not heap:
            return None
        popped: list[tuple[float, str, int]] = []
        found: list[Agent] = []
        while heap and len(found) < PICK_K:
            entry = heapq.heappop(heap)
            if self._ver.get(entry[1]) != entry[2]:
                continue  # stale: the agent changed since (a fresh entry exists if it is free)
            popped.append(entry)
            a = self.agents[entry[1]]
            if not req or a.meets(req):
                found.append(a)
        for entry in popped:
            heapq.heappush(heap, entry)
        best: tuple[float, str, Agent, dict[str, float]] | None = None
        for a in found:
            score, breakdown = score_agent(a, t, self.config.weights)
            # ties: the lower agent id, so the choice is deterministic given the log
            if best is None or score > best[0] or (score == best[0] and a.id < best[1]):
                best = (score, a.id, a, breakdown)
        if best is None:
            return None
        return best[2], best[0], best[3], len(found)

    def _refresh_index(self) -> None:
        """Re-index the agents events touched since the last pick (sorted, so the
        heaps are built in the same order on replay)."""
        if self._changed_agents:
            changed = sorted(self._changed_agents)
            self._changed_agents.clear()
            for agent_id in changed:
                self._agent_changed(agent_id)

    def _agent_changed(self, agent_id: str) -> None:
        """Re-index one agent (load, metrics, status, capabilities, removal):
        a new version, and fresh heap entries if it could take work."""
        v = self._ver.get(agent_id, 0) + 1
        self._ver[agent_id] = v
        a = self.agents.get(agent_id)
        self._sync_online(agent_id, a)
        if a is None or a.status not in (AS.IDLE, AS.ACTIVE) or a.free_slots <= 0 or a.draining:
            self._eligible.discard(agent_id)
            return
        self._eligible.add(agent_id)
        w = self.config.weights
        self._push_free("", (-base_score(a, None, w), a.id, v))
        for c in a.capabilities:
            self._push_free(c.name, (-base_score(a, c.name, w), a.id, v))

    def _push_free(self, key: str, entry: tuple[float, str, int]) -> None:
        heap = self._free.setdefault(key, [])
        heapq.heappush(heap, entry)
        if len(heap) > 4 * len(self.agents) + 64:  # mostly stale: compact
            live = [e for e in heap if self._ver.get(e[1]) == e[2]]
            heapq.heapify(live)
            self._free[key] = live

    def _sync_online(self, agent_id: str, a: Agent | None) -> None:
        online = a is not None and a.status in ONLINE
        if online:
            self._online.add(agent_id)
        else:
            self._online.discard(agent_id)
        want = {c.name: c.proficiency for c in a.capabilities} if a is not None and online else {}
        have = self._online_caps.get(agent_id, {})
        if want == have:
            return
        for name, prof in have.items():
            lst = self._online_prof[name]
            del lst[bisect.bisect_left(lst, prof)]
        for name, prof in want.items():
            bisect.insort(self._online_prof.setdefault(name, []), prof)
        if want:
            self._online_caps[agent_id] = want
        else:
            self._online_caps.pop(agent_id, None)

    def count_matching(self, required: list[Any]) -> int:
        """Online agents meeting every requirement: a binary search for one
        requirement; the capability index for several."""
        if not required:
            self._refresh_index()
            return len(self._online)
        self._refresh_index()
        if len(required) == 1:
            lst = self._online_prof.get(required[0].name, [])
            return len(lst) - bisect.bisect_left(lst, required[0].min_proficiency)
        return sum(1 for a in self._candidates(required) if a.status in ONLINE)

    def _estimate(self, a: Agent, t: Task) -> datetime | None:
        """Completion estimate from the agent's observed durations on this task type
        (else on all types); None when the agent has no completed task yet."""
        assert self._now is not None
        st = a.type_stats.get(t.type)
        if st is not None and st.completed:
            mean_ms = st.total_ms / st.completed
        elif a.metrics.tasks_completed:
            mean_ms = a.metrics.total_execution_ms / a.metrics.tasks_completed
        else:
            return None
        return self._now + timedelta(milliseconds=mean_ms)

    def _schedule(self) -> None:
        if not self._dirty:
            return
        now = self._now
        assert now is not None
        blocked: set[tuple[tuple[str, float], ...]] = set()
        while True:
            self._refresh_index()
            if not self._eligible:
                break  # nobody can take work: no need to look at the queue
            # The globally first ready task among groups that some agent could take.
            head: tuple[float, int, str] | None = None
            head_sig = None
            for sig, heap in self._ready.items():
                if sig in blocked:
                    continue
                while heap and (
                    self._queued.get(heap[0][2]) != heap[0][1] or self.tasks[heap[0][2]].status != TS.PENDING
                ):
                    heapq.heappop(heap)  # lazily drop entries of tasks no longer queued
                if heap and (head is None or heap[0] < head):
                    head, head_sig = heap[0], sig
            if head is None or head_sig is None:
                break
            t = self.tasks[head[2]]
            pick = self._pick_agent(t)
            if pick is None:
                blocked.add(head_sig)
                continue
            heapq.heappop(self._ready[head_sig])
            agent, score, breakdown, n = pick
            if t.attempt >= 1:
                reason = "retry_different_agent" if t.failed_agents and agent.id not in t.failed_agents else "retry"
            else:
                reason = "capability_match" if t.required_capabilities else "available_agent"
            self._emit(
                ev.TaskAssigned(
                    timestamp=now,
                    task_id=t.id,
                    agent_id=agent.id,
                    assignment_reason=reason,
                    estimated_completion=self._estimate(agent, t),
                    attempt_number=t.attempt + 1,
                    score=round(score, 4),
                    score_breakdown=breakdown,
                    candidates=n,
                )
            )
            self._touch(agent.id, "task_assigned")
        for sig in [s for s, h in self._ready.items() if not h]:
            del self._ready[sig]
        self._dirty = False

    # ---------------------------------------------------------- capability index

    def _index_agent(self, a: Agent) -> None:
        for c in a.capabilities:
            self._cap_index.setdefault(c.name, set()).add(a.id)

    def _unindex_agent(self, a: Agent) -> None:
        for c in a.capabilities:
            s = self._cap_index.get(c.name)
            if s is not None:
                s.discard(a.id)
                if not s:
                    del self._cap_index[c.name]
