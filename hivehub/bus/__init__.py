"""Event buses: how committed events reach the other hub replicas."""

from .base import EventBus, open_bus

__all__ = ["EventBus", "open_bus"]
