"""``hive serve``: run the hub (options, their environment variables, the server loop)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
from typing import Any

from .. import argtypes as A

#: the environment variable the option being declared reads (set by _env, taken by
#: the add_argument wrapper of add_parser, shown by --help: ``cli/helptext.py``)
_pending_env: list[str] = []


def _env(name: str, default: Any) -> Any:
    _pending_env.append(name)
    return os.environ.get(name, default)


def _list_env(name: str) -> list[str]:
    _pending_env.append(name)
    raw = os.environ.get(name, "")
    return [x.strip() for x in raw.split(",") if x.strip()]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the hub")
    declare = p.add_argument

    def add_argument(*flags: Any, **kw: Any) -> Any:
        # the default=_env(...) of this call ran just before it: the option reads that variable
        action = declare(*flags, **kw)
        if _pending_env:
            action.env = _pending_env.pop()
        _pending_env.clear()
        return action

    p.add_argument = add_argument
    p.add_argument(
        "--host",
        default=_env("HIVE_HOST", "127.0.0.1"),
        help="address to listen on (0.0.0.0: every interface; turn auth on first)",
    )
    p.add_argument("--port", type=A.PORT, default=_env("HIVE_PORT", 3001))
    p.add_argument("--db", default=_env("HIVE_DB", "./data/hive.db"), help="SQLite path or 'memory'")
    p.add_argument(
        "--no-demo",
        action="store_true",
        default=_env("HIVE_NO_DEMO", "") not in ("", "0"),
        help="start without the demo agents and workload",
    )
    p.add_argument("--no-demo-workload", action="store_true", help="demo agents, but no generated tasks")
    p.add_argument("--heartbeat-timeout", type=A.SECONDS, default=_env("HIVE_HEARTBEAT_TIMEOUT", 15.0))
    p.add_argument(
        "--agent-heartbeat-interval", type=A.SECONDS, default=_env("HIVE_AGENT_HEARTBEAT_INTERVAL", 5.0)
    )
    p.add_argument("--ws-heartbeat", type=A.SECONDS, default=_env("HIVE_WS_HEARTBEAT", 30.0))
    p.add_argument(
        "--retain-finished",
        type=A.NON_NEGATIVE_INT,
        default=_env("HIVE_RETAIN_FINISHED", 10_000),
        help="finished tasks kept in memory; older ones are read from the log when asked for",
    )
    p.add_argument(
        "--remember-evicted",
        type=A.NON_NEGATIVE_INT,
        default=_env("HIVE_REMEMBER_EVICTED", 100_000),
        help="evicted tasks whose final status stays in memory; older ones are looked up in the log",
    )
    p.add_argument(
        "--max-rate-limited",
        type=A.NON_NEGATIVE_INT,
        default=_env("HIVE_MAX_RATE_LIMITED", 10),
        help="provider 429s (RATE_LIMITED) of one task re-queued without spending a retry; later ones spend one",
    )
    p.add_argument("--retry-base", type=A.SECONDS, default=_env("HIVE_RETRY_BASE", 1.0))
    p.add_argument("--retry-cap", type=A.SECONDS, default=_env("HIVE_RETRY_CAP", 60.0))
    p.add_argument("--subscriber-buffer", type=A.POSITIVE_INT, default=_env("HIVE_SUBSCRIBER_BUFFER", 10_000))
    p.add_argument("--max-body", type=A.POSITIVE_INT, default=_env("HIVE_MAX_BODY", 1 << 20))
    p.add_argument("--max-frame", type=A.POSITIVE_INT, default=_env("HIVE_MAX_FRAME", 1 << 20))
    p.add_argument(
        "--status-interval",
        type=A.SECONDS,
        default=_env("HIVE_STATUS_INTERVAL", 5.0),
        help="seconds between hive_status_update events",
    )
    p.add_argument("--resource-interval", type=A.SECONDS, default=_env("HIVE_RESOURCE_INTERVAL", 5.0))
    p.add_argument("--cpu-threshold", type=A.PERCENT, default=_env("HIVE_CPU_THRESHOLD", 80.0))
    p.add_argument("--memory-threshold", type=A.PERCENT, default=_env("HIVE_MEMORY_THRESHOLD", 85.0))
    p.add_argument("--disk-threshold", type=A.PERCENT, default=_env("HIVE_DISK_THRESHOLD", 90.0))
    p.add_argument(
        "--learning-min-outcomes", type=A.POSITIVE_INT, default=_env("HIVE_LEARNING_MIN_OUTCOMES", 20)
    )
    p.add_argument("--learning-interval", type=A.SECONDS, default=_env("HIVE_LEARNING_INTERVAL", 300.0))
    p.add_argument("--no-learning", action="store_true")
    p.add_argument("--rebalance-interval", type=A.SECONDS, default=_env("HIVE_REBALANCE_INTERVAL", 10.0))
    p.add_argument(
        "--rebalance-min-unstarted", type=A.NON_NEGATIVE, default=_env("HIVE_REBALANCE_MIN_UNSTARTED", 2.0)
    )
    p.add_argument(
        "--store-busy-timeout",
        type=A.NON_NEGATIVE,
        default=_env("HIVE_STORE_BUSY_TIMEOUT", 5.0),
        help="seconds a log write waits for a lock before the store counts as unavailable",
    )
    p.add_argument(
        "--admin-token",
        default=_env("HIVE_ADMIN_TOKEN", None),
        help="an admin token accepted besides those made with 'hive token create' (turns auth on)",
    )
    p.add_argument(
        "--auth",
        choices=["auto", "on", "off"],
        default=_env("HIVE_AUTH", "auto"),
        help="auto: on once a token exists, then for good; on: from the start; off: anyone is admin (logged)",
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        default=_list_env("HIVE_ALLOWED_ORIGINS"),
        help="browser origin allowed on REST and the WebSockets (repeatable; the hub's own always is)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        default=_list_env("HIVE_CORS_ORIGINS"),
        help="origin that gets CORS headers (repeatable, '*' for any)",
    )
    p.add_argument(
        "--rate-limit",
        type=A.AUTO_OR_NON_NEGATIVE,
        default=_env("HIVE_RATE_LIMIT", "auto"),
        help="mutating requests per second per client, bursts of twice that (0: off; auto: "
        "1000 per token while auth is on, none while it is off)",
    )
    p.add_argument(
        "--max-ws-per-client",
        type=A.AUTO_OR_POSITIVE_INT,
        default=_env("HIVE_MAX_WS_PER_CLIENT", "auto"),
        help="open WebSockets per client (auto: 256 per token while auth is on, none while it is off)",
    )
    p.add_argument(
        "--client-buffer",
        type=A.POSITIVE_INT,
        default=_env("HIVE_CLIENT_BUFFER", 8 << 20),
        help="bytes the hub buffers for one client before cutting it off (replies, events, snapshot, replay)",
    )
    p.add_argument(
        "--heap-trim-interval",
        type=A.NON_NEGATIVE,
        default=_env("HIVE_HEAP_TRIM_INTERVAL", 10.0),
        help="seconds between returning freed heap memory to the OS (glibc malloc_trim; 0: never)",
    )
    p.add_argument(
        "--snapshot-events",
        type=A.NON_NEGATIVE_INT,
        default=_env("HIVE_SNAPSHOT_EVENTS", 100_000),
        help="write a snapshot of the folded state after this many events, so a start replays"
        " only the events after it (0: not by count)",
    )
    p.add_argument(
        "--snapshot-interval",
        type=A.NON_NEGATIVE,
        default=_env("HIVE_SNAPSHOT_INTERVAL", 300.0),
        help="seconds after which a snapshot is written if any event came since (0: not by time);"
        " one more is written at a clean stop",
    )
    p.add_argument(
        "--send-timeout",
        type=A.SECONDS,
        default=_env("HIVE_SEND_TIMEOUT", 10.0),
        help="seconds a write may wait on a client's backed-up socket before it is cut off",
    )
    p.add_argument(
        "--header-timeout",
        type=A.NON_NEGATIVE,
        default=_env("HIVE_HEADER_TIMEOUT", 10.0),
        help="seconds a client has to send a request's headers (0: no limit)",
    )
    p.add_argument(
        "--keepalive-timeout",
        type=A.SECONDS,
        default=_env("HIVE_KEEPALIVE_TIMEOUT", 75.0),
        help="seconds an idle keep-alive HTTP connection stays open",
    )
    p.add_argument(
        "--max-connections-per-address",
        type=A.NON_NEGATIVE_INT,
        default=_env("HIVE_MAX_CONNECTIONS_PER_ADDRESS", 512),
        help="open TCP connections per client address (0: no limit); the next one gets 503",
    )
    p.add_argument(
        "--bus",
        default=_env("HIVE_BUS", "memory"),
        help="event bus between replicas (with --db postgresql://): memory (one process), "
        "redis://host:port[/db][?stream=name] (Redis Streams) or nats://host:port[?stream=NAME] (NATS JetStream); "
        "the default stream is derived from the cluster id",
    )
    p.add_argument("--replica-id", default=_env("HIVE_REPLICA_ID", None))
    p.add_argument(
        "--advertise",
        default=_env("HIVE_ADVERTISE", None),
        help="URL other replicas reach this one at (default http://127.0.0.1:PORT)",
    )
    p.add_argument(
        "--cluster-secret",
        default=_env("HIVE_CLUSTER_SECRET", None),
        help="shared secret of the replicas (required with a PostgreSQL --db)",
    )
    p.add_argument(
        "--leader-grace",
        type=A.NON_NEGATIVE,
        default=_env("HIVE_LEADER_GRACE", 1.5),
        metavar="SECONDS",
        help="cluster: a replica claims no hive for SECONDS after it registered, and takes a hive"
        " whose preferred leader is another live replica only after its lock stayed free for SECONDS",
    )
    p.add_argument(
        "--prices",
        default=_env("HIVE_PRICES", None),
        metavar="FILE",
        help='model prices, TOML (.toml) or JSON: {"models": {"<model>": {"input_per_million": USD, '
        '"output_per_million": USD}, "*": {...}}}; "*" prices every model not listed',
    )
    p.add_argument(
        "--namespace",
        action="append",
        metavar="NAME",
        default=_list_env("HIVE_NAMESPACES"),
        help="serve an independent hive at /ns/NAME/... besides the default one (repeatable;"
        " [a-z0-9][a-z0-9-]{0,62}); its log is beside the default's (hive.ns-NAME.db) or in its"
        " own PostgreSQL schema, its tokens its own",
    )
    p.add_argument("--log-level", default=_env("HIVE_LOG_LEVEL", "INFO"))
    p.set_defaults(func=cmd_serve)


def build_config(args: argparse.Namespace) -> Any:
    from ..core.coordination import CoordinationConfig
    from ..core.hive import HiveConfig
    from ..core.learning import LearningConfig
    from ..monitor.resources import Thresholds
    from ..server.config import ServerConfig, load_prices

    prices = load_prices(args.prices) if args.prices else {}
    return ServerConfig(
        host=args.host,
        port=args.port,
        db=args.db,
        hive=HiveConfig(
            heartbeat_timeout=args.heartbeat_timeout,
            retry_base_seconds=args.retry_base,
            retry_cap_seconds=args.retry_cap,
            retain_finished=args.retain_finished,
            prices=prices,
            remember_evicted=args.remember_evicted,
            max_rate_limited=args.max_rate_limited,
            learning=LearningConfig(
                enabled=not args.no_learning,
                min_outcomes=args.learning_min_outcomes,
                interval_seconds=args.learning_interval,
            ),
            coordination=CoordinationConfig(
                interval_seconds=args.rebalance_interval, min_unstarted_seconds=args.rebalance_min_unstarted
            ),
        ),
        status_interval=args.status_interval,
        resource_interval=args.resource_interval,
        thresholds=Thresholds(cpu=args.cpu_threshold, memory=args.memory_threshold, disk=args.disk_threshold),
        store_busy_timeout_ms=int(args.store_busy_timeout * 1000),
        admin_token=args.admin_token,
        auth=args.auth,
        allowed_origins=list(args.allowed_origin or []),
        cors_origins=list(args.cors_origin or []),
        rate_limit_per_second=args.rate_limit,
        max_ws_per_client=args.max_ws_per_client,
        client_buffer_bytes=args.client_buffer,
        send_timeout=args.send_timeout,
        heap_trim_interval=args.heap_trim_interval,
        snapshot_events=args.snapshot_events,
        snapshot_interval=args.snapshot_interval,
        header_timeout=args.header_timeout,
        keepalive_timeout=args.keepalive_timeout,
        max_connections_per_address=args.max_connections_per_address,
        bus=args.bus,
        replica_id=args.replica_id,
        advertise=args.advertise,
        cluster_secret=args.cluster_secret,
        leader_grace=args.leader_grace,
        agent_heartbeat_interval=args.agent_heartbeat_interval,
        ws_heartbeat=args.ws_heartbeat,
        subscriber_buffer=args.subscriber_buffer,
        max_body_bytes=args.max_body,
        max_frame_bytes=args.max_frame,
        demo_agents=not args.no_demo,
        demo_workload=not args.no_demo and not args.no_demo_workload,
        namespaces=list(args.namespace or []),
    )


class PortInUse(Exception):
    """The port to listen on is taken (by another hub, most likely)."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} is in use; try --port or HIVE_PORT")


def port_free(host: str, port: int) -> bool:
    """Can ``host:port`` be bound now (as the hub binds it, with SO_REUSEADDR)?"""
    import socket

    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return True  # let the real bind report it
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
    return True


#: seconds a request still in flight at shutdown may take before it is cancelled
SHUTDOWN_GRACE = 3.0


async def run_server(config: Any) -> None:
    from aiohttp import web

    from ..server.app import create_app
    from ..server.connections import ConnectionGuard, GuardedRunner

    if config.port and not port_free(config.host, config.port):
        # before the app starts: a second hub on the same database must not open it
        raise PortInUse(config.port)
    app = create_app(config)
    guard = ConnectionGuard(config.header_timeout, config.max_connections_per_address)
    # On SIGTERM the hub closes its sockets and parked claims itself (``_shutdown`` in
    # server/app.py); a request still running after SHUTDOWN_GRACE seconds is cancelled,
    # so a stop never waits out aiohttp's default of 60 s.
    runner = GuardedRunner(
        app,
        guard,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=config.keepalive_timeout,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(config.port) from None
        raise
    log = logging.getLogger("hivehub")
    log.info("Hive Hub listening on http://%s:%d (db %s)", config.host, config.port, config.db)
    print(f"hive: serving on http://{config.host}:{config.port}  (ws: /ws, agents: /agents/ws)", flush=True)
    for name in config.namespaces:
        print(f"hive: namespace {name} at http://{config.host}:{config.port}/ns/{name}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if config.demo_agents:
        from ..server.demo import start_demo

        start_demo(app, config)
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from ..server.config import PricesError
    from ..server.namespaces import derive_db, validate_names

    try:
        config = build_config(args)
    except PricesError as exc:
        print(f"error: --prices: {exc}", file=sys.stderr)
        return 2
    try:
        for name in validate_names(config.namespaces):
            derive_db(config.db, name)  # a name too long for its schema
    except ValueError as exc:
        print(f"error: --namespace: {exc}", file=sys.stderr)
        return 2
    if config.bus not in ("", "memory", "memory:") and not config.db.startswith(
        ("postgresql://", "postgres://")
    ):
        print(
            f"error: --bus {config.bus.split('?')[0]} carries a PostgreSQL log between replicas;"
            " use it with --db postgresql://... (one process needs no bus)",
            file=sys.stderr,
        )
        return 2
    if config.db.startswith(("postgresql://", "postgres://")):
        if not config.cluster_secret:
            print(
                "error: a PostgreSQL --db runs the hub as a cluster replica: set --cluster-secret (or HIVE_CLUSTER_SECRET)",
                file=sys.stderr,
            )
            return 2
        if config.demo_agents:
            # every replica would start the same demo agents; run them with 'hive agent --demo'
            config.demo_agents = config.demo_workload = False
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run_server(config))
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
