"""The bridge's rules without a hub: card URLs, agent ids, the skill filter, reading a
card (a real A2A agent, a port nobody listens on, a URL that is not a card), and the
translation of the A2A client's errors to stable codes."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from a2a.client import A2AClientError, A2AClientTimeoutError
from a2a.types import AgentCard, AgentSkill, TaskNotFoundError

from hivehub.a2a.bridge import (
    AGENT_ID_PREFIX,
    BridgeConfig,
    CardError,
    agent_id_for,
    capabilities_for,
    read_card,
    split_card_url,
)
from hivehub.a2a.bridge_task import translate
from tests.a2a.bridge_agents import A2AAgent, free_port


def test_card_urls() -> None:
    well_known = "/.well-known/agent-card.json"
    assert split_card_url("http://h:1") == ("http://h:1", well_known)
    assert split_card_url("http://h:1/agents/x/") == ("http://h:1/agents/x", well_known)
    assert split_card_url("https://h/x/.well-known/agent-card.json") == ("https://h/x", well_known)
    assert split_card_url("http://h/cards/mine.json") == ("http://h/cards", "/mine.json")
    for bad in ("ftp://h/x", "h:1", "http://"):
        with pytest.raises(ValueError, match="http:// or https://"):
            split_card_url(bad)


def test_agent_id_is_stable_and_short() -> None:
    a = agent_id_for("http://127.0.0.1:9999")
    assert (
        a
        == agent_id_for("http://127.0.0.1:9999/")
        == agent_id_for("http://127.0.0.1:9999" + "/.well-known/agent-card.json")
    )
    assert a.startswith(AGENT_ID_PREFIX) and len(a) == len(AGENT_ID_PREFIX) + 12
    assert a != agent_id_for("http://127.0.0.1:9998")


def test_skills_that_are_not_capability_names_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    card = AgentCard(
        name="x",
        skills=[
            AgentSkill(id=i, name=i) for i in ("ok", "", "has space", "tab\there", "ok", "x" * 201, "y" * 200)
        ],
    )
    with caplog.at_level(logging.WARNING, "hivehub.a2a.bridge"):
        caps, skipped = capabilities_for(card, 0.7, "http://card")
    assert caps == [{"name": "ok", "proficiency": 0.7}, {"name": "y" * 200, "proficiency": 0.7}]
    assert skipped == ["", "has space", "tab\there", "ok", "x" * 201]
    assert "'has space' is not a valid capability name" in caplog.text and "listed twice" in caplog.text


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BridgeConfig(cards=[], hub_url="ws://h:1")
    with pytest.raises(ValueError, match="http:// or https://"):
        BridgeConfig(cards=["nope"], hub_url="ws://h:1")
    with pytest.raises(ValueError, match="proficiency"):
        BridgeConfig(cards=["http://h"], hub_url="ws://h:1", proficiency=1.5)


def test_read_card() -> None:
    agent = A2AAgent("gamma", ["one", "two"]).start()

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            card = await read_card(http, agent.url, 5)
            assert card.name == "gamma" and [s.id for s in card.skills] == ["one", "two"]
            with pytest.raises(CardError) as down:
                await read_card(http, f"http://127.0.0.1:{free_port()}", 5)
            assert down.value.code == "A2A_UNAVAILABLE"
            with pytest.raises(CardError) as missing:
                await read_card(http, agent.url + "/nothing.json", 5)
            assert missing.value.code == "A2A_BAD_RESPONSE" and "404" in missing.value.message

    try:
        asyncio.run(main())
    finally:
        agent.stop()


def _status_error(status: int) -> A2AClientError:
    request = httpx.Request("POST", "http://a")
    exc = A2AClientError(f"HTTP Error {status}")
    exc.__cause__ = httpx.HTTPStatusError(
        "x", request=request, response=httpx.Response(status, request=request)
    )
    return exc


def _network_error() -> A2AClientError:
    exc = A2AClientError("Network communication error: refused")
    exc.__cause__ = httpx.ConnectError("refused")
    return exc


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_status_error(401), "A2A_AUTH_REQUIRED"),
        (_status_error(403), "A2A_AUTH_REQUIRED"),
        (_status_error(503), "A2A_UNAVAILABLE"),
        (_status_error(400), "A2A_ERROR"),
        (_network_error(), "A2A_UNAVAILABLE"),
        (A2AClientTimeoutError("slow"), "A2A_TIMEOUT"),
        (A2AClientError("JSON-RPC Error -31000: odd"), "A2A_ERROR"),
        (TaskNotFoundError("gone"), "A2A_ERROR"),
        (A2AClientError("Invalid JSON-RPC response: expected an object, got list"), "A2A_BAD_RESPONSE"),
        (ValueError("Response has neither task nor message"), "A2A_BAD_RESPONSE"),
    ],
)
def test_client_errors_become_stable_codes(exc: BaseException, code: str) -> None:
    f = translate(exc, "http://a")
    assert f.code == code and f.retryable and f.details["a2a_url"] == "http://a"
