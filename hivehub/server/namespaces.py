"""Namespaces: independent hives in one deployment, at ``/ns/{name}/...``.

Each namespace is a whole hub: ``create_app`` builds one full app per namespace
from a configuration derived here (:func:`derive_config`: its own log, tokens,
``HubService``, stream and agent gateway), and the default namespace's app, the
one the server runs, keeps today's URLs and hands every request under
``/ns/{name}/`` to that namespace's app with the prefix taken off
(:func:`namespace_middleware`). So nothing below the prefix knows namespaces
exist: the routes, the auth rules (which read the path), the stream and the
gateway are the same code, on state that is theirs alone.

Why one app per namespace rather than a namespace key through one app: every
part of a hub (the core, the log writer, the token table, the rate limiter, the
connection registry, the cluster election) is per app already, so isolation is
structural (a namespace cannot reach another's state because it holds no
reference to it) rather than a check every handler must remember. Why not
aiohttp sub-apps: a sub-app sees the whole path (``/ns/a/api/tasks``) and runs
under its parent's middlewares, so the auth rules, which classify the path,
would need to learn the prefix, and the default's auth would run first.

Where each namespace keeps its log (:func:`derive_db`): beside the default's,
``hive.db`` -> ``hive.ns-NAME.db`` (its tokens are in that file too); on
PostgreSQL its own schema (``<schema>_ns_<name>``, ``ns_<name>`` beside
``public``), which also gives each namespace's cluster its own id, bus stream and
leader lock (``Cluster.lock_key`` is derived from the schema), so leadership of
different namespaces can later spread over the replicas.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from yarl import URL

from ..protocol.errors import UnknownNamespace
from .config import ServerConfig
from .errors import error_response
from .keys import NAMESPACE

log = logging.getLogger("hivehub.namespaces")

#: a namespace's name: it becomes part of a file name, a schema name and a URL
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
#: the URL prefix of namespace ``name`` is ``PREFIX + name``
PREFIX = "/ns/"
_PG = ("postgresql://", "postgres://")
#: PostgreSQL truncates longer identifiers (two namespaces could share a schema)
_PG_IDENT_MAX = 63


def validate_name(name: str) -> str:
    """``name`` if it is a valid namespace name. Raises ValueError."""
    if not NAME.fullmatch(name):
        raise ValueError(
            f"invalid namespace name {name!r}: lower-case letters, digits and '-', starting with a"
            " letter or digit, at most 63 characters"
        )
    return name


def validate_names(names: list[str]) -> list[str]:
    """The names in order, each validated, duplicates refused. Raises ValueError."""
    seen: list[str] = []
    for n in names:
        validate_name(n)
        if n in seen:
            raise ValueError(f"namespace {n!r} is declared twice")
        seen.append(n)
    return seen


def derive_db(db: str, name: str) -> str:
    """The database of namespace ``name`` on a deployment whose default namespace
    uses ``db``: ``memory`` stays memory (a store of its own), a SQLite file gets a
    sibling (``data/hive.db`` -> ``data/hive.ns-NAME.db``), a PostgreSQL URL its own
    schema. Raises ValueError (a name too long for a schema)."""
    validate_name(name)
    if db in ("memory", "memory:", ":memory:"):
        return db
    if db.startswith(_PG):
        parts = urlsplit(db)
        query = parse_qsl(parts.query)
        base = next((v for k, v in query if k == "schema"), None)
        schema = f"{base}_ns_{name}" if base else f"ns_{name}"
        # '-' is not allowed in an unquoted identifier (search_path); names have no '_'
        schema = schema.replace("-", "_")
        if len(schema.encode()) > _PG_IDENT_MAX:
            raise ValueError(f"namespace {name!r}: schema name {schema!r} is over {_PG_IDENT_MAX} bytes")
        rest = [(k, v) for k, v in query if k != "schema"] + [("schema", schema)]
        return urlunsplit(parts._replace(query=urlencode(rest)))
    scheme = next((p for p in ("sqlite:///", "sqlite://") if db.startswith(p)), "")
    path = db[len(scheme) :]
    head, tail = os.path.split(path)
    stem, ext = os.path.splitext(tail)
    return scheme + os.path.join(head, f"{stem}.ns-{name}{ext}")


def derive_bus(bus: str, name: str) -> str:
    """The bus URL of namespace ``name``: an explicit ``stream=``/``subject=`` gets a
    ``-ns-NAME`` suffix (a derived one follows the namespace's own cluster id)."""
    if bus in ("", "memory", "memory:"):
        return bus
    parts = urlsplit(bus)
    query = [(k, f"{v}-ns-{name}" if k in ("stream", "subject") else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def derive_config(config: ServerConfig, name: str) -> ServerConfig:
    """The configuration of namespace ``name``'s app: the default's settings with
    its own database, bus stream and cluster address, and without what runs once
    per process (the demo, the heap trim). ``--admin-token`` is the deployment's
    operator token and is accepted in every namespace; tokens made with ``hive
    token create --namespace NAME`` are that namespace's only."""
    advertise = (config.advertise or f"http://127.0.0.1:{config.port}").rstrip("/")
    return msgspec.structs.replace(
        config,
        db=derive_db(config.db, name),
        bus=derive_bus(config.bus, name),
        namespace=name,
        namespaces=[],
        advertise=f"{advertise}{PREFIX}{name}",
        demo_agents=False,
        demo_workload=False,
        heap_trim_interval=0.0,
    )


#: the namespaces' apps, on the default namespace's app
NAMESPACES: web.AppKey[dict[str, web.Application]] = web.AppKey("namespaces")
#: the namespaces whose app started (cleaned up at the end)
_STARTED: web.AppKey[list[web.Application]] = web.AppKey("namespaces_started")


@web.middleware
async def namespace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The default app's outermost middleware: ``/ns/{name}/rest`` is answered by
    namespace ``name``'s app as ``/rest``; an unknown name is a 404
    ``unknown_namespace``. Every other path is the default namespace's."""
    raw = request.rel_url.raw_path
    if not raw.startswith(PREFIX):
        return await handler(request)
    name, _, rest = raw[len(PREFIX) :].partition("/")
    apps: dict[str, web.Application] = request.app[NAMESPACES]
    inner = apps.get(name)
    if inner is None:
        # (the names served are not listed: a caller with no token learns none)
        return error_response(UnknownNamespace(f"no namespace {name!r} on this hub", namespace=name))
    query = request.rel_url.raw_query_string
    url = URL("/" + rest + (f"?{query}" if query else ""), encoded=True)
    kw: dict[str, Any] = {}
    if hdrs.EXPECT in request.headers:
        # the outer app has answered the 100-continue already; the inner must not again
        kw["headers"] = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() != "expect")
    sub = request.clone(rel_url=url, **kw)
    sub[NAMESPACE] = PREFIX + name
    # Application._handle is what aiohttp's server calls for every request: route,
    # then the app's own middlewares (cors, errors, auth) and handler
    return await inner._handle(sub)


async def start_namespaces(app: web.Application) -> None:
    """on_startup of the default app (after its own start): start every namespace."""
    started = app[_STARTED]
    for name, inner in app[NAMESPACES].items():
        inner._set_loop(None)
        inner.freeze()
        started.append(inner)
        await inner.startup()
        log.info("namespace %s started at %s%s/", name, PREFIX, name)


async def shutdown_namespaces(app: web.Application) -> None:
    for inner in app[_STARTED]:
        await inner.shutdown()


async def cleanup_namespaces(app: web.Application) -> None:
    started: list[web.Application] = app[_STARTED]
    for inner in reversed(started):
        try:
            await inner.cleanup()
        except Exception:
            log.exception("cleaning up a namespace failed")


def install(app: web.Application, apps: dict[str, web.Application]) -> None:
    """Serve ``apps`` (name -> app) under ``/ns/{name}/`` of ``app``, with their
    lifecycle tied to ``app``'s. Call on the default app before it is frozen."""
    app[NAMESPACES] = apps
    app[_STARTED] = []
    app.middlewares.insert(0, namespace_middleware)
    app.on_startup.append(start_namespaces)
    app.on_shutdown.append(shutdown_namespaces)
    app.on_cleanup.append(cleanup_namespaces)
