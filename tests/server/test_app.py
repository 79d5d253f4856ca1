"""The app in process: built with typed keys only; adapters read the core through the view."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

from aiohttp.web_exceptions import NotAppKeyWarning

from hivehub.server.app import create_app
from hivehub.server.config import ServerConfig
from hivehub.server.hub import HUB, Hub
from hivehub.store.memory import MemoryEventStore

ROOT = Path(__file__).resolve().parents[2] / "hivehub"


def test_building_the_app_raises_no_not_app_key_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = create_app(ServerConfig(db="memory", auth="off"), store=MemoryEventStore())
    assert [w for w in caught if issubclass(w.category, NotAppKeyWarning)] == []
    hub = app[HUB]
    assert isinstance(hub, Hub) and hub.stream.service is hub.service and hub.view.service is hub.service


def test_no_adapter_reads_the_cores_attributes() -> None:
    """Only ``server/view.py`` (the reader) and ``server/service.py`` (its owner) hold the hive."""
    pattern = re.compile(r"hive\._|\.hive\.tasks|\.hive\.agents")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for d in ("server", "monitor")
        for p in sorted((ROOT / d).glob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_the_protocol_package_imports_only_msgspec_the_stdlib_and_the_core() -> None:
    import sys

    for p in sorted((ROOT / "protocol").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: within protocol, or ..core
                    assert node.level == 1 or (node.module or "").startswith("core"), (p.name, node.module)
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "msgspec" or top in sys.stdlib_module_names, (p.name, name)


_LAZY_SDKS = """
import asyncio, sys
from aiohttp.test_utils import TestClient, TestServer
from hivehub.server.app import create_app
from hivehub.server.config import ServerConfig
from hivehub.store.memory import MemoryEventStore

def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & {"mcp", "a2a", "starlette"})

async def main():
    app = create_app(ServerConfig(db="memory", auth="off"), store=MemoryEventStore())
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/health")).status == 200
        print(loaded())
        assert (await c.get("/.well-known/agent-card.json")).status == 200
        print(loaded())
        r = await c.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                         headers={"accept": "application/json, text/event-stream"})
        assert r.status == 200, r.status
        print(loaded())

asyncio.run(main())
"""


def test_the_mcp_and_a2a_sdks_load_with_the_first_request_to_them_not_at_start() -> None:
    # in a fresh interpreter: this one has imported them for other tests
    out = subprocess.run(
        [sys.executable, "-c", _LAZY_SDKS], capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['a2a', 'starlette']", "['a2a', 'mcp', 'starlette']"]
