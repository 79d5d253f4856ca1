"""Every form of a hub address gives the same base URL and WebSocket URLs, for the
client, both agent transports and the CLI (``hivehub/client/urls.py``)."""

from __future__ import annotations

import pytest

from hivehub.agent import Agent, PullAgent
from hivehub.client import HiveClient
from hivehub.client.urls import AGENTS_WS, EVENTS_WS, http_url, ws_url


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://h:1", "http://h:1"),
        ("http://h:1/", "http://h:1"),
        ("  h:1  ", "http://h:1"),  # no scheme: http
        ("ws://h:1/agents/ws", "http://h:1"),
        ("ws://h:1/ws", "http://h:1"),
        ("wss://h/base/agents/ws", "https://h/base"),  # a path prefix stays
        ("https://h/hive/", "https://h/hive"),
        ("http://h:1/ws?token=x#frag", "http://h:1"),
        ("http://[::1]:3001", "http://[::1]:3001"),
    ],
)
def test_every_form_gives_the_same_base(given: str, base: str) -> None:
    assert http_url(given) == base
    assert HiveClient(given).url == base
    assert PullAgent("p", url=given).base_url == base


def test_websocket_urls() -> None:
    assert ws_url("http://h:1", AGENTS_WS) == "ws://h:1/agents/ws"
    assert ws_url("ws://h:1/", AGENTS_WS) == "ws://h:1/agents/ws"
    assert ws_url("https://h", AGENTS_WS) == "wss://h/agents/ws"
    assert ws_url("wss://h/base/agents/ws", AGENTS_WS) == "wss://h/base/agents/ws"
    assert ws_url("wss://h/route", AGENTS_WS) == "wss://h/route"  # an explicit path is used as given
    assert ws_url("h:1", EVENTS_WS) == "ws://h:1/ws"
    # an http(s) address with a path is a hub base (a proxy prefix, a namespace): the endpoint follows it
    assert ws_url("http://h:1/ns/team-1", AGENTS_WS) == "ws://h:1/ns/team-1/agents/ws"
    assert ws_url("https://h/hive/", EVENTS_WS) == "wss://h/hive/ws"
    assert (
        ws_url("ws://h:1/ns/a", AGENTS_WS) == "ws://h:1/ns/a/agents/ws"
    )  # a ws address ending at a namespace
    assert ws_url("ws://h:1/ns/a/agents/ws", AGENTS_WS) == "ws://h:1/ns/a/agents/ws"
    # the client appends its endpoint after a base's path prefix
    assert HiveClient("https://h/hive").ws_url == "wss://h/hive/ws"
    assert HiveClient("ws://h:1/agents/ws").ws_url == "ws://h:1/ws"
    agent = Agent("a", url="http://h:1, https://h/hive/agents/ws")  # replicas, comma-separated
    assert agent.urls == ["ws://h:1/agents/ws", "wss://h/hive/agents/ws"]
    # a namespace's address, as `hive agent --url` takes it
    assert Agent("a", url="http://h:1/ns/a").urls == ["ws://h:1/ns/a/agents/ws"]
    assert HiveClient("http://h:1/ns/a").ws_url == "ws://h:1/ns/a/ws"
    assert PullAgent("p", url="http://h:1/ns/a/").base_url == "http://h:1/ns/a"


@pytest.mark.parametrize("bad", ["ftp://h", "http://", "", "h:notaport"])
def test_not_a_hub_url(bad: str) -> None:
    with pytest.raises(ValueError):
        http_url(bad)
    with pytest.raises(ValueError):
        HiveClient(bad)
    with pytest.raises(ValueError):
        Agent("a", url=bad or "ftp://h")
