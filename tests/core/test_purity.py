"""The core is I/O-free: no event loop, network, database, or clock."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hivehub.core

CORE = Path(hivehub.core.__file__).parent
REPO = CORE.parents[1]
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(CORE)]))
BLOCKED = ("asyncio", "aiohttp", "sqlite3", "socket", "_socket", "_asyncio", "_sqlite3", "ssl", "selectors")


def test_core_modules_are_the_expected_ones() -> None:
    assert {"commands", "errors", "events", "hive", "model", "policies"} <= set(MODULES)


def test_importing_the_core_needs_no_io_modules() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys

        BLOCKED = {BLOCKED!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked import of {{name}}")
                return None

        # modules the interpreter preloaded would bypass the finder: drop them first
        for name in list(sys.modules):
            if name.split(".")[0] in BLOCKED:
                del sys.modules[name]
        sys.meta_path.insert(0, Block())

        for name in ["hivehub.core"] + ["hivehub.core." + m for m in {MODULES!r}]:
            importlib.import_module(name)

        # exercise it a little: still nothing blocked gets pulled in lazily
        import random
        from datetime import datetime, timezone
        from hivehub.core.hive import Hive
        from hivehub.core.commands import AgentSpec, RegisterAgent, SubmitTask, TaskSpec, Tick
        from hivehub.core.events import decode_event, encode_event
        n = iter(range(10**6))
        h = Hive(new_id=lambda: f"id-{{next(n)}}", rng=random.Random(0))
        now = datetime(2024, 1, 1, tzinfo=timezone.utc)
        out = h.handle(RegisterAgent(spec=AgentSpec(name="a", id="a")), now)
        out += h.handle(SubmitTask(spec=TaskSpec(id="t")), now)
        out += h.handle(Tick(), now)
        for e in out:
            decode_event(encode_event(e))
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok", len(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def test_blocking_finder_really_blocks() -> None:
    """Guard against a vacuous purity test: the same finder rejects a blocked import."""
    script = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {BLOCKED!r}
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(name)
        for name in list(sys.modules):
            if name.split(".")[0] in BLOCKED:
                del sys.modules[name]
        sys.meta_path.insert(0, Block())
        try:
            import asyncio  # noqa: F401
        except ImportError:
            print("blocked")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "blocked", proc.stderr


CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("time", "sleep"),
}
FORBIDDEN_IMPORTS = {"time", "asyncio", "aiohttp", "sqlite3", "socket", "os", "threading", "subprocess"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


@pytest.mark.parametrize("module", MODULES)
def test_core_never_reads_the_clock(module: str) -> None:
    source = (CORE / f"{module}.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            parts = name.split(".")
            if len(parts) >= 2 and (parts[-2], parts[-1]) in CLOCK_CALLS:
                problems.append(f"line {node.lineno}: {name}()")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_IMPORTS:
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_IMPORTS:
                problems.append(f"line {node.lineno}: from {node.module} import ...")
            if node.module == "datetime":
                for alias in node.names:
                    if alias.name in ("now", "utcnow"):
                        problems.append(f"line {node.lineno}: from datetime import {alias.name}")
    # belt and braces: a plain text search as well
    for pattern in (".now(", ".utcnow(", "time.time(", "monotonic(", "date.today("):
        if pattern in source:
            problems.append(f"text contains {pattern!r}")
    assert problems == []


def test_clock_check_is_not_vacuous() -> None:
    tree = ast.parse(
        "import time\nfrom datetime import datetime\nx = datetime.now(tz)\ny = time.monotonic()\n"
    )
    calls = [_dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert {tuple(c.split(".")[-2:]) for c in calls} <= CLOCK_CALLS
    assert len(calls) == 2


def test_default_rng_and_ids_are_only_fallbacks() -> None:
    """A Hive built with injected id factory and rng never touches uuid or the global random."""
    import random
    import uuid
    from unittest import mock

    from hivehub.core.commands import AgentSpec, FailTask, RegisterAgent, SubmitTask, TaskSpec
    from hivehub.core.hive import Hive
    from hivehub.core.model import TaskError

    from ._harness import Ids, at

    with (
        mock.patch.object(uuid, "uuid4", side_effect=AssertionError("uuid4 used")),
        mock.patch.object(random, "random", side_effect=AssertionError("global random used")),
    ):
        h = Hive(new_id=Ids(), rng=random.Random(0))
        h.handle(RegisterAgent(spec=AgentSpec(name="a", id="a")), at(0))
        h.handle(SubmitTask(spec=TaskSpec(id="t")), at(0))
        out = h.handle(FailTask(task_id="t", agent_id="a", error=TaskError("E", "e"), attempt=1), at(1))
        assert any(e.type == "task_failed" for e in out)
