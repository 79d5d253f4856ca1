"""Daily budgets per owner: reserved at assignment, settled at the end; a task
whose owner is out of budget waits (only that owner's), one alert says so, and
the overspend is bounded by the reservations in flight (``core/quotas.py``)."""

from __future__ import annotations

import random
from datetime import timedelta

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import BudgetSpec, DeleteBudget, SetBudget, SubmitTask, TaskSpec
from hivehub.core.errors import BudgetNotFound, InvalidInput
from hivehub.core.hive import HiveConfig
from hivehub.core.learning import LearningConfig
from hivehub.core.model import ModelPrice, TaskStatus, UsageReport
from hivehub.core.quotas import blocked_reason

from ._harness import T0, Sim, of, reqs

#: (no learning cycles: an agent in one takes no work, which would end the runs early)
CONFIG = HiveConfig(heartbeat_timeout=100_000.0, learning=LearningConfig(enabled=False))


def usage(tokens: int) -> UsageReport:
    return UsageReport(model="m", prompt_tokens=tokens, completion_tokens=0)


def submit(sim: Sim, task_id: str, owner: str | None, t: float = 0, **spec: object) -> list[ev.Event]:
    return sim.do(
        SubmitTask(
            spec=TaskSpec(id=task_id, required_capabilities=reqs({"llm": 0.5}), **spec),  # type: ignore[arg-type]
            created_by=owner,
        ),
        t,
    )


def alerts(events: list[ev.Event]) -> list[ev.SystemAlert]:
    return [a for a in of(events, ev.SystemAlert) if (a.alert_key or "").startswith("budget:")]


def status(sim: Sim, task_id: str) -> TaskStatus:
    return sim.task(task_id).status


def test_a_budget_blocks_only_its_owners_tasks_and_alerts_once() -> None:
    sim = Sim(CONFIG)
    sim.do(SetBudget(owner="alice", tokens_per_day=1000), 0)
    sim.register("a", {"llm": 0.9}, max_tasks=10)
    submit(sim, "a1", "alice", estimated_tokens=400)
    submit(sim, "a2", "alice", estimated_tokens=400)
    out = submit(sim, "a3", "alice", estimated_tokens=400)  # 1200 > 1000: waits
    assert [status(sim, i) for i in ("a1", "a2", "a3")] == [TaskStatus.ASSIGNED] * 2 + [TaskStatus.PENDING]
    (alert,) = alerts(out)
    assert alert.alert_key == "budget:alice" and alert.level == "warning" and alert.state == "active"
    assert blocked_reason(sim.hive, sim.task("a3"), T0) == "budget"
    # another owner's task with the same requirements still runs
    submit(sim, "b1", "bob", estimated_tokens=400)
    assert status(sim, "b1") == TaskStatus.ASSIGNED
    # no second alert while the owner stays blocked
    more = submit(sim, "a4", "alice", estimated_tokens=10, t=1) + sim.tick(2) + sim.tick(30)
    assert alerts(more) == []
    assert status(sim, "a4") == TaskStatus.PENDING  # behind a3 in alice's queue
    assert "budget:alice" in sim.hive.alerts


def test_the_budget_clears_at_the_next_utc_day() -> None:
    sim = Sim(CONFIG)
    sim.do(SetBudget(owner="alice", tokens_per_day=1000), 0)
    sim.register("a", {"llm": 0.9}, max_tasks=10)
    submit(sim, "a1", "alice", estimated_tokens=600)
    submit(sim, "a2", "alice", estimated_tokens=600)
    sim.complete("a1", t=10, usage=usage(700))
    # 700 spent + 600 > 1000: still blocked after a1 ended
    assert status(sim, "a2") == TaskStatus.PENDING
    assert sim.hive.blocked_reason(sim.task("a2"), T0 + timedelta(seconds=10)) == "budget"
    midnight = T0.replace(hour=0) + timedelta(days=1)
    assert sim.hive._wake_at == pytest.approx(midnight.timestamp())  # (next_deadline: the earliest)
    out = sim.tick(midnight)
    assert status(sim, "a2") == TaskStatus.ASSIGNED
    (cleared,) = alerts(out)
    assert cleared.state == "cleared" and cleared.alert_key == "budget:alice"
    assert "budget:alice" not in sim.hive.alerts


def test_raising_or_deleting_the_budget_clears_it() -> None:
    sim = Sim(CONFIG)
    sim.do(SetBudget(owner="alice", tokens_per_day=500), 0)
    sim.register("a", {"llm": 0.9}, max_tasks=10)
    submit(sim, "a1", "alice", estimated_tokens=400)
    submit(sim, "a2", "alice", estimated_tokens=400)
    submit(sim, "a3", "alice", estimated_tokens=400)
    out = sim.do(SetBudget(owner="alice", tokens_per_day=900), 1)
    assert status(sim, "a2") == TaskStatus.ASSIGNED and status(sim, "a3") == TaskStatus.PENDING
    assert alerts(out) == []  # a3 still waits: the alert stays
    out = sim.do(DeleteBudget(owner="alice"), 2)
    assert status(sim, "a3") == TaskStatus.ASSIGNED
    assert [a.state for a in alerts(out)] == ["cleared"]


def test_a_cost_budget_reserves_max_cost_usd() -> None:
    config = msgspec.structs.replace(
        CONFIG, prices={"*": ModelPrice(input_per_million=1e6, output_per_million=0)}
    )
    sim = Sim(config)  # one USD per token
    sim.do(SetBudget(owner="alice", cost_usd_per_day=10.0), 0)
    sim.register("a", {"llm": 0.9}, max_tasks=10)
    submit(sim, "a1", "alice", max_cost_usd=6.0)
    submit(sim, "a2", "alice", max_cost_usd=6.0)
    assert status(sim, "a2") == TaskStatus.PENDING
    sim.complete("a1", t=1, usage=usage(3))  # spent 3: 3 + 6 fits
    assert status(sim, "a2") == TaskStatus.ASSIGNED


@pytest.mark.parametrize("seed", range(5))
def test_overspend_is_bounded_by_the_reservations_in_flight(seed: int) -> None:
    """Tasks with ``max_tokens`` (the agent stops there): the budget reserves it, so
    the owner's spending never passes the limit, however the attempts interleave.
    Tasks with only an estimate that use up to 3x it: the overspend stays within
    what the attempts in flight can use beyond their reservations."""
    rng = random.Random(seed)
    limit = 10_000
    for capped in (True, False):
        sim = Sim(CONFIG)
        sim.do(SetBudget(owner="alice", tokens_per_day=limit), 0)
        slots = 8
        sim.register("a", {"llm": 0.9}, max_tasks=slots)
        for i in range(60):
            spec: dict[str, object] = {"max_tokens": 500} if capped else {"estimated_tokens": 500}
            submit(sim, f"t{i}", "alice", **spec)
        t = 1.0
        blocked_seen = False
        for _ in range(200):
            held = [tid for tid, task in sim.hive.tasks.items() if task.status == TaskStatus.ASSIGNED]
            if not held:
                break
            tid = rng.choice(held)
            used = rng.randint(0, 500) if capped else rng.randint(0, 1500)
            sim.complete(tid, t=t, usage=usage(used))
            t += 1
            spent = sim.hive.usage_by_owner["alice"].total_tokens
            bound = limit if capped else limit + slots * (1500 - 500)
            assert spent <= bound, (capped, spent)
            blocked_seen = blocked_seen or "budget:alice" in sim.hive.alerts
        assert blocked_seen  # the budget was reached, not merely never tested
        pending = [x for x in sim.hive.tasks.values() if x.status == TaskStatus.PENDING]
        # it ran until the budget stopped it: what waits, waits on the budget
        assert pending and not any(x.status == TaskStatus.ASSIGNED for x in sim.hive.tasks.values())
        assert blocked_reason(sim.hive, pending[0], T0) == "budget"
        if capped:
            assert sim.hive.usage_by_owner["alice"].total_tokens > limit - 500 - 500  # near the limit


def test_bad_budgets() -> None:
    sim = Sim(CONFIG)
    for bad in ({}, {"tokens_per_day": 0}, {"tokens_per_day": -1}, {"cost_usd_per_day": -0.5}):
        with pytest.raises(InvalidInput):
            sim.do(SetBudget(owner="alice", **bad), 0)  # type: ignore[arg-type]
    with pytest.raises(BudgetNotFound) as err:
        sim.do(DeleteBudget(owner="nobody"), 0)
    assert err.value.code == "budget_not_found"
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"cost_usd_per_day": 0}', type=BudgetSpec)
    assert sim.hive.budgets == {} and sim.log == []


def test_an_owner_without_a_token_is_anonymous() -> None:
    sim = Sim(CONFIG)
    sim.do(SetBudget(owner="anonymous", tokens_per_day=100), 0)
    sim.register("a", {"llm": 0.9}, max_tasks=10)
    submit(sim, "x", None, estimated_tokens=200)
    submit(sim, "y", "alice", estimated_tokens=200)
    assert status(sim, "x") == TaskStatus.PENDING and status(sim, "y") == TaskStatus.ASSIGNED
