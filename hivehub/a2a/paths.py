"""Where the A2A endpoints are served: constants only, so mounting them
(``server_mount``) and serving them (``server``) share them without importing
each other or the SDK."""

from __future__ import annotations

#: the JSON-RPC endpoint
RPC_PATH = "/a2a"
#: the Agent Card: the SDK's ``AGENT_CARD_WELL_KNOWN_PATH``, spelled here so mounting
#: it loads no SDK (a test checks the two agree)
AGENT_CARD_PATH = "/.well-known/agent-card.json"

__all__ = ["AGENT_CARD_PATH", "RPC_PATH"]
