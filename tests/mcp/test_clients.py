"""hivehub.mcp.clients: the tools' HiveClient kept per (URL, token), least recently
used first out, closed on eviction (once no call uses it) and at shutdown; a token
revoked after its client was cached fails on its next call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hivehub.mcp.clients import ClientCache
from tests.hubproc import ROOT, Hub, wait_for
from tests.mcp.conftest import make_token
from tests.mcp.support import error, http_client, ok

Secured = tuple[Hub, Path, dict[str, str]]


async def test_clients_are_reused_evicted_least_recent_first_and_closed(hive: tuple[Hub, Path]) -> None:
    hub, _ = hive
    cache = ClientCache(size=2)
    seen = {}
    for token in ("a", "b", "a"):  # "a" used last: "b" is the least recent
        async with cache.client(hub.url, token) as c:
            await c.status()  # a real request: the client's HTTP session is open
            seen.setdefault(token, c)
            assert seen[token] is c
    async with cache.client(hub.url, "c") as c:
        await c.status()
    assert len(cache) == 2
    assert seen["b"]._session is None  # evicted: closed
    assert seen["a"]._session is not None
    async with cache.client(hub.url, "b") as again:  # a new client; "a" goes out
        assert again is not seen["b"]
        async with cache.client(hub.url, "d") as d:  # "c" goes out; "b" stays
            await d.status()
        await again.status()
        held = again
    assert seen["a"]._session is None and held._session is not None
    await cache.close()
    assert held._session is None and len(cache) == 0
    with pytest.raises(RuntimeError):
        async with cache.client(hub.url, "a"):
            pass


async def test_a_client_in_use_is_closed_only_when_its_call_ends(hive: tuple[Hub, Path]) -> None:
    hub, _ = hive
    cache = ClientCache(size=1)
    async with cache.client(hub.url, "x") as busy:
        await busy.status()
        async with cache.client(hub.url, "y") as other:  # evicts "x" while it is in use
            await other.status()
        await busy.status()  # still open for the call that holds it
        assert busy._session is not None
    assert busy._session is None
    await cache.close()


def _revoke(db: Path, token: str) -> None:
    args = [sys.executable, "-m", "hivehub", "token", "revoke", token, "--db", str(db)]
    subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)


async def test_a_revoked_token_fails_on_its_next_call(secured: Secured) -> None:
    hub, d, tokens = secured
    doomed = make_token(d / "hive.db", "operator")
    bearer = {"Authorization": f"Bearer {doomed}"}
    wait_for(lambda: hub.request("GET", "/api/tasks", headers=bearer)[0] == 200)  # read within 2 s
    async with http_client(hub.url, doomed) as op:
        ok(await op.call_tool("hive_status", {}))  # the tools' client for this token is cached
        ok(await op.call_tool("list_tasks", {}))
    _revoke(d / "hive.db", doomed)
    wait_for(lambda: hub.request("GET", "/api/tasks", headers=bearer)[0] == 401)
    with pytest.raises(BaseException):  # noqa: B017 - refused at /mcp itself, wrapped by the SDK
        async with http_client(hub.url, doomed) as op:
            error(await op.call_tool("list_tasks", {}))
    async with http_client(hub.url, tokens["operator"]) as op:  # others are not affected
        ok(await op.call_tool("list_tasks", {}))
