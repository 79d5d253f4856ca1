"""The history over REST (``/api/history/...``): a real hub on a SQLite file (and the
memory store), driven over HTTP; the history survives a restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hivehub.store import open_store

from .conftest import Hub, HubFactory


async def run(hub: Hub, agent_id: str, task_id: str, *, fail: bool = False) -> None:
    r = await hub.post(f"/api/agents/{agent_id}/claim?wait=0")
    assert r.status == 200 and r.body["task"]["id"] == task_id, r
    att = r.body["attempt"]
    r = await hub.post(f"/api/tasks/{task_id}/start", {"agent_id": agent_id, "attempt": att})
    assert r.status == 200, r
    if fail:
        body = {
            "agent_id": agent_id,
            "attempt": att,
            "error": {"code": "DISK_FULL", "message": "no space left"},
            "retryable": False,
        }
        r = await hub.post(f"/api/tasks/{task_id}/fail", body)
    else:
        r = await hub.post(
            f"/api/tasks/{task_id}/complete", {"agent_id": agent_id, "attempt": att, "result": 1}
        )
    assert r.status == 200, r


async def populate(hub: Hub) -> None:
    await hub.register("w", ["x"], id="w", max_concurrent_tasks=1)
    for i in range(12):
        await hub.submit(
            id=f"t{i:02d}",
            type="etl" if i % 2 else "report",
            description=f"Compute primes up to {i * 1000}",
            required_capabilities=[{"name": "x"}] if i < 6 else [{"name": "nobody"}],
        )
    for i in range(5):
        await run(hub, "w", f"t{i:02d}")
    await run(hub, "w", "t05", fail=True)


PG = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def hist_hub(request: Any, hub_factory: HubFactory, tmp_path: Path) -> AsyncIterator[Hub]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        store = open_store(str(tmp_path / "h.db"))
    elif request.param == "postgres":
        store = open_store(f"{PG}?schema={schema}")
    else:
        store = open_store("memory")
    hub = await hub_factory(store=store, db=str(tmp_path / "tokens.db"))
    await populate(hub)
    yield hub
    if request.param == "postgres":
        import asyncpg

        await hub.client.close()
        c = await asyncpg.connect(PG)
        await c.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await c.close()


async def test_pages_newest_first_with_a_stable_cursor(hist_hub: Hub) -> None:
    r = await hist_hub.get("/api/history/tasks?limit=5")
    assert r.status == 200, r
    assert r.body["total"] == 12 and [t["id"] for t in r.body["tasks"]] == ["t11", "t10", "t09", "t08", "t07"]
    t = r.body["tasks"][0]
    assert set(t) >= {
        "id", "type", "description", "status", "priority", "agent_id", "owner", "created_at",
        "updated_at", "finished_at", "attempts", "failures", "error_code",
    }  # fmt: skip
    assert t["status"] == "pending" and t["owner"] == "anonymous" and t["finished_at"] is None
    cursor = r.body["next_cursor"]
    await hist_hub.submit(id="new", type="etl", description="arrives between pages")
    r = await hist_hub.get(f"/api/history/tasks?limit=5&cursor={cursor}")
    assert [t["id"] for t in r.body["tasks"]] == ["t06", "t05", "t04", "t03", "t02"]
    r = await hist_hub.get(f"/api/history/tasks?limit=5&cursor={r.body['next_cursor']}")
    assert [t["id"] for t in r.body["tasks"]] == ["t01", "t00"] and r.body["next_cursor"] is None
    r = await hist_hub.get("/api/history/tasks?limit=1")
    assert r.body["tasks"][0]["id"] == "new" and r.body["total"] == 13


async def test_filters_search_and_time_range(hist_hub: Hub) -> None:
    async def ids(query: str) -> list[str]:
        r = await hist_hub.get(f"/api/history/tasks?{query}")
        assert r.status == 200, r
        return [t["id"] for t in r.body["tasks"]]

    assert await ids("status=completed") == ["t04", "t03", "t02", "t01", "t00"]
    assert await ids("status=failed,completed&limit=2") == ["t05", "t04"]
    assert await ids("status=failed&status=completed") == await ids("status=completed,failed")
    assert await ids("type=etl&status=completed") == ["t03", "t01"]
    assert await ids("agent_id=w&status=failed") == ["t05"]
    assert await ids("owner=anonymous&limit=100") == await ids("limit=100")
    assert await ids("owner=someone") == []
    assert await ids("q=PRIMES%20up%20to%2010000") == ["t10"]
    assert await ids("q=disk_full") == ["t05"]
    assert await ids("q=no%20space") == ["t05"]
    r = await hist_hub.get("/api/history/tasks?status=failed")
    failed = r.body["tasks"][0]
    assert failed["error_code"] == "DISK_FULL" and failed["failures"] == 1 and failed["finished_at"]
    assert failed["attempts"] == 1 and failed["agent_id"] == "w"
    created = failed["created_at"]
    assert await ids(f"to={created.replace('+00:00', 'Z')}&status=completed") == await ids("status=completed")
    now = time.time()
    assert len(await ids(f"from={now - 3600}&to={now + 60}&limit=100")) == 12
    assert await ids(f"from={now + 60}") == []
    assert await ids("from=2000-01-01T02:00:00+02:00&limit=100") == await ids("limit=100")  # "+" unescaped


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=sleeping", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("from=yesterday", "from"),
        ("to=nan", "to"),
        ("from=2000&to=1000", "to"),
        ("cursor=!!", "cursor"),
        ("cursor=bm9wZQ", "cursor"),
        ("q=" + "x" * 201, "q"),
        ("q=ab", "q"),
    ],
)
async def test_bad_values_are_422_with_the_parameter(hub: Hub, query: str, parameter: str) -> None:
    r = await hub.get(f"/api/history/tasks?{query}")
    assert r.status == 422 and r.code == "invalid_input", r
    assert r.body["error"]["details"]["parameter"] == parameter


async def test_series_counts_what_happened(hist_hub: Hub) -> None:
    r = await hist_hub.get("/api/history/series?window=300")
    assert r.status == 200, r
    s = r.body
    assert s["window"] == 300 and s["step"] == 1 and len(s["t"]) == 300
    for k in (
        "created",
        "completed",
        "failed",
        "cancelled",
        "retried",
        "tokens",
        "cost_usd",
        "latency_p50_ms",
    ):
        assert len(s[k]) == 300, k
    assert sum(s["created"]) == 12 and sum(s["completed"]) == 5 and sum(s["failed"]) == 1
    st = s["by_state"]
    assert st["completed"][-1] == 5 and st["failed"][-1] == 1 and st["pending"][-1] == 6
    assert st["running"][-1] == 0
    assert any(v is not None for v in s["latency_p95_ms"])
    r = await hist_hub.get("/api/history/series?window=86400&step=auto")
    assert r.status == 200 and len(r.body["t"]) <= 300 and r.body["step"] == 300
    r = await hist_hub.get("/api/history/series?window=3600&agent_id=w")
    assert sum(r.body["completed"]) == 5 and sum(r.body["created"]) == 6
    for q, param in (
        ("window=10", "window"),
        ("window=90000", "window"),
        ("step=0", "step"),
        ("step=x", "step"),
    ):
        r = await hist_hub.get(f"/api/history/series?{q}")
        assert r.status == 422 and r.body["error"]["details"]["parameter"] == param, (q, r)


async def test_an_agent_over_time(hist_hub: Hub) -> None:
    r = await hist_hub.get("/api/history/agents/w?window=300")
    assert r.status == 200, r
    a = r.body
    assert a["agent_id"] == "w"
    assert a["proficiency"]["x"]["value"][0] == 0.9 and len(a["proficiency"]["x"]["t"]) >= 1
    assert sum(a["tasks"]["completed"]) == 5 and sum(a["tasks"]["failed"]) == 1
    assert len(a["tasks"]["t"]) == len(a["tasks"]["latency_p50_ms"]) == 300
    r = await hist_hub.get("/api/history/agents/nobody")
    assert r.status == 404 and r.code == "agent_not_found", r
    r = await hist_hub.get("/api/history/tasks?agent_id=w&limit=3")
    assert [t["id"] for t in r.body["tasks"]] == ["t05", "t04", "t03"]


async def test_the_history_survives_a_restart(hub_factory: HubFactory, tmp_path: Path) -> None:
    db = str(tmp_path / "h.db")
    hub = await hub_factory(store=open_store(db), db=str(tmp_path / "tokens.db"))
    await populate(hub)
    before = (await hub.get("/api/history/tasks?limit=100")).body
    await hub.client.close()
    hub = await hub_factory(store=open_store(db), db=str(tmp_path / "tokens.db"))
    after = (await hub.get("/api/history/tasks?limit=100")).body
    assert after == before and after["total"] == 12
    s = (await hub.get("/api/history/series?window=300")).body
    assert sum(s["completed"]) == 5 and s["by_state"]["completed"][-1] == 5
