"""Self-monitoring: observations the adapters report, folded into module health
and active alerts.

The pure part: which events are observations, how alerts are keyed and
compared, the bounded alert texts. The ``Observe`` decision is in ``hive.py``,
the fold of alerts and module states in ``projection.py``. An ``Observe``
command carries an observation event. A module status is logged
only when it differs from the current one, an alert only when it is raised or
cleared (keyed by :func:`alert_key`), or when an active
alert's content changes (an update under the same key); other observations are
logged as given.

Sizes stay bounded however many tasks or capabilities there are: pending work
no agent can serve is one alert (``unservable_work``) that names at most
``UNSERVABLE_GROUPS`` requirement sets and counts the rest, and a
``hive_status_update`` lists at most ``STATUS_ALERTS`` active alerts (the most
severe first) and counts the rest in ``alerts_omitted``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import events as ev

#: active alerts listed in one hive_status_update (GET /api/alerts lists them all)
STATUS_ALERTS = 20
#: requirement sets named in the unservable_work alert (the largest first)
UNSERVABLE_GROUPS = 10
#: longest text of one alert message or requirement label carried in those events
TEXT_LIMIT = 300
UNSERVABLE_KEY = "unservable_work"
LEVELS = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def requirement_label(sig: tuple[tuple[str, float], ...]) -> str:
    """``a>=0.5,b>=0`` for a requirement signature (clipped: names may be long)."""
    return _clip(",".join(f"{n}>={m:g}" for n, m in sig) or "(none)")


def unservable_alert(groups: dict[str, int], now: datetime) -> ev.SystemAlert:
    """The one alert for pending work no online agent can serve.

    Args:
        groups: pending task count by requirement label (``requirement_label``).
    Its size is bounded: the ``UNSERVABLE_GROUPS`` largest sets (ties by label),
    then a count of the others."""
    total = sum(groups.values())
    top = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))[:UNSERVABLE_GROUPS]
    rest = len(groups) - len(top)
    named = ", ".join(f"[{label}] x{n}" for label, n in top) + (f" and {rest} more" if rest else "")
    return ev.SystemAlert(
        timestamp=now,
        level="warning",
        title="Pending work no agent can serve",
        message=f"{total} pending task(s) in {len(groups)} requirement set(s) no online agent meets: {named}",
        details={
            "error": "no_capable_agent",
            "affected_components": ["task_management", "coordinator"],
            "pending_tasks": total,
            "requirement_sets": len(groups),
            "groups": [{"required_capabilities": label, "pending_tasks": n} for label, n in top],
            "groups_omitted": rest,
        },
        alert_key=UNSERVABLE_KEY,
    )


def status_alerts(entries: list[dict[str, Any]], limit: int = STATUS_ALERTS) -> tuple[list[ev.Alert], int]:
    """The alerts a hive_status_update carries, from ``active_alerts`` entries: the
    ``limit`` most severe (newest first within a level), messages clipped; and
    how many were left out."""
    ranked = sorted(entries, key=lambda a: (LEVELS.get(a["level"], len(LEVELS)), -a["timestamp"].timestamp()))
    shown = [
        ev.Alert(level=a["level"], message=_clip(f"{a['title']}: {a['message']}"), timestamp=a["timestamp"])
        for a in ranked[:limit]
    ]
    return shown, len(entries) - len(shown)


#: the event types an ``Observe`` command may carry
OBSERVATIONS: tuple[type[ev.EventData], ...] = (
    ev.ModuleStatusChanged,
    ev.SystemAlert,
    ev.ResourceAlert,
    ev.HiveStatusUpdate,
    ev.ErrorOccurred,
    ev.InterModuleMessage,
)


def alert_key(d: ev.EventData) -> str | None:
    """The key an alert is raised and cleared under (``None``: not an alert)."""
    if isinstance(d, ev.SystemAlert):
        return d.alert_key or f"system:{d.title}"
    if isinstance(d, ev.ResourceAlert):
        return f"resource:{d.resource}"
    return None


def same_alert(a: ev.EventData, b: ev.EventData) -> bool:
    """Raising ``b`` while ``a`` is active under the same key changes nothing."""
    if isinstance(a, ev.SystemAlert) and isinstance(b, ev.SystemAlert):
        return (a.level, a.title, a.message, a.details) == (b.level, b.title, b.message, b.details)
    return True  # a resource alert is raised once per crossing (hysteresis in the watch)


def is_cleared(d: ev.EventData) -> bool:
    return getattr(d, "state", "active") == "cleared"


def active_alert_entries(alerts: dict[str, ev.EventData]) -> list[dict[str, Any]]:
    """Active alerts (key -> the event that raised them) as plain entries (``GET /api/alerts``)."""
    out: list[dict[str, Any]] = []
    for key, d in alerts.items():
        if isinstance(d, ev.SystemAlert):
            out.append(
                {
                    "key": key,
                    "kind": "system_alert",
                    "level": d.level,
                    "title": d.title,
                    "message": d.message,
                    "details": d.details,
                    "timestamp": d.timestamp,
                }
            )
        elif isinstance(d, ev.ResourceAlert):
            out.append(
                {
                    "key": key,
                    "kind": "resource_alert",
                    "level": "warning",
                    "title": f"High {d.resource} usage",
                    "message": f"{d.resource} at {d.usage_percent:.1f}% "
                    f"(threshold {d.threshold_percent:.1f}%, {d.trend})",
                    "details": {
                        "usage_percent": d.usage_percent,
                        "threshold_percent": d.threshold_percent,
                        "recommendations": d.recommendations,
                    },
                    "timestamp": d.timestamp,
                }
            )
    return out
