"""Quota pools in the scheduler: token buckets pace assignments at the provider's
limits, settled with the real usage; a provider 429 pauses the pool
(``core/quotas.py``). Time is simulated: Ticks at ``next_deadline``."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentSpec,
    DeleteQuota,
    QuotaSpec,
    RegisterAgent,
    RemoveAgent,
    SetQuota,
    SubmitTask,
    TaskSpec,
)
from hivehub.core.errors import InvalidInput, QuotaInUse, QuotaNotFound
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.model import TaskStatus, UsageReport
from hivehub.core.quotas import _level, blocked_reason

from ._harness import T0, Sim, caps, of, one

CONFIG = HiveConfig(heartbeat_timeout=10_000.0)


def register(sim: Sim, agent_id: str, quota: str | None, *, slots: int = 1, t: float = 0, **c: float) -> None:
    spec = AgentSpec(
        name=agent_id, id=agent_id, quota=quota, max_concurrent_tasks=slots, capabilities=caps(c or None)
    )
    sim.do(RegisterAgent(spec=spec), t)


def usage(tokens: int) -> UsageReport:
    return UsageReport(model="m", prompt_tokens=tokens, completion_tokens=0)


def seconds(mono: float) -> float:
    """A monotonic reading of the Sim (its wall clock) as seconds after T0."""
    return mono - T0.timestamp()


# ---------------------------------------------------------------- bad input


def test_registering_with_an_unknown_pool_is_refused() -> None:
    sim = Sim(CONFIG)
    with pytest.raises(QuotaNotFound) as err:
        register(sim, "a", "openai-main")
    assert "PUT /api/quotas/openai-main" in err.value.message
    assert err.value.code == "quota_not_found"
    assert sim.hive.agents == {}


@pytest.mark.parametrize(
    "limits",
    [
        {},
        {"tokens_per_minute": 0},
        {"requests_per_minute": -5},
        {"max_concurrent": -1},
        {"tokens_per_minute": 1.5},
    ],
)
def test_limits_must_be_positive_and_at_least_one_set(limits: dict[str, int]) -> None:
    sim = Sim(CONFIG)
    with pytest.raises(InvalidInput):
        sim.do(SetQuota(name="p", **limits), 0)
    assert sim.hive.quotas == {}


def test_the_request_body_refuses_negative_limits() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"tokens_per_minute": -1}', type=QuotaSpec)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"tokens_per_minut": 10}', type=QuotaSpec)


def test_deleting_a_pool_in_use_or_unknown() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=1000), 0)
    register(sim, "a", "p")
    with pytest.raises(QuotaInUse) as err:
        sim.do(DeleteQuota(name="p"), 1)
    assert err.value.details["agents"] == ["a"]
    with pytest.raises(QuotaNotFound):
        sim.do(DeleteQuota(name="nope"), 1)
    sim.do(RemoveAgent(agent_id="a"), 2)
    out = sim.do(DeleteQuota(name="p", requested_by="ops"), 3)
    assert one(out, ev.QuotaDeleted).requested_by == "ops"
    assert "p" not in sim.hive.quotas


def test_setting_the_same_limits_again_records_nothing() -> None:
    sim = Sim(CONFIG)
    assert of(sim.do(SetQuota(name="p", tokens_per_minute=1000), 0), ev.QuotaSet)
    assert sim.do(SetQuota(name="p", tokens_per_minute=1000), 1) == []
    assert one(sim.do(SetQuota(name="p", tokens_per_minute=2000), 2), ev.QuotaSet).tokens_per_minute == 2000


def test_re_registering_with_another_pool_changes_it() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=1000), 0)
    sim.do(SetQuota(name="q", tokens_per_minute=1000), 0)
    register(sim, "a", "p")
    out = sim.do(RegisterAgent(spec=AgentSpec(name="a", id="a", quota="q")), 1)
    assert one(out, ev.AgentUpdated).quota == "q"
    assert sim.agent("a").quota == "q"
    out = sim.do(RegisterAgent(spec=AgentSpec(name="a", id="a")), 2)
    assert one(out, ev.AgentUpdated).quota == ""
    assert sim.agent("a").quota is None
    assert of(sim.do(RegisterAgent(spec=AgentSpec(name="a", id="a")), 3), ev.AgentUpdated) == []


# ---------------------------------------------------------------- pacing


def run(sim: Sim, until: float, report: int | None, log: list[tuple[float, str]]) -> None:
    """Drive the hive to ``until`` seconds: a Tick at every ``next_deadline``, and every
    assigned task completed at once with ``report`` tokens (None: no usage)."""
    while True:
        nd = sim.hive.next_deadline()
        if nd is None or seconds(nd) > until:
            return
        now = seconds(nd)
        pending = sim.tick(now)
        while pending:
            assigned = of(pending, ev.TaskAssigned)
            pending = []
            for a in assigned:
                log.append((now, a.task_id))
                kw = {"usage": usage(report)} if report is not None else {}
                pending += sim.complete(a.task_id, t=now, **kw)


def test_a_tokens_per_minute_pool_paces_assignments_at_the_limit() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=3000), 0)
    register(sim, "a", "p", slots=50)
    register(sim, "b", "p", slots=50)
    log: list[tuple[float, str]] = []
    for i in range(100):
        out = sim.do(SubmitTask(spec=TaskSpec(id=f"t{i}", estimated_tokens=500)), 0)
        log += [(0.0, a.task_id) for a in of(out, ev.TaskAssigned)]
        for a in of(out, ev.TaskAssigned):
            sim.complete(a.task_id, t=0, usage=usage(500))
    # the first burst: the bucket holds 10 seconds' worth (500 tokens)
    assert len(log) == 1
    assert sim.hive.blocked_reason(sim.task("t99"), T0) == "quota:p"
    run(sim, 600, 500, log)
    per_minute = Counter(int(when // 60) for when, _ in log)
    for minute in range(1, 10):
        tokens = per_minute[minute] * 500
        assert abs(tokens - 3000) <= 300, (minute, tokens)
    assert len(log) == 61  # 1 burst + one every 10 s for 600 s


def test_the_bucket_settles_with_the_real_usage() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=6000), 0)  # 100 tokens/s, capacity 1000
    register(sim, "a", "p", slots=10)
    out = sim.do(SubmitTask(spec=TaskSpec(id="t1", estimated_tokens=1000)), 0)
    assert of(out, ev.TaskAssigned)[0].reservation is not None
    sim.submit("t2", t=0, estimated_tokens=1000)
    assert sim.task("t2").status == TaskStatus.PENDING
    # t1 used 3000: 2000 more than reserved -> the bucket is 2000 in debt
    sim.complete("t1", t=0, usage=usage(3000))
    assert seconds(sim.hive.next_deadline() or 0) == pytest.approx(30.0)
    sim.tick(29)
    assert sim.task("t2").status == TaskStatus.PENDING
    sim.tick(30)
    assert sim.task("t2").status == TaskStatus.ASSIGNED
    # t2 used 100 of its 1000: refunded, so t3 goes at once
    sim.complete("t2", t=30, usage=usage(100))
    sim.submit("t3", t=30, estimated_tokens=800)
    assert sim.task("t3").status == TaskStatus.ASSIGNED


def test_no_usage_keeps_the_reservation_of_a_started_attempt_only() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=6000), 0)
    register(sim, "a", "p", slots=10)
    sim.submit("t1", t=0, estimated_tokens=1000)
    from hivehub.core.commands import ReleaseTask

    # never started: refunded, so the re-queued task is assigned again at once (level
    # 1000 - 1000 + 1000 - 1000, not 2000 in debt)
    sim.do(ReleaseTask(task_id="t1", agent_id="a", attempt=1, reason="declined"), 0)
    assert sim.task("t1").attempt == 2
    p = sim.hive._pools["p"]
    assert p.tokens is not None and p.tokens.level == pytest.approx(0.0) and p.in_flight == 1
    sim.start("t1", t=1)
    sim.complete("t1", t=1)  # started, no usage reported: the reservation stands
    assert _level(p.tokens, 6000, T0.timestamp() + 1) == pytest.approx(100.0) and p.in_flight == 0


def test_max_concurrent_counts_attempts_in_flight() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", max_concurrent=2), 0)
    register(sim, "a", "p", slots=5)
    register(sim, "b", "p", slots=5)
    for i in range(5):
        sim.submit(f"t{i}", t=0)

    def held() -> list[str]:
        return sorted(tid for tid, t in sim.hive.tasks.items() if t.status == TaskStatus.ASSIGNED)

    assert held() == ["t0", "t1"]
    assert sim.hive._pools["p"].in_flight == 2
    assert sim.hive.blocked_reason(sim.task("t4"), T0) == "quota:p"
    assert sim.hive._wake_at is None  # no time makes room: only an attempt ending
    sim.complete("t0", t=1)
    assert held() == ["t1", "t2"]
    # an agent outside the pool takes the rest
    register(sim, "c", None, slots=5, t=2)
    assert held() == ["t1", "t2", "t3", "t4"]
    assert sim.hive._pools["p"].in_flight == 2


def test_requests_per_minute() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", requests_per_minute=6), 0)  # one per 10 s, capacity 1
    register(sim, "a", "p", slots=100)
    log: list[tuple[float, str]] = []
    for i in range(20):
        out = sim.do(SubmitTask(spec=TaskSpec(id=f"t{i}")), 0)
        log += [(0.0, a.task_id) for a in of(out, ev.TaskAssigned)]
        for a in of(out, ev.TaskAssigned):
            sim.complete(a.task_id, t=0)
    run(sim, 120, None, log)
    times = [when for when, _ in log]
    assert (
        times
        == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0][: len(times)]
    )
    assert len(times) == 13


# ---------------------------------------------------------------- RATE_LIMITED


def test_rate_limited_requeues_without_spending_retries_and_pauses_the_pool() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", requests_per_minute=600), 0)
    register(sim, "a", "p", slots=2)
    sim.submit("t1", t=0, max_retries=0)
    out = sim.fail("t1", t=1, code="RATE_LIMITED", retry_after=30.0)
    f = one(out, ev.TaskFailed)
    assert f.failure_kind == "rate_limited" and f.retry_scheduled
    t1 = sim.task("t1")
    assert t1.status == TaskStatus.PENDING and t1.failures == 0 and t1.failed_agents == []
    assert t1.next_retry_at is not None and (t1.next_retry_at - T0).total_seconds() == 31.0
    assert sim.hive._pools["p"].paused_until == pytest.approx(T0.timestamp() + 31.0)
    # the pool is paused: a new task waits too, and says why
    sim.submit("t2", t=2)
    assert sim.task("t2").status == TaskStatus.PENDING
    assert sim.hive.blocked_reason(sim.task("t2"), T0.replace(second=2)) == "quota:p"
    assert seconds(sim.hive.next_deadline() or 0) == pytest.approx(31.0)
    sim.tick(30)
    assert sim.task("t2").status == TaskStatus.PENDING
    sim.tick(31)
    assert {sim.task("t1").status, sim.task("t2").status} == {TaskStatus.ASSIGNED}
    assert sim.task("t1").attempt == 2


def test_rate_limited_without_retry_after_waits_five_seconds() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1", max_retries=0)
    f = one(sim.fail("t1", t=1, code="RATE_LIMITED", retryable=False), ev.TaskFailed)
    assert f.retry_scheduled and f.next_retry_at is not None
    assert (f.next_retry_at - T0).total_seconds() == 6.0


def test_a_pool_an_attempt_in_flight_draws_from_cannot_be_deleted() -> None:
    """Found by the replay property: an agent re-registered without its pool while its
    attempt held a reservation of it, the pool deleted and created again, and the new
    pool knew nothing of the attempt (in flight 0: one more than max_concurrent could
    run). The pool now stays until the attempt ends."""
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", max_concurrent=1), 0)
    register(sim, "a", "p")
    sim.submit("t1", t=0)
    assert sim.task("t1").status == TaskStatus.ASSIGNED and sim.hive._pools["p"].in_flight == 1
    spec = AgentSpec(name="a", id="a", quota=None, capabilities=caps(None))
    sim.do(RegisterAgent(spec=spec, running={"t1": 1}), 1)
    assert sim.hive.agents["a"].quota is None and sim.task("t1").status == TaskStatus.ASSIGNED
    with pytest.raises(QuotaInUse) as err:
        sim.do(DeleteQuota(name="p"), 2)
    assert err.value.code == "quota_in_use" and "in flight" in err.value.message
    assert sim.hive._pools["p"].in_flight == 1
    sim.complete("t1", t=3)
    assert one(sim.do(DeleteQuota(name="p"), 4), ev.QuotaDeleted).name == "p"


def test_past_max_rate_limited_a_429_spends_a_normal_retry() -> None:
    """A provider that always answers 429 cannot keep a task forever: after
    ``max_rate_limited`` free re-queues each further 429 spends a retry (still not
    before its retry_after, and still pausing the pool), so the task ends failed."""
    import random

    from tests.core._harness import Ids
    from tests.core._state import full_state

    config = HiveConfig(heartbeat_timeout=10_000.0, max_rate_limited=2, retry_base_seconds=0.1)
    sim = Sim(config)
    sim.do(SetQuota(name="p", requests_per_minute=600), 0)
    register(sim, "a", "p")
    sim.submit("t1", t=0, max_retries=1)
    kinds, now = [], 0.0
    while sim.task("t1").status == TaskStatus.ASSIGNED:
        now += 1
        f = one(sim.fail("t1", t=now, code="RATE_LIMITED", retry_after=3.0), ev.TaskFailed)
        kinds.append((f.failure_kind, f.retry_scheduled))
        assert f.next_retry_at is None or (f.next_retry_at - T0).total_seconds() == now + 3.0
        assert sim.hive._pools["p"].paused_until == pytest.approx(T0.timestamp() + now + 3.0)
        now += 3
        sim.tick(now)
    assert kinds == [
        ("rate_limited", True),
        ("rate_limited", True),
        ("rate_limited_over_limit", True),  # the retry of max_retries=1
        ("rate_limited_over_limit", False),
    ]
    t1 = sim.task("t1")
    assert t1.status == TaskStatus.FAILED and t1.failures == 2 and t1.rate_limited == 4
    # not the agent's failure: its metrics and the task's failed_agents stay clean
    assert sim.hive.agents["a"].metrics.tasks_failed == 0 and t1.failed_agents == []
    # a replay of the log folds the same state
    replica = Hive(config, new_id=Ids("r"), rng=random.Random(1))
    for e in sim.log:
        replica.apply(e)
    replica.drain_timers(T0.timestamp() + now)  # to the live hive's last Tick
    assert full_state(replica) == full_state(sim.hive)


def test_max_rate_limited_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_rate_limited"):
        HiveConfig(max_rate_limited=-1)


# ---------------------------------------------------------------- blocked_reason


def test_blocked_reason_for_each_case() -> None:
    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", max_concurrent=1), 0)
    sim.submit("nobody", requires={"gpu": 0.5})
    assert blocked_reason(sim.hive, sim.task("nobody"), T0) == "no_agent"
    register(sim, "a", "p", slots=3, llm=0.9)
    sim.submit("first", requires={"llm": 0.5})
    assert blocked_reason(sim.hive, sim.task("first"), T0) is None  # assigned
    sim.submit("second", requires={"llm": 0.5})
    assert blocked_reason(sim.hive, sim.task("second"), T0) == "quota:p"
    sim.submit("later", requires={"llm": 0.5}, depends_on=["second"])
    assert blocked_reason(sim.hive, sim.task("later"), T0) == "dependencies"
    register(sim, "b", None, llm=0.9)
    assert sim.task("second").status == TaskStatus.ASSIGNED


# ---------------------------------------------------------------- restart


def test_pools_budgets_and_totals_survive_a_restart() -> None:
    """A hive that folds the log holds the same pools (levels, pause), budgets,
    reservations and totals, and paces on from there."""
    import random

    from hivehub.core.commands import SetBudget
    from hivehub.core.hive import Hive

    from ._harness import Ids
    from ._state import full_state

    sim = Sim(CONFIG)
    sim.do(SetQuota(name="p", tokens_per_minute=6000, max_concurrent=3), 0)
    sim.do(SetBudget(owner="alice", tokens_per_day=100_000), 0)
    register(sim, "a", "p", slots=3)
    for i in range(3):
        sim.do(SubmitTask(spec=TaskSpec(id=f"t{i}", estimated_tokens=300), created_by="alice"), 0)
    sim.complete("t0", t=1, usage=usage(800))
    sim.fail("t1", t=2, code="RATE_LIMITED", retry_after=20.0)
    replica = Hive(CONFIG, new_id=Ids("r"), rng=random.Random(1))
    for e in sim.log:
        replica.apply(e)
    live, folded = full_state(sim.hive), full_state(replica)
    for field in ("_pools", "quotas", "budgets", "_reservations", "_reserved", "_spent", "usage_by_owner"):
        assert live[field] == folded[field], field
    assert replica._pools["p"].paused_until == pytest.approx(T0.timestamp() + 22.0)
    assert replica.usage_summary() == sim.hive.usage_summary()


def test_blocked_reason_approval_and_running() -> None:
    sim = Sim(CONFIG)
    sim.register("a")
    sim.submit("t1")
    assert blocked_reason(sim.hive, sim.task("t1"), T0) is None  # assigned: not waiting
    waiting = msgspec.structs.replace(sim.task("t1"), status="awaiting_approval")
    assert blocked_reason(sim.hive, waiting, T0) == "approval"
