"""Alerts folded from observations, and their bounded size (``core/observations.py``)."""

from __future__ import annotations

import msgspec

from hivehub.core import events as ev
from hivehub.core.commands import Observe
from hivehub.core.hive import HiveConfig
from hivehub.core.observations import (
    STATUS_ALERTS,
    UNSERVABLE_GROUPS,
    UNSERVABLE_KEY,
    status_alerts,
    unservable_alert,
)

from ._harness import Sim, at


def alert(
    key: str, message: str = "m", level: str = "warning", t: float = 0, state: str = "active"
) -> ev.SystemAlert:
    return ev.SystemAlert(
        timestamp=at(t), level=level, title=key, message=message, alert_key=key, state=state
    )


def observe(s: Sim, data: ev.EventData, t: float) -> list[ev.Event]:
    return s.do(Observe(data=data), t)


class TestAlertLog:
    def test_an_unchanged_alert_is_logged_once_a_changed_one_is_an_update(self) -> None:
        s = Sim()
        assert len(observe(s, alert("k", "3 waiting"), 1)) == 1
        assert observe(s, alert("k", "3 waiting"), 2) == []
        update = observe(s, alert("k", "4 waiting"), 3)
        assert [e.data.message for e in update] == ["4 waiting"]  # type: ignore[attr-defined]
        assert s.hive.alerts["k"].message == "4 waiting"  # type: ignore[attr-defined]
        assert len(observe(s, alert("k", state="cleared"), 4)) == 1
        assert observe(s, alert("k", state="cleared"), 5) == []
        assert "k" not in s.hive.alerts


class TestUnservable:
    def test_many_distinct_requirement_sets_are_one_alert_of_bounded_size(self) -> None:
        s = Sim(HiveConfig(heartbeat_timeout=10_000))
        s.register("a", {"known": 0.9})
        for i in range(500):
            s.submit(f"t{i}", {f"capability-{i:04d}-" + "n" * 150: 0.5}, t=1)
        s.submit("x1", {"rare": 0.5}, t=1)
        s.submit("x2", {"rare": 0.5}, t=1)
        s.submit("ok", {"known": 0.5}, t=1)  # servable: assigned, not counted
        groups = s.hive.unservable_groups()
        assert len(groups) == 501 and sum(groups.values()) == 502
        a = unservable_alert(groups, at(2))
        assert a.alert_key == UNSERVABLE_KEY
        d = a.details
        assert (d["pending_tasks"], d["requirement_sets"], d["groups_omitted"]) == (
            502,
            501,
            501 - UNSERVABLE_GROUPS,
        )
        assert d["groups"][0] == {
            "required_capabilities": "rare>=0.5",
            "pending_tasks": 2,
        }  # the largest first
        assert len(d["groups"]) == UNSERVABLE_GROUPS
        assert len(msgspec.json.encode(a)) < 8_000
        observe(s, a, 2)
        assert list(s.hive.alerts) == [UNSERVABLE_KEY]

    def test_status_update_alerts_are_capped_most_severe_first(self) -> None:
        s = Sim()
        for i in range(100):
            observe(s, alert(f"w{i}", "x" * 5000, t=i), i)
        observe(s, alert("crit", "down", level="critical", t=0), 100)
        shown, omitted = status_alerts(s.hive.active_alerts())
        assert len(shown) == STATUS_ALERTS and omitted == 101 - STATUS_ALERTS
        assert shown[0].message == "crit: down"
        assert [a.message[:3] for a in shown[1:3]] == ["w99", "w98"]  # newest first within a level
        update = ev.HiveStatusUpdate(
            timestamp=at(0),
            status="healthy",
            metrics=ev.HiveMetrics(
                total_agents=0, active_agents=0, pending_tasks=0, completed_tasks_today=0, system_load=0.0
            ),
            alerts=shown,
            alerts_omitted=omitted,
        )
        assert len(msgspec.json.encode(update)) < 10_000
