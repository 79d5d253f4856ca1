"""Self-monitoring: observations the adapters report, folded into module health
and active alerts.

Part of the :class:`~hivehub.core.hive.Hive` (a mixin; see ``_state.py``). An
``Observe`` command carries an observation event. A module status is logged
only when it differs from the current one, an alert only when it is raised or
cleared (keyed by :meth:`ObservationsMixin.alert_key`); other observations are
logged as given.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import events as ev
from ._state import HiveState
from .commands import Observe
from .errors import InvalidInput


class ObservationsMixin(HiveState):
    modules: dict[str, str]
    alerts: dict[str, ev.EventData]  # key -> the active system/resource alert

    OBSERVATIONS = (
        ev.ModuleStatusChanged,
        ev.SystemAlert,
        ev.ResourceAlert,
        ev.HiveStatusUpdate,
        ev.ErrorOccurred,
        ev.InterModuleMessage,
    )

    def _on_observe(self, cmd: Observe) -> None:
        d = cmd.data
        if not isinstance(d, self.OBSERVATIONS):
            raise InvalidInput(f"{d.TYPE} is not an observation")
        assert self._now is not None
        if isinstance(d, ev.ModuleStatusChanged) and self.modules.get(d.module, "healthy") == d.new_status:
            return  # no change: nothing to record
        key = self.alert_key(d)
        if key is not None:
            active = key in self.alerts
            if (getattr(d, "state", "active") == "cleared") != active:
                return  # clearing what is not active, or raising what already is
        self._emit(msgspec.structs.replace(d, timestamp=self._now))

    @staticmethod
    def alert_key(d: ev.EventData) -> str | None:
        if isinstance(d, ev.SystemAlert):
            return d.alert_key or f"system:{d.title}"
        if isinstance(d, ev.ResourceAlert):
            return f"resource:{d.resource}"
        return None

    def active_alerts(self) -> list[dict[str, Any]]:
        out = []
        for key, d in self.alerts.items():
            if isinstance(d, ev.SystemAlert):
                out.append({"key": key, "kind": "system_alert", "level": d.level, "title": d.title,
                            "message": d.message, "details": d.details, "timestamp": d.timestamp})
            elif isinstance(d, ev.ResourceAlert):
                out.append({"key": key, "kind": "resource_alert", "level": "warning", "title": f"High {d.resource} usage",
                            "message": f"{d.resource} at {d.usage_percent:.1f}% (threshold {d.threshold_percent:.1f}%, {d.trend})",
                            "details": {"usage_percent": d.usage_percent, "threshold_percent": d.threshold_percent,
                                        "recommendations": d.recommendations}, "timestamp": d.timestamp})
        return out

    def _a_module_status(self, d: ev.ModuleStatusChanged) -> None:
        self.modules[d.module] = d.new_status

    def _a_alert(self, d: ev.EventData) -> None:
        key = self.alert_key(d)
        assert key is not None
        if getattr(d, "state", "active") == "cleared":
            self.alerts.pop(key, None)
        else:
            self.alerts[key] = d
