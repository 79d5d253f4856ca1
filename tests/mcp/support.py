"""The ``mcp`` package's own clients, connected to a real hub."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.hubproc import ROOT
from tests.mcp.conftest import CAPABILITY


@asynccontextmanager
async def http_client(url: str, token: str | None = None, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client at ``url/mcp``, with ``Authorization: Bearer token``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


@asynccontextmanager
async def stdio_client(url: str, token: str | None = None) -> AsyncIterator[Client]:
    """The SDK's stdio client running ``hive mcp --url URL [--token T]`` as its subprocess."""
    args = ["-m", "hivehub", "mcp", "--url", url] + (["--token", token] if token else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIVE_")}
    env["PYTHONPATH"] = str(ROOT)
    params = StdioServerParameters(command=sys.executable, args=args, env=env, cwd=str(ROOT))
    async with Client(params) as client:
        yield client


def gate(d: Path, name: str, released: bool = True) -> dict[str, Any]:
    """``submit_task`` arguments for a task the ``gate`` handler runs: it reports
    progress, then waits for the ``release`` file (made now if ``released``)."""
    release = d / f"{name}.release"
    if released:
        release.write_text("go")
    return {
        "type": "gate",
        "required_capabilities": {CAPABILITY: 0.5},
        "input": {
            "release": str(release),
            "started": str(d / f"{name}.started"),
            "cancelled_marker": str(d / f"{name}.cancelled"),
        },
    }


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error(result: Any) -> dict[str, Any]:
    """The error of a failed tool call: ``{code, message, details}``."""
    assert result.is_error, result.structured_content
    err = result.structured_content["error"]
    assert err["code"] in result.content[0].text  # the model reads the same code
    return err


class Progress:
    """A ``progress_callback`` that keeps what it is sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.seen]
