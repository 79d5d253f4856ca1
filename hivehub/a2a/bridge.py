"""The A2A bridge: Agent2Agent agents as hive agents (``hive a2a-bridge``).

::

    bridge = Bridge(BridgeConfig(cards=["http://127.0.0.1:9999"], hub_url="ws://127.0.0.1:3001"))
    await bridge.run()      # until bridge.stop()

For each card URL the bridge reads the Agent Card (``/.well-known/agent-card.json``,
with ``a2a-sdk``'s own resolver), and runs one hive agent of the agent SDK
(:class:`hivehub.agent.Agent`) for it: id ``a2a-`` + 12 hex digits of the card URL's
SHA-256 (the same agent after a restart, so what the hub learned is kept), the card's
name, one capability per skill (``skill.id``). Its one handler,
:class:`~hivehub.a2a.bridge_task.A2ALink`, runs each assigned task on the A2A agent.

Why a bridge process on the agent SDK rather than the hub calling A2A agents itself:
the SDK already reconnects and resumes (its reports are kept until acknowledged),
heartbeats, holds slots, reports progress and streamed output, asks for input and is
cancelled by the hub; a bridge gets all of it for free, is scaled and placed like any
agent (next to the A2A agents, inside their network), and a slow or hostile A2A agent
can never stall the hub's single command path.

Cards: one that cannot be reached (refused, timed out, HTTP 5xx) is tried again with
backoff until it answers; one that is not a card (HTTP 4xx, not JSON, not an Agent Card,
no usable skill) is skipped with an error line. The bridge ends by itself only when no
card is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from a2a.client import A2ACardResolver, AgentCardResolutionError, ClientConfig, ClientFactory
from a2a.types import AgentCard
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, TransportProtocol

from hivehub.agent import Agent, AgentOptions, RegistrationError
from hivehub.client.urls import AGENTS_WS, ws_url

from .bridge_task import A2ALink

__all__ = [
    "AGENT_ID_PREFIX",
    "Bridge",
    "BridgeConfig",
    "CardError",
    "agent_id_for",
    "capabilities_for",
    "read_card",
    "split_card_url",
]

log = logging.getLogger("hivehub.a2a.bridge")

AGENT_ID_PREFIX = "a2a-"
#: a capability name: what the hub accepts (1..200 characters), without whitespace or
#: control characters (it is matched as a word in task types and URLs)
CAPABILITY_NAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
#: backoff between reads of a card that cannot be reached (seconds)
RETRY_BASE, RETRY_CAP = 1.0, 30.0


class CardError(Exception):
    """An Agent Card that cannot be used. ``code``: ``A2A_UNAVAILABLE`` (tried again)
    or ``A2A_BAD_RESPONSE`` (skipped)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def split_card_url(url: str) -> tuple[str, str]:
    """``http://host:port[/prefix]`` -> (that base, the well-known card path); a URL
    that names a ``.json`` file or a ``/.well-known/`` path is read as given.

    Raises:
        ValueError: not an ``http(s)://`` URL with a host.
    """
    u = urlsplit(url.strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"an A2A card URL must be http:// or https://, got {url!r}")
    path = u.path.rstrip("/")
    if path.endswith(".json") or "/.well-known/" in path:
        base, _, rest = path.rpartition("/.well-known/") if "/.well-known/" in path else path.rpartition("/")
        card = ("/.well-known/" + rest) if "/.well-known/" in path else "/" + rest
        return f"{u.scheme}://{u.netloc}{base}", card
    return f"{u.scheme}://{u.netloc}{path}", AGENT_CARD_WELL_KNOWN_PATH


def agent_id_for(card_url: str) -> str:
    """The hive agent id of the A2A agent behind ``card_url`` (stable across restarts)."""
    base, path = split_card_url(card_url)
    return AGENT_ID_PREFIX + hashlib.sha256((base + path).encode()).hexdigest()[:12]


async def read_card(http: httpx.AsyncClient, url: str, timeout: float) -> AgentCard:
    """Read and parse the Agent Card at ``url`` with the SDK's resolver.

    Raises:
        CardError: ``A2A_UNAVAILABLE`` (unreachable, timed out, HTTP 5xx) or
            ``A2A_BAD_RESPONSE`` (any other HTTP error, not JSON, not a card).
    """
    base, path = split_card_url(url)
    try:
        async with asyncio.timeout(timeout):
            card = await A2ACardResolver(http, base, path).get_agent_card()
    except TimeoutError:
        raise CardError("A2A_UNAVAILABLE", f"no Agent Card from {url} within {timeout:g}s") from None
    except AgentCardResolutionError as exc:
        status = exc.status_code
        down = (status is None and isinstance(exc.__cause__, httpx.RequestError)) or (status or 0) >= 500
        raise CardError("A2A_UNAVAILABLE" if down else "A2A_BAD_RESPONSE", exc.message) from exc
    if not card.name or not card.supported_interfaces:
        raise CardError("A2A_BAD_RESPONSE", f"{url}: not an Agent Card (no name or no supportedInterfaces)")
    return card


def capabilities_for(
    card: AgentCard, proficiency: float, url: str = ""
) -> tuple[list[dict[str, Any]], list[str]]:
    """One hive capability per skill of ``card`` (``skill.id``); a skill id that is not a
    valid capability name, or repeats one, is skipped with a warning.

    Returns:
        (capabilities, the skipped skill ids)
    """
    caps: list[dict[str, Any]] = []
    skipped: list[str] = []
    for skill in card.skills:
        sid = skill.id
        if not CAPABILITY_NAME.fullmatch(sid):
            log.warning(
                "%s: skill id %r is not a valid capability name (1..200 characters, no spaces or "
                "control characters): skipped",
                url or card.name,
                sid,
            )
            skipped.append(sid)
        elif any(c["name"] == sid for c in caps):
            log.warning("%s: skill id %r is listed twice: the second is skipped", url or card.name, sid)
            skipped.append(sid)
        else:
            caps.append({"name": sid, "proficiency": proficiency})
    return caps, skipped


@dataclass(frozen=True, kw_only=True)
class BridgeConfig:
    """What ``hive a2a-bridge`` is given.

    Args:
        cards: the A2A agents' card URLs (a base URL or the card's own URL)
        hub_url: the hub (``ws://``/``http://host:port``; several replicas comma-separated)
        token: the hub's access token (an agent's role)
        proficiency: the prior of every skill (the hub learns from there)
        max_concurrent: tasks each A2A agent is given at once
        timeout: longest wait for the A2A agent to end a task or ask for input (None:
            the task's ``timeout_seconds``)
        card_timeout: longest wait for a card, a cancellation, a connection
    """

    cards: Sequence[str]
    hub_url: str
    token: str | None = None
    proficiency: float = 0.5
    max_concurrent: int = 4
    timeout: float | None = None
    card_timeout: float = 10.0
    heartbeat_interval: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.cards:
            raise ValueError("give at least one A2A card URL")
        for url in self.cards:
            split_card_url(url)
        if not 0.0 <= self.proficiency <= 1.0:
            raise ValueError("proficiency must be within 0..1")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError("timeout must be > 0")
        if not self.card_timeout > 0:
            raise ValueError("card_timeout must be > 0")


class Bridge:
    """Runs one hive agent per A2A agent until :meth:`stop`."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.hub_ws = ",".join(ws_url(u.strip(), AGENTS_WS) for u in config.hub_url.split(",") if u.strip())
        #: card URL -> the running hive agent
        self.agents: dict[str, Agent] = {}
        #: card URL -> its link (client, handler)
        self.links: dict[str, A2ALink] = {}
        #: card URL -> why it was given up (a CardError's code and message)
        self.skipped: dict[str, str] = {}
        #: set once every card was tried once (it runs, was skipped, or is retried)
        self.ready = asyncio.Event()
        self._tried: set[str] = set()
        self._http: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()

    async def run(self) -> int:
        """Read the cards, run the agents; returns 0 after :meth:`stop`, 1 when every
        card was given up (none could run)."""
        cfg = self.config
        timeout = httpx.Timeout(cfg.card_timeout, read=None)  # a stream may be quiet for long
        self._http = httpx.AsyncClient(timeout=timeout)
        runs = [asyncio.create_task(self._run_card(url), name=f"a2a-bridge {url}") for url in cfg.cards]
        stopping: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            pending: set[asyncio.Future[Any]] = set(runs)
            while pending and not self._stopping.is_set():
                done, pending = await asyncio.wait(pending | {stopping}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stopping)
            if not self._stopping.is_set():
                log.error("a2a-bridge: no A2A agent left to run (%s)", "; ".join(self.skipped.values()))
                return 1
            return 0
        finally:
            stopping.cancel()
            for t in runs:
                t.cancel()
            for t in runs:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            for link in self.links.values():
                await link.drain(cfg.card_timeout)
            await self._http.aclose()

    async def stop(self, grace: float = 10.0) -> None:
        """Let running tasks finish for up to ``grace`` seconds, hand back the rest, stop."""
        await asyncio.gather(*(a.stop(grace) for a in list(self.agents.values())), return_exceptions=True)
        self._stopping.set()

    def _mark_ready(self, url: str) -> None:
        self._tried.add(url)
        if self._tried.issuperset(self.config.cards):
            self.ready.set()

    async def _run_card(self, url: str) -> None:
        card = await self._card(url)
        if card is None:
            self._mark_ready(url)
            return
        cfg = self.config
        caps, skipped = capabilities_for(card, cfg.proficiency, url)
        if not caps:
            self.skipped[url] = f"{url}: A2A_BAD_RESPONSE: no skill with a valid id ({skipped or 'none'})"
            log.error("a2a-bridge: %s", self.skipped[url])
            self._mark_ready(url)
            return
        assert self._http is not None
        factory = ClientFactory(
            ClientConfig(
                streaming=True,
                httpx_client=self._http,
                supported_protocol_bindings=[TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON],
            )
        )
        try:
            client = factory.create(card)
        except ValueError as exc:
            self.skipped[url] = f"{url}: A2A_BAD_RESPONSE: {exc} (the bridge speaks JSONRPC and HTTP+JSON)"
            log.error("a2a-bridge: %s", self.skipped[url])
            self._mark_ready(url)
            return
        link = A2ALink(
            url,
            client,
            streaming=bool(card.capabilities.streaming),
            skills=[c["name"] for c in caps],
            timeout=cfg.timeout,
            cancel_timeout=cfg.card_timeout,
        )
        agent = Agent(
            card.name[:200],
            caps,
            url=self.hub_ws,
            options=AgentOptions(
                type="specialist",
                max_concurrent_tasks=cfg.max_concurrent,
                agent_id=agent_id_for(url),
                token=cfg.token,
                heartbeat_interval=cfg.heartbeat_interval,
                metadata={
                    **cfg.metadata,
                    "a2a": {
                        "card_url": url,
                        "version": card.version,
                        "streaming": link.streaming,
                        "skills_skipped": skipped,
                    },
                },
            ),
        )
        agent.add_handler("*", link)
        self.links[url] = link
        self.agents[url] = agent
        log.info(
            "a2a-bridge: %s (%s) runs as hive agent %s with %s",
            url,
            card.name,
            agent_id_for(url),
            link.skills,
        )
        self._mark_ready(url)
        try:
            await agent.run()
        except RegistrationError as exc:
            self.skipped[url] = f"{url}: the hub refused the agent: {exc}"
            log.error("a2a-bridge: %s", self.skipped[url])
        finally:
            self.agents.pop(url, None)

    async def _card(self, url: str) -> AgentCard | None:
        """The card at ``url``; retried with backoff while unreachable; None: given up."""
        assert self._http is not None
        failures = 0
        while not self._stopping.is_set():
            try:
                return await read_card(self._http, url, self.config.card_timeout)
            except CardError as exc:
                if exc.code != "A2A_UNAVAILABLE":
                    self.skipped[url] = f"{url}: {exc.code}: {exc.message}"
                    log.error("a2a-bridge: skipping %s", self.skipped[url])
                    return None
                failures += 1
                self._mark_ready(url)
                delay = random.uniform(0.5, 1.0) * min(RETRY_CAP, RETRY_BASE * 2 ** min(failures, 10))
                log.warning(
                    "a2a-bridge: %s: A2A_UNAVAILABLE: %s (trying again in %.1fs)", url, exc.message, delay
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        return None
