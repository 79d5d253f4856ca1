"""The scheduler's fast paths choose as the rule says, on random hives.

``scheduler.pick_agent`` walks the free-agent heap of the rarest required
capability inline, matches one requirement inline, and the heaps' keys are built
from shared terms (``indexes.agent_changed``); the ready queue of a group is a
sorted run plus a heap (``readyqueue.ReadyQueue``). Each is checked here against
the rule written plainly: every agent that takes work, ordered by
``policies.base_score`` then id, the first ``PICK_K`` meeting every requirement
scored in full by ``policies.score_agent``, the best taken (ties: the lower id);
and a plain heap's pop order.
"""

from __future__ import annotations

import heapq

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hivehub.core.hive import HiveConfig
from hivehub.core.model import Agent, AgentStatus, Task, TaskStatus
from hivehub.core.policies import base_score, score_agent
from hivehub.core.readyqueue import ReadyQueue
from hivehub.core.scheduler import PICK_K, pick_agent
from hivehub.core.state import HiveState

from ._harness import Sim, at, reqs

NAMES = ("x", "y", "z")
PROFS = (0.3, 0.5, 0.7, 0.9)

agent_specs = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(PROFS), max_size=3),
        st.integers(1, 3),
    ),
    min_size=1,
    max_size=14,
)
requirement = st.dictionaries(st.sampled_from(NAMES), st.sampled_from(PROFS), max_size=2)
# ("submit", requirement) | ("complete", i) | ("fail", i): i picks one held task
ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), requirement),
        st.tuples(st.sampled_from(["complete", "fail"]), st.integers(0, 1000)),
    ),
    max_size=40,
)


def reference_pick(s: HiveState, t: Task) -> tuple[str, float, dict[str, float], int] | None:
    """The rule, without the indexes' shortcuts (but the same choice of heap)."""
    req = t.required_capabilities
    w = s.config.weights
    takers = [
        a
        for a in s.agents.values()
        if a.status in (AgentStatus.IDLE, AgentStatus.ACTIVE) and a.free_slots > 0 and not a.draining
    ]
    if not takers:
        return None
    key = min((r.name for r in req), key=lambda n: len(s._free.get(n, ()))) if req else None
    in_heap = [a for a in takers if key is None or a.capability(key) is not None]
    in_heap.sort(key=lambda a: (-base_score(a, key, w), a.id))
    found = [a for a in in_heap if a.meets(list(req))][:PICK_K]
    best: tuple[float, str, dict[str, float]] | None = None
    for a in found:
        score, breakdown = score_agent(a, t, w)
        if best is None or score > best[0] or (score == best[0] and a.id < best[1]):
            best = (score, a.id, breakdown)
    if best is None:
        return None
    return best[1], best[0], best[2], len(found)


def probe(requires: dict[str, float], failed: list[str]) -> Task:
    return Task(
        id="probe",
        description="probe",
        type="t",
        priority=2,
        status=TaskStatus.PENDING,
        required_capabilities=reqs(requires),
        input=None,
        timeout_seconds=60.0,
        max_retries=0,
        created_at=at(0),
        updated_at=at(0),
        failed_agents=failed,
    )


def held(agents: list[Agent]) -> list[tuple[str, str]]:
    return sorted((task_id, a.id) for a in agents for task_id in a.current_tasks)


def check_picks(s: Sim, probes: list[tuple[dict[str, float], int]]) -> None:
    hive = s.hive
    ids = sorted(hive.agents)
    for requires, mask in probes:
        t = probe(requires, [i for n, i in enumerate(ids) if mask >> n & 1])
        got = pick_agent(hive, t)
        want = reference_pick(hive, t)
        assert (None if got is None else (got[0].id, got[1], got[2], got[3])) == want, requires
    # every current free-heap entry is keyed by base_score, as the docstring says
    w = hive.config.weights
    for name, heap in hive._free.items():
        for neg, agent_id, version in heap:
            if hive._ver.get(agent_id) == version:
                a = hive.agents[agent_id]
                assert -neg == base_score(a, name or None, w), (name, agent_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agents=agent_specs,
    script=ops,
    probes=st.lists(st.tuples(requirement, st.integers(0, 2**14)), min_size=1, max_size=4),
)
def test_pick_agent_equals_the_rule_on_random_hives(
    agents: list[tuple[dict[str, float], int]],
    script: list[tuple[str, object]],
    probes: list[tuple[dict[str, float], int]],
) -> None:
    s = Sim(HiveConfig(heartbeat_timeout=10_000.0))
    for n, (capabilities, slots) in enumerate(agents):
        s.register(f"a{n:02d}", capabilities, max_tasks=slots)
    check_picks(s, probes)
    t = 1.0
    for n, (kind, arg) in enumerate(script):
        t += 0.25
        if kind == "submit":
            assert isinstance(arg, dict)
            s.submit(f"t{n}", arg, t=t)
        else:
            holding = held(list(s.hive.agents.values()))
            if not holding:
                continue
            assert isinstance(arg, int)
            task_id, agent_id = holding[arg % len(holding)]
            if kind == "complete":
                s.complete(task_id, agent_id, t=t)
            else:
                s.fail(task_id, agent_id, t=t, retryable=True)
        check_picks(s, probes)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.floats(-5, 5, allow_nan=False)),
            st.tuples(st.just("pop"), st.just(0.0)),
        ),
        max_size=80,
    )
)
def test_ready_queue_pops_in_heap_order(script: list[tuple[str, float]]) -> None:
    q = ReadyQueue()
    ref: list[tuple[float, int, str]] = []
    for seq, (kind, key) in enumerate(script):
        if kind == "push":
            entry = (key, seq, f"t{seq}")
            q.push(entry)
            heapq.heappush(ref, entry)
        elif ref:
            assert q.top() == ref[0]
            assert q.pop() == heapq.heappop(ref)
        assert bool(q) == bool(ref) and len(q) == len(ref)
        assert sorted(q) == sorted(ref)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-5, 5, allow_nan=False), max_size=60),
    st.sets(st.integers(0, 59)),
)
def test_ready_queue_clean_drops_the_stale_front(keys: list[float], stale: set[int]) -> None:
    """``clean`` is ``while q and stale(q.top()): q.pop()``, as a plain heap does it."""
    q = ReadyQueue()
    ref: list[tuple[float, int, str]] = []
    for seq, key in enumerate(keys):
        q.push((key, seq, f"t{seq}"))
        heapq.heappush(ref, (key, seq, f"t{seq}"))
    current = {f"t{seq}": seq for seq in range(len(keys)) if seq not in stale}
    current.update({f"t{seq}": -1 for seq in stale if seq % 2})  # re-queued under another seq
    while ref and current.get(ref[0][2]) != ref[0][1]:
        heapq.heappop(ref)
    assert q.clean(current) == bool(ref)
    assert sorted(q) == sorted(ref) and (not ref or q.top() == ref[0])
