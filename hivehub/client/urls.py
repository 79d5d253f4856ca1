"""Hub addresses, normalised in one place for the client, the agent SDK and the CLI.

A user may give the hub's address in any of these forms, and every end accepts them all:
``host:port``, ``http(s)://host:port``, ``ws(s)://host:port``, each with an optional
path prefix (a hub behind a reverse proxy at ``/hive``) and optionally ending with an
endpoint (``/ws``, ``/agents/ws``). A namespace of the hub is such a prefix
(``http://host:port/ns/NAME``). :func:`http_url` reduces any of them to the hub's
base URL; :func:`ws_url` gives the WebSocket URL of one endpoint.
"""

from __future__ import annotations

import re

from yarl import URL

__all__ = ["AGENTS_WS", "EVENTS_WS", "http_url", "ws_url"]

#: the WebSocket endpoints of a hub
EVENTS_WS = "/ws"
AGENTS_WS = "/agents/ws"

#: a path ending at a namespace of the hub (``hivehub/server/namespaces.py``)
_NAMESPACE_END = re.compile(r"/ns/[a-z0-9][a-z0-9-]{0,62}$")

_HTTP_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _parse(url: str) -> tuple[URL, str]:
    """``(url, its http scheme)``; no scheme means ``http``. Raises ValueError."""
    text = url.strip()
    u = URL(text if "://" in text else f"http://{text}")
    scheme = _HTTP_SCHEME.get(u.scheme)
    if scheme is None or not u.host:
        raise ValueError(f"not a hub URL: {url!r} (expected http://host:port or ws://host:port)")
    return u, scheme


def http_url(url: str) -> str:
    """The hub's base URL, ``http(s)://host[:port][/prefix]``, from any form of its address.

    ``ws``/``wss`` become ``http``/``https``; a trailing endpoint (``/agents/ws`` or
    ``/ws``), the query, the fragment and trailing slashes are dropped.

    Raises:
        ValueError: another scheme, or no host.
    """
    u, scheme = _parse(url)
    path = u.path.rstrip("/")
    for endpoint in (AGENTS_WS, EVENTS_WS):
        if path.endswith(endpoint):
            path = path[: -len(endpoint)]
            break
    base = u.with_scheme(scheme).with_path(path or "/").with_query(None).with_fragment(None)
    return str(base).rstrip("/")


def ws_url(url: str, endpoint: str) -> str:
    """The ``ws(s)://`` URL to connect to; ``http(s)`` gives ``ws(s)``.

    - no path: ``endpoint`` (:data:`EVENTS_WS`, :data:`AGENTS_WS`);
    - a path that already ends with a hub endpoint: as given;
    - an ``http(s)`` address with a path: a hub base (behind a proxy at ``/hive``, or
      a namespace ``/ns/NAME``), so ``endpoint`` is appended after it;
    - a ``ws(s)`` address with another path: an explicit route (a proxy's socket),
      used as given, unless it ends at a namespace (``.../ns/NAME``), a hub base.

    Raises:
        ValueError: another scheme, or no host.
    """
    u, scheme = _parse(url)
    given = u.scheme
    u = u.with_scheme("wss" if scheme == "https" else "ws")
    path = u.path.rstrip("/")
    if not path:
        return str(u.with_path(endpoint))
    if path.endswith((AGENTS_WS, EVENTS_WS)):
        return str(u)
    if given in ("http", "https") or _NAMESPACE_END.search(path):
        return str(u.with_path(path + endpoint, keep_query=True))
    return str(u)
