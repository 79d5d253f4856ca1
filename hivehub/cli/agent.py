"""``hive agent``: run an agent from the command line.

::

    hive agent --url ws://127.0.0.1:3001 --name Worker-1 --type worker \\
        --capability data_processing:0.85 --max-concurrent 2 \\
        --handler mypkg.handlers:process            # "*": every task type
        --handler text_analysis=mypkg.text:analyze  # one task type
    hive agent --demo --name Generalist-1           # the built-in demo handlers

Environment: ``HIVE_URL`` (``http://host:port`` or ``ws://host:port``), ``HIVE_TOKEN``
and ``HIVE_AGENT_STATE_DIR`` (where agent ids are kept between runs, one file per
agent name; ``--no-state`` keeps none).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import argtypes as A
from ..agent.base import BaseAgent, RegistrationError
from ..agent.identity import default_state_dir
from ..agent.options import DEFAULT_PREFETCH, AgentOptions
from ..client.urls import AGENTS_WS, http_url, ws_url
from ..core.model import MAX_PREFETCH

__all__ = ["build_parser", "cli_main", "load_handler", "parse_capability", "parse_handler"]

DEFAULT_URL = "ws://127.0.0.1:3001"
AGENT_TYPES = ("worker", "coordinator", "specialist", "learner")


def parse_capability(text: str) -> dict[str, Any]:
    """``name:proficiency[:learning_rate]`` -> Capability fields (``name`` alone: 0.5)."""
    parts = text.split(":")
    name = parts[0].strip()
    if not name or len(parts) > 3:
        raise argparse.ArgumentTypeError(f"expected NAME:PROFICIENCY[:LEARNING_RATE], got {text!r}")
    out: dict[str, Any] = {"name": name, "proficiency": 0.5}
    for key, raw in zip(("proficiency", "learning_rate"), parts[1:], strict=False):
        try:
            value = float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key} of {name!r} is not a number: {raw!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{key} of {name!r} must be within 0..1, got {value}")
        out[key] = value
    return out


def load_handler(ref: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (the attribute may be dotted: ``mod:Class.method``)."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected package.module:function, got {ref!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{ref} is not callable")
    return obj  # type: ignore[no-any-return]


def parse_handler(text: str) -> tuple[str, str]:
    """``[TYPE=]package.module:function`` -> ``(task_type, reference)``; no TYPE means ``"*"``."""
    task_type, sep, ref = text.partition("=")
    if not sep:
        return "*", text.strip()
    if not task_type.strip():
        raise argparse.ArgumentTypeError(f"empty task type in {text!r}")
    return task_type.strip(), ref.strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hive agent",
        description="Run a Hive Hub agent that executes tasks with Python handlers.",
        epilog="Environment: HIVE_URL (http://host:port or ws://host:port), HIVE_TOKEN.",
    )
    p.add_argument("--url", default=None, help=f"hub URL (default: $HIVE_URL or {DEFAULT_URL})")
    p.add_argument("--token", default=None, help="access token (default: $HIVE_TOKEN)")
    p.add_argument("--name", default=None, help="agent name (default: agent-HOSTNAME)")
    p.add_argument("--type", default="worker", choices=AGENT_TYPES, help="agent type (default: worker)")
    p.add_argument(
        "--capability",
        action="append",
        type=parse_capability,
        default=[],
        metavar="NAME:PROFICIENCY[:LEARNING_RATE]",
        help="a capability, e.g. data_processing:0.85 (repeatable)",
    )
    p.add_argument(
        "--max-concurrent", type=A.POSITIVE_INT, default=1, metavar="N", help="tasks run at once (default: 1)"
    )
    p.add_argument(
        "--prefetch",
        type=A.integer(0, MAX_PREFETCH),
        default=DEFAULT_PREFETCH,
        metavar="N",
        help=f"tasks the hub may assign ahead, queued until a slot frees; it uses fewer for slow"
        f" tasks and takes back unstarted ones for idle agents (0: none; default: {DEFAULT_PREFETCH};"
        " WebSocket only)",
    )
    p.add_argument(
        "--handler",
        action="append",
        type=parse_handler,
        default=[],
        metavar="[TYPE=]MODULE:FUNCTION",
        help="handler for TYPE, or for every type without TYPE= (repeatable)",
    )
    p.add_argument("--demo", action="store_true", help="register the built-in demo handlers")
    p.add_argument("--id", dest="agent_id", default=None, help="resume this agent id")
    p.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="keep the agent id between runs in DIR/NAME.id (default: $HIVE_AGENT_STATE_DIR, "
        "else $XDG_STATE_HOME/hivehub/agents, else ~/.local/state/hivehub/agents)",
    )
    p.add_argument("--id-file", default=None, metavar="FILE", help="keep the agent id in FILE instead")
    p.add_argument(
        "--no-state", action="store_true", help="keep no id between runs (a restart is a new agent)"
    )
    p.add_argument("--pull", action="store_true", help="use the HTTP pull transport instead of WebSocket")
    p.add_argument(
        "--heartbeat-interval", type=A.SECONDS, default=None, metavar="S", help="default: the hub's"
    )
    p.add_argument(
        "--grace", type=A.NON_NEGATIVE, default=10.0, metavar="S", help="shutdown grace period (default: 10)"
    )
    p.add_argument(
        "--llm-base-url",
        default=None,
        metavar="URL",
        help="an OpenAI-compatible endpoint (.../v1): "
        "adds the llm_handler for every task type without a --handler",
    )
    p.add_argument("--llm-model", default=None, metavar="NAME", help="the model to ask (with --llm-base-url)")
    p.add_argument("--llm-api-key-env", default=None, metavar="VAR", help="the env var holding the API key")
    p.add_argument("--llm-system", default=None, metavar="TEXT", help="the system prompt of the llm handler")
    p.add_argument(
        "--llm-max-concurrent",
        type=A.POSITIVE_INT,
        default=None,
        metavar="N",
        help="model calls in flight at once (default: no limit beyond --max-concurrent); "
        "llama-cpp-python's server serves one stream at a time: give it 1 there",
    )
    p.add_argument("--quota", default=None, metavar="NAME", help="the quota pool its model calls draw from")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    from .helptext import polish

    polish(p, "agent")
    return p


def make_agent(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> BaseAgent:
    """Build the (not started) agent described by parsed arguments."""
    from ..agent.pull import PullAgent
    from ..agent.ws import Agent
    from ..demo import DEMO_HANDLERS

    parser = parser or build_parser()
    url = args.url or os.environ.get("HIVE_URL") or DEFAULT_URL
    token = args.token or os.environ.get("HIVE_TOKEN") or None
    try:
        # several replicas may be listed, comma-separated (WebSocket transport)
        url = (
            http_url(url)
            if args.pull
            else ",".join(ws_url(u.strip(), AGENTS_WS) for u in url.split(",") if u.strip())
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.max_concurrent < 1:
        parser.error("--max-concurrent must be >= 1")
    handlers: dict[str, Callable[..., Any]] = {}
    if args.demo:
        handlers.update(DEMO_HANDLERS)
    llm = None
    if args.llm_base_url is not None:
        from ..agent.llm import LLMClient, llm_handler

        if not args.llm_base_url.startswith(("http://", "https://")):
            parser.error("--llm-base-url must be an http:// or https:// URL")
        if not args.llm_model:
            parser.error("--llm-base-url needs --llm-model")
        key = None
        if args.llm_api_key_env:
            key = os.environ.get(args.llm_api_key_env)
            if not key:
                parser.error(f"--llm-api-key-env: ${args.llm_api_key_env} is not set")
        llm = LLMClient(args.llm_base_url, key, args.llm_model, max_concurrent=args.llm_max_concurrent)
        handlers.setdefault("*", llm_handler(llm, system=args.llm_system))
    elif args.llm_model or args.llm_api_key_env or args.llm_system or args.llm_max_concurrent:
        parser.error(
            "--llm-model, --llm-api-key-env, --llm-system and --llm-max-concurrent need --llm-base-url"
        )
    if args.quota is not None and not (0 < len(args.quota) <= 200):
        parser.error("--quota must be a name of 1..200 characters")
    for task_type, ref in args.handler:
        try:
            handlers[task_type] = load_handler(ref)
        except ValueError as exc:
            parser.error(f"--handler {ref}: {exc}")
    if not handlers:
        parser.error("give at least one --handler, --demo or --llm-base-url")
    capabilities = {c["name"]: c for c in args.capability}
    if not capabilities:
        # Announce what the handlers can do, so the hub can match tasks to us.
        default = 0.6 if args.demo else 0.5
        capabilities = {t: {"name": t, "proficiency": default} for t in handlers if t != "*"}
    if args.no_state and (args.state_dir or args.id_file):
        parser.error("--no-state excludes --state-dir and --id-file")
    # A restarted `hive agent` is the same agent: its id is kept per name (identity.py).
    state_dir = None if args.no_state or args.id_file else (args.state_dir or default_state_dir())
    cls = PullAgent if args.pull else Agent
    options = AgentOptions(
        type=args.type,
        max_concurrent_tasks=args.max_concurrent,
        agent_id=args.agent_id,
        token=token,
        heartbeat_interval=args.heartbeat_interval,
        state_dir=state_dir,
        id_file=None if args.no_state else args.id_file,
        llm=llm,
        quota=args.quota,
        prefetch=args.prefetch,
    )
    agent = cls(
        args.name or f"agent-{socket.gethostname()}", list(capabilities.values()), url=url, options=options
    )
    for task_type, fn in handlers.items():
        agent.add_handler(task_type, fn)
    return agent


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hive agent``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    agent = make_agent(args, parser)
    kind = "pull" if args.pull else "push"
    print(
        f"hive agent {agent.name!r} ({agent.type}, {kind}) -> {getattr(agent, 'url', None) or getattr(agent, 'base_url', '')}"
        f"; handlers: {', '.join(sorted(agent.handlers))}",
        file=sys.stderr,
    )
    try:
        agent.run_forever(grace=args.grace)
    except RegistrationError as exc:
        print(f"hive agent: the hub refused the registration: {exc}", file=sys.stderr)
        return 1
    return 0
