"""Server settings, from CLI flags and ``HIVE_*`` environment variables."""

from __future__ import annotations

import json
import tomllib
from typing import Any

from msgspec import Struct, field

from ..core.hive import HiveConfig
from ..core.model import ModelPrice
from ..monitor.resources import Thresholds


class ServerConfig(Struct, kw_only=True):
    #: loopback by default: with auth off, only this machine can reach the hub
    host: str = "127.0.0.1"
    port: int = 3001
    db: str = "./data/hive.db"
    hive: HiveConfig = HiveConfig()
    #: how often agents should heartbeat (told to them at registration)
    agent_heartbeat_interval: float = 5.0
    #: protocol ping on /ws and /agents/ws; a peer that misses a pong is closed
    ws_heartbeat: float = 30.0
    max_body_bytes: int = 1 << 20
    max_frame_bytes: int = 1 << 20
    max_json_depth: int = 64
    #: messages buffered per /ws subscriber before it is cut off as too slow
    subscriber_buffer: int = 10_000
    #: longest a Tick may wait (retries and timeouts fire at most this late)
    tick_max_seconds: float = 0.25
    max_claim_wait: float = 60.0
    status_interval: float = 5.0
    resource_interval: float = 5.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    store_busy_timeout_ms: int = 5000
    #: admin token from the environment (HIVE_ADMIN_TOKEN); any token turns auth on
    admin_token: str | None = None
    #: "auto": on once any token or admin token exists, and then for good (persisted);
    #: "on": refuse anonymous requests from the start; "off": everyone is admin (logged)
    auth: str = "auto"
    #: browser origins allowed on REST and both WebSockets (the hub's own always is); "*" for any
    allowed_origins: list[str] = field(default_factory=list)
    #: origins that get CORS headers on REST responses
    cors_origins: list[str] = field(default_factory=list)
    #: per-client limit on mutating REST requests and /ws control commands (0: off).
    #: None ("auto"): AUTO_RATE_LIMIT per token while auth is on, no limit while it is
    #: off (docs/security.md, "Rate limits": why)
    rate_limit_per_second: float | None = None
    #: bucket size; None: twice the rate
    rate_limit_burst: float | None = None
    #: open WebSockets per client; None (auto): AUTO_WS_PER_CLIENT per token while
    #: auth is on, none while it is off (server/clientlimits.py)
    max_ws_per_client: int | None = None
    #: bytes the hub may hold for one client (queued events and replies, snapshot and
    #: replay pages, agent frames, its socket's write buffer); over it, it is cut off
    client_buffer_bytes: int = 8 << 20
    #: longest a write may wait on a client's backed-up socket before it is cut off
    send_timeout: float = 10.0
    #: a request's headers must be complete this many seconds after the connection
    #: opened or the request's first byte (slowloris)
    header_timeout: float = 10.0
    #: seconds between handing freed heap pages back to the OS (glibc ``malloc_trim``;
    #: 0: never), so RSS follows the memory in use (server/heap.py)
    heap_trim_interval: float = 10.0
    #: a snapshot of the folded state is written after this many events (0: never by
    #: count) ... (server/snapshots.py; start-up folds only the events after the newest)
    snapshot_events: int = 100_000
    #: ... or this many seconds after the last one, if any event came since (0: never
    #: by time); one more is written at a clean stop
    snapshot_interval: float = 300.0
    #: an idle keep-alive HTTP connection is closed after this many seconds
    keepalive_timeout: float = 75.0
    #: open TCP connections per client address (0: no limit); the next gets 503
    max_connections_per_address: int = 512
    #: event bus for several replicas: "memory" (one process), redis://host:port[/db][?stream=name]
    #: or nats://host:port[?stream=NAME][&subject=name]; bound to the cluster id (bus/base.py)
    bus: str = "memory"
    replica_id: str | None = None
    #: the URL other replicas use to reach this one (forwarded commands)
    advertise: str | None = None
    #: shared by the replicas; authenticates forwarded commands
    cluster_secret: str | None = None
    #: seconds a replica settles after it registered before it claims a hive, and a
    #: hive's lock stays free before a replica other than its preferred leader takes
    #: it (server/placement.py)
    leader_grace: float = 1.5
    demo_agents: bool = True
    demo_workload: bool = True
    #: the namespaces served besides the default, each a hive of its own at
    #: ``/ns/NAME/...`` (``hive serve --namespace``; ``server/namespaces.py``)
    namespaces: list[str] = field(default_factory=list)
    #: the namespace this app is (set by ``namespaces.derive_config``); None: the default
    namespace: str | None = None


# ----------------------------------------------------------------- the price table (--prices)


#: the format of ``--prices`` (rendered in docs/configuration.md by scripts/gen_docs.py)
PRICES_DOC = """\
### The price table: `--prices FILE`

`hive serve --prices FILE` (or `HIVE_PRICES`) reads the USD price of each model, per
million tokens, so the hub can put a cost on the usage agents report
(`task_completed.usage.cost_usd`, `llm` in `/api/hive/status`, budgets in USD). A
file named `*.toml` is read as TOML, any other as JSON:

```toml
[models."gpt-4o-mini"]
input_per_million = 0.15    # prompt tokens
output_per_million = 0.6    # completion tokens

[models."*"]                # every model not listed
input_per_million = 1.0
output_per_million = 2.0
```

```json
{"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6},
            "*": {"input_per_million": 1.0, "output_per_million": 2.0}}}
```

cost = prompt_tokens × input_per_million / 10⁶ + completion_tokens × output_per_million / 10⁶.
A model with no entry and no `"*"` has no price: its tokens count as `unpriced_tokens`.
The cost is computed when the usage is reported and logged with it, so changing the
table later does not change past costs. A file that cannot be read or parsed, a
missing or non-numeric price, a negative one or an unknown field stops the hub with
exit status 2 and a message naming the file, the line and the reason.
"""


class PricesError(ValueError):
    """A ``--prices`` file that cannot be used; the message names the file, the line
    (when known) and the reason."""


def _line_of(text: str, needle: str) -> int | None:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def load_prices(path: str) -> dict[str, ModelPrice]:
    """The price table of ``hive serve --prices FILE`` (``HIVE_PRICES``).

    TOML (``.toml``) or JSON (any other name): ``{"models": {"<model>":
    {"input_per_million": USD, "output_per_million": USD}, "*": {...}}}``; a ``"*"``
    entry prices every model not listed. Raises PricesError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise PricesError(f"{path}: cannot read the price table: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PricesError(f"{path}: not UTF-8 text") from None
    doc: Any
    if path.endswith(".toml"):
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PricesError(f"{path}: not valid TOML: {exc}") from None
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PricesError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise PricesError(f'{path}: expected a table "models" of model name -> prices')
    out: dict[str, ModelPrice] = {}
    for model, entry in doc["models"].items():
        line = _line_of(text, f'"{model}"') or _line_of(text, model)
        where = f"{path}: line {line}" if line else path
        if not isinstance(entry, dict):
            raise PricesError(f"{where}: model {model!r}: expected input_per_million and output_per_million")
        for key in ("input_per_million", "output_per_million"):
            v = entry.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise PricesError(
                    f"{where}: model {model!r}: {key} must be a number of USD per million tokens"
                )
            if v < 0 or v != v or v == float("inf"):
                raise PricesError(f"{where}: model {model!r}: {key} must be a finite price >= 0, not {v}")
        unknown = sorted(set(entry) - {"input_per_million", "output_per_million"})
        if unknown:
            raise PricesError(f"{where}: model {model!r}: unknown field {unknown[0]!r}")
        out[str(model)] = ModelPrice(float(entry["input_per_million"]), float(entry["output_per_million"]))
    return out
