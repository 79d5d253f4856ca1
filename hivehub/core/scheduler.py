"""Scheduling: the ready queue, the capability index, and assignment.

Part of the :class:`~hivehub.core.hive.Hive` (a mixin; see ``_state.py``).

- The ready queue holds one heap per requirement signature, ordered by
  :func:`~hivehub.core.policies.queue_key` (priority with aging). Entries are
  dropped lazily: a task that left ``pending`` keeps its heap entry until it
  reaches the top.
- The capability index maps a capability name to the agents that declare it, so
  candidate search reads the smallest posting list instead of scanning agents.
- :meth:`SchedulingMixin._schedule` assigns the globally first ready task among
  the groups some agent could take, to the best-scoring eligible agent, until no
  group can make progress. It runs only when something marked the hive dirty.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

from . import events as ev
from ._state import HiveState
from .model import Agent, AgentStatus, Task, TaskStatus
from .policies import queue_key, score_agent

TS = TaskStatus
AS = AgentStatus


class SchedulingMixin(HiveState):
    _cap_index: dict[str, set[str]]
    _ready: dict[tuple[tuple[str, float], ...], list[tuple[float, int, str]]]
    _ready_seq: int
    _queued: dict[str, int]  # task id -> ready entry seq (lazy deletion)

    @staticmethod
    def _signature(t: Task) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((r.name, r.min_proficiency) for r in t.required_capabilities))

    def _deps_met(self, t: Task) -> bool:
        return all(self.tasks[d].status == TS.COMPLETED for d in t.depends_on if d in self.tasks)

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
        best: tuple[float, str, Agent, dict[str, float]] | None = None
        n = 0
        for a in self._candidates(t.required_capabilities):
            if a.status not in (AS.IDLE, AS.ACTIVE) or a.free_slots <= 0 or a.draining:
                continue
            n += 1
            score, breakdown = score_agent(a, t, self.config.weights)
            # ties: the lower agent id, so the choice is deterministic given the log
            if best is None or score > best[0] or (score == best[0] and a.id < best[1]):
                best = (score, a.id, a, breakdown)
        if best is None:
            return None
        return best[2], best[0], best[3], n

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
