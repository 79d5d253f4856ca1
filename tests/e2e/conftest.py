from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hubproc import Hub


@pytest.fixture
def hub(tmp_path) -> Iterator[Hub]:
    h = Hub(
        tmp_path / "hive.db", "--heartbeat-timeout", "3", "--retry-base", "0.05", "--retry-cap", "0.2"
    ).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def hub_factory(tmp_path) -> Iterator:
    started: list[Hub] = []

    def make(*extra: str, db=None, port=None) -> Hub:
        h = Hub(db or (tmp_path / "hive.db"), *extra, port=port)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


@pytest.fixture
def agents(tmp_path):
    """Start real agent processes: ``agents(hub, name, caps, handler, **kw)``; all stopped after."""
    from tests.e2e.agentproc import AgentProc

    started: list[AgentProc] = []

    def start(
        hub: Hub, name: str, caps: list[str], handler: str = "tests.e2e.handlers:echo", **kw
    ) -> AgentProc:
        a = AgentProc(hub.ws_url, name, caps, handler, log_dir=tmp_path, **kw)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()
