"""The JavaScript client's own tests (``node --test tests/js/``), run from pytest.

They start real hubs (``python -m hivehub serve``) with this interpreter and
exercise REST, the resumable stream, control commands and tokens, plus the
dashboard's state mirror against the hub's projection. Needs Node.js 20+ and
npm (``ws`` is installed into ``clients/js/node_modules`` when missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.hubproc import ROOT

CLIENT = ROOT / "clients" / "js"


@pytest.mark.timeout(900)
def test_js_client() -> None:
    node = shutil.which("node")
    assert node, "Node.js 20+ is needed to test the JavaScript client (node is not on PATH)"
    if not (CLIENT / "node_modules" / "ws").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install the JavaScript client's dev dependencies"
        r = subprocess.run(
            [npm, "install", "--prefix", str(CLIENT), "--no-audit", "--no-fund"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, (
            f"npm install --prefix clients/js failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
        )
    env = {**os.environ, "HIVE_PYTHON": sys.executable}
    r = subprocess.run(
        [node, "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, (
        f"node --test tests/js/ exited with {r.returncode}:\n{r.stdout[-30000:]}\n{r.stderr[-5000:]}"
    )
