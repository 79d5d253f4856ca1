"""Cancellation the client libraries may lose."""

from __future__ import annotations

import asyncio


def honour_cancel() -> None:
    """Raise CancelledError if this task was asked to stop.

    A cancellation that lands while nats-py 2.16 waits for a reply, or while
    redis-py 8.1 opens its connection, can be swallowed: the subscription goes on
    (for up to a blocking read, or for ever) and a follower being promoted waited
    3 s for its bus task (``HubService.promote``). The subscription loops check for a
    pending request themselves (``Task.cancelling``) at every turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
