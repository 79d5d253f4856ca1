"""The per-request keys the auth middleware sets and the components read.

They live below every component, so a component (the stream, the agent gateway,
the connection registry) can read who is calling without importing the hub.
The hub itself is ``server/hub.py``'s ``HUB`` app key, read only by the handler
layer (middlewares, routes, start-up hooks).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

#: the caller's identity, set by the auth middleware (``None``: a public route)
IDENTITY: web.RequestKey[Any] = web.RequestKey("identity")
#: the request's entry in the connection registry (WebSockets and parked claims)
HELD: web.RequestKey[Any] = web.RequestKey("held")
#: the URL prefix of the namespace a request was handed to (``/ns/NAME``; unset:
#: the default namespace), set by ``namespaces.namespace_middleware``
NAMESPACE: web.RequestKey[str] = web.RequestKey("namespace")
