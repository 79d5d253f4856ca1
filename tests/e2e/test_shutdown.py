"""Stopping the hub: SIGTERM exits promptly and cleanly, whatever its clients are doing."""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from tests.hubproc import Hub


def test_sigterm_with_a_parked_pull_claim_exits_at_once_and_answers_the_claim(hub_factory: Any) -> None:
    hub: Hub = hub_factory("--heartbeat-timeout", "120").start()
    aid = hub.post(
        "/api/agents", {"name": "p", "capabilities": [{"name": "x", "proficiency": 0.5}]}, expect=201
    )["id"]
    answered: list[int | str] = []

    def claim() -> None:
        req = urllib.request.Request(hub.url + f"/api/agents/{aid}/claim?wait=30", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                answered.append(r.status)
        except (urllib.error.URLError, OSError) as exc:
            answered.append(repr(exc))

    t = threading.Thread(target=claim, daemon=True)
    t.start()
    time.sleep(1.0)  # the claim is parked (it waits up to 30 s for a task)
    assert not answered
    assert hub.proc is not None
    started = time.monotonic()
    hub.proc.send_signal(signal.SIGTERM)
    rc = hub.proc.wait(10)  # before the fix the hub waited out the claim and was killed
    took = time.monotonic() - started
    t.join(5)
    assert rc == 0, hub.logs()[-2000:]
    assert took < 5, took
    # the parked claim got an answer ("no task"), not a cut connection
    assert answered == [204]
