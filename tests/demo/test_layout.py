"""The demo is a user of the SDK, not part of it: importing the agent SDK, the client
or the server loads neither the demo nor the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sdk_client_and_server_do_not_load_the_demo_or_the_cli() -> None:
    code = (
        "import sys, hivehub.agent, hivehub.client, hivehub.server.app\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[:2] in (['hivehub', 'demo'], ['hivehub', 'cli']))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_server_starts_the_demo_from_hivehub_demo() -> None:
    source = (ROOT / "hivehub" / "server" / "demo.py").read_text(encoding="utf-8")
    assert "from ..demo import" in source and "agent.demo" not in source
    assert not (ROOT / "hivehub" / "agent" / "demo.py").exists()
