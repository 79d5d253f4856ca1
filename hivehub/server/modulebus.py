"""The internal bus between the hub's modules.

Modules hand each other work in-process (a direct call: cheap). Each hand-off
is also visible as an ``inter_module_message`` event, but only to /ws
subscribers that ask for that type explicitly: when nobody asks, a message
costs one check of the subscriber filters and nothing is encoded or logged.
These messages are not part of the log (they carry no ``sequence``): they
describe how the hub processed logged events, not state changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import events as ev
from .service import HubService

Handler = Callable[[str, dict[str, Any]], None]


class ModuleBus:
    def __init__(self, service: HubService, wants: Callable[[str], bool]) -> None:
        self.service = service
        self.wants = wants
        self.sent = 0

    def send(
        self,
        from_module: str,
        to_module: str,
        message_type: str,
        payload: dict[str, Any],
        deliver: Callable[[], None],
    ) -> None:
        """Deliver a message (``deliver`` runs the receiving module's work) and
        make it visible to subscribers that asked for inter_module_message."""
        deliver()
        self.sent += 1
        if self.wants("inter_module_message"):
            self.service.publish_transient(
                ev.InterModuleMessage(
                    timestamp=self.service.clock(),
                    from_module=from_module,
                    to_module=to_module,
                    message_type=message_type,
                    payload=payload,
                )
            )
