"""What ``make run`` and ``make test`` install and run (``make -n``: the commands,
none executed): the hub's own dependencies for ``make run``, the test tools only for
``make test``, and ``make run PORT=N`` passing the port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ("pytest", "playwright", "mypy", "ruff", "schemathesis")
#: never created: make -n only prints (a path without a tool's name in it)
VENV = Path("/tmp/hive-dry-run-venv")


def dry_run(*args: str, venv: Path) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed (scripts/system-deps.sh installs it)")
    out = subprocess.run(
        ["make", "-n", "-B", *args, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_run_installs_only_what_the_hub_needs() -> None:
    out = dry_run("run", venv=VENV)
    installs = [line for line in out.splitlines() if "pip install" in line]
    assert any(line.rstrip().endswith("install -q -e .") for line in installs), installs
    assert not any("[test]" in line or "requirements" in line for line in installs), installs
    assert not any(tool in line for line in installs for tool in TEST_TOOLS), installs
    assert "bin/hive serve" in out
    # and the hub's own dependencies name none of the test tools
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.split("=")[0].split("[")[0].strip() in TEST_TOOLS], deps


def test_make_test_installs_the_test_tools() -> None:
    out = dry_run("test", venv=VENV)
    assert "install -q -e '.[test]'" in out
    assert "pytest" in out


def test_make_run_port() -> None:
    out = dry_run("run", "PORT=3005", venv=VENV)
    assert "hive serve --port 3005" in out
