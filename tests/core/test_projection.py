"""The projection (``core/projection.py``): ``apply`` is the only mutator, so a
hive folded from the log is the live one; regressions the property test found."""

from __future__ import annotations

import random

import msgspec
import pytest

from hivehub.core import events as ev
from hivehub.core.commands import CancelTask, RetryTask, SubmitTask, TaskSpec
from hivehub.core.errors import HiveError
from hivehub.core.hive import Hive, HiveConfig

from ._harness import Ids, Sim, at
from ._state import differences, full_state


def replica_of(s: Sim) -> Hive:
    h = Hive(s.hive.config, new_id=Ids("replica"), rng=random.Random(7))
    for e in s.log:
        h.apply(e)
    return h


def plain(events: list[ev.Event]) -> list[tuple[str, object]]:
    return [(e.type, msgspec.to_builtins(e.data)) for e in events]


def cancelled_root_with_dependents_retried_in_reverse() -> Sim:
    """``root`` waits for an agent that can serve it; ``d1`` and ``d2`` (created
    together: the same queue key) depend on it. Cancelling ``root`` fails both;
    they are retried (``d2`` first) and so is ``root``."""
    s = Sim(HiveConfig(heartbeat_timeout=10_000))
    s.submit("root", {"z": 0.5}, t=0)
    s.submit("d1", t=1, depends_on=["root"])
    s.submit("d2", t=1, depends_on=["root"])
    s.do(CancelTask(id="c", task_id="root", cancelled_by="u"), 2)
    assert {s.task(t).status for t in ("d1", "d2")} == {"failed"}
    s.do(RetryTask(id="r2", task_id="d2"), 3)
    s.do(RetryTask(id="r1", task_id="d1"), 3)
    s.do(RetryTask(id="r0", task_id="root"), 3)
    return s


def test_a_cancelled_dependency_leaves_the_same_state_live_and_replayed() -> None:
    """At a0f8100 the cancel's decision forgot the root's dependents itself
    (``_waiting``), outside ``apply``: a replay still listed them."""
    s = cancelled_root_with_dependents_retried_in_reverse()
    live, replayed = full_state(s.hive), full_state(replica_of(s))
    assert live == replayed, differences(live, replayed)


def test_after_a_cancelled_dependency_a_replica_decides_as_the_live_hive() -> None:
    """The divergence was visible: once ``root`` completed, the live hive ran ``d2``
    first (retried first) and a replica folded from the same log ran ``d1``."""
    s = cancelled_root_with_dependents_retried_in_reverse()
    follow = Sim.around(replica_of(s))  # the replica, driven with the same commands and times
    for sim in (s, follow):
        sim.register("a", {"z": 0.9}, t=4)
        assert sim.holder("root") == "a"
    live_out = s.complete("root", "a", t=5)
    replica_out = follow.complete("root", "a", t=5)
    assert plain(replica_out) == plain(live_out)
    assert s.holder("d2") == "a" and follow.holder("d2") == "a"


def test_a_dependency_that_fails_for_good_is_forgotten_live_and_replayed() -> None:
    s = Sim(HiveConfig(heartbeat_timeout=10_000))
    s.register("a", t=0)
    s.submit("root", t=0, max_retries=0)
    s.submit("child", t=0, depends_on=["root"])
    s.fail("root", t=1, retryable=False)
    assert s.task("child").status == "failed"
    assert "root" not in s.hive._waiting
    assert full_state(s.hive) == full_state(replica_of(s))


def test_a_rejected_command_changes_nothing_volatile_included() -> None:
    s = Sim()
    s.register("a", {"x": 0.5}, t=0)
    s.submit("t", {"x": 0.1}, t=0)
    before = full_state(s.hive, volatile=True)
    for bad in (SubmitTask(spec=TaskSpec(id="t")), CancelTask(task_id="nope")):
        with pytest.raises(HiveError):
            s.hive.handle(bad, at(1))
        assert full_state(s.hive, volatile=True) == before
