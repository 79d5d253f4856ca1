"""The generated reference docs (docs/rest.md, events.md, configuration.md) match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HINT = "run .venv/bin/python scripts/gen_docs.py"


def test_generated_docs_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{HINT}\n{proc.stdout}{proc.stderr}"


def test_every_route_is_documented() -> None:
    import hivehub.server.observability  # noqa: F401  (registers its routes)
    from hivehub.server.rest import ROUTES

    text = (DOCS / "rest.md").read_text(encoding="utf-8")
    missing = [f"{r.method} {r.path}" for r in ROUTES if f"### {r.method} {r.path}\n" not in text]
    assert not missing, f"routes missing from docs/rest.md: {missing}; {HINT}"


def test_every_event_type_is_documented() -> None:
    from hivehub.core.events import DATA_TYPES

    text = (DOCS / "events.md").read_text(encoding="utf-8")
    missing = [name for name in DATA_TYPES if f"### `{name}`\n" not in text]
    assert not missing, f"event types missing from docs/events.md: {missing}; {HINT}"
