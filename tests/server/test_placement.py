"""Which replica leads which hive (server/placement.py): pure, times in, decisions out."""

from __future__ import annotations

from hivehub.server.placement import Claim, hive_index, preferred_leader


def test_hives_are_numbered_default_first_then_sorted() -> None:
    names = ["b", "a", "c"]
    assert [hive_index(n, names) for n in (None, "a", "b", "c")] == [0, 1, 2, 3]


def test_the_preferred_leaders_are_balanced_and_the_same_for_every_replica() -> None:
    live = ["r2", "r0", "r1"]
    assert [preferred_leader(live, i) for i in range(6)] == ["r0", "r1", "r2", "r0", "r1", "r2"]
    assert preferred_leader(list(reversed(live)), 4) == "r1"
    assert preferred_leader([], 0) is None


def test_the_preferred_leader_tries_at_once_once_settled() -> None:
    c = Claim("r1", 1, grace=1.5)
    assert not c.decide(0.0, live=["r0", "r1"], lock_free=True, settled=False)
    assert c.decide(0.5, live=["r0", "r1"], lock_free=True, settled=True)
    assert not c.decide(0.5, live=["r0", "r1"], lock_free=False, settled=True)


def test_another_replica_waits_for_the_lock_to_stay_free_for_the_grace() -> None:
    c = Claim("r0", 1, grace=1.5)  # hive 1 prefers r1
    live = ["r0", "r1"]
    assert not c.decide(0.0, live=live, lock_free=True, settled=False)  # settling counts nothing
    assert not c.decide(1.0, live=live, lock_free=True, settled=True)
    assert not c.decide(2.0, live=live, lock_free=True, settled=True)
    assert not c.decide(2.4, live=live, lock_free=False, settled=True)  # taken meanwhile: start over
    assert not c.decide(3.0, live=live, lock_free=True, settled=True)
    assert not c.decide(4.4, live=live, lock_free=True, settled=True)
    assert c.decide(4.5, live=live, lock_free=True, settled=True)


def test_when_the_preferred_replica_dies_the_survivor_takes_over_at_once() -> None:
    c = Claim("r0", 1, grace=1.5)
    assert not c.decide(10.0, live=["r0", "r1"], lock_free=True, settled=True)
    assert c.decide(10.5, live=["r0"], lock_free=True, settled=True)  # r1 is gone
