"""Throughput with 1, 2 and 3 hub replicas on PostgreSQL + a Redis stream.

For each replica count: N replicas on a fresh PostgreSQL schema and Redis stream,
4 no-op SDK agents spread over the replicas (agent i connects to replica i mod N),
the same batch of no-op tasks submitted round-robin through every replica
(``POST /api/tasks/batch``). tasks/s = tasks / (first submit -> the last
``task_completed`` seen by a subscriber on the first replica).

What to expect on this machine: one replica leads (runs the core and writes the
log); followers forward commands to it. More replicas add connection and fan-out
capacity, not scheduling capacity, and on 2 cores they compete with the leader
and the agents for CPU. The result records where the time went (the leader's
CPU per task).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, workdir
from bench.wsclient import Completions, connect

PG = "postgresql://127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


def _cpu_seconds(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


async def _run_once(hubs: list[Hub], n_tasks: int, timeout: float) -> dict[str, Any]:
    import aiohttp

    comp = Completions(n_tasks)
    on_message = comp.on_message

    ws = await connect("127.0.0.1", hubs[0].port, "/ws?types=task_completed", on_message)
    batch = 500
    try:
        async with aiohttp.ClientSession() as session:
            t0 = time.time()
            sent = 0
            i = 0
            while sent < n_tasks:
                hub = hubs[i % len(hubs)]
                i += 1
                k = min(batch, n_tasks - sent)
                body = {
                    "tasks": [{"type": "noop", "required_capabilities": [{"name": "noop"}]} for _ in range(k)]
                }
                while True:
                    async with session.post(f"{hub.url}/api/tasks/batch", json=body) as r:
                        if r.status == 201:
                            break
                        if r.status != 503:  # 503: no leader known yet, try again
                            raise RuntimeError(f"batch refused: {r.status} {await r.text()}")
                    await asyncio.sleep(0.05)
                sent += k
            submit_s = time.time() - t0
            await asyncio.wait_for(comp.done, timeout)
            elapsed = time.time() - t0
    finally:
        ws.close()
    return {
        "tasks": n_tasks,
        "completed": len(comp.at),
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(n_tasks / elapsed, 1),
        "submit_per_s": round(n_tasks / submit_s, 1),
    }


def _leader(hubs: list[Hub]) -> Hub:
    for h in hubs:
        if h.get("/api/hive/status")["cluster"]["role"] == "leader":
            return h
    raise RuntimeError("no leader")


def run_config(n_replicas: int, n_tasks: int) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    stream = f"hivebench:{schema}"
    db = f"{PG}?schema={schema}"
    with workdir(f"replicas{n_replicas}") as wd:
        hubs = [
            Hub(
                db,
                wd,
                *HUB_BENCH_FLAGS,
                "--bus",
                f"{REDIS}?stream={stream}",
                "--cluster-secret",
                "bench",
                "--heartbeat-timeout",
                "30",
                "--no-learning",
            )
            for _ in range(n_replicas)
        ]
        agents: list[Proc] = []
        try:
            for h in hubs:
                h.start()
            from bench.common import wait_until

            wait_until(
                lambda: any(h.get("/api/hive/status")["cluster"]["role"] == "leader" for h in hubs),
                30,
                what="a leader",
            )
            for i in range(4):
                h = hubs[i % n_replicas]
                agents.append(
                    Proc(
                        [
                            PY,
                            "-m",
                            "bench.noop_agent",
                            "--url",
                            h.ws_url,
                            "--name",
                            f"noop-{i}",
                            "--concurrency",
                            "16",
                            "--max-seconds",
                            "600",
                        ],
                        wd / f"agent-{i}.log",
                    )
                )
            wait_until(
                lambda: sum(
                    1 for a in hubs[0].get("/api/agents")["agents"] if a["status"] in ("idle", "active")
                )
                == 4,
                60,
                what="4 agents online",
            )
            leader = _leader(hubs)
            cpu0 = _cpu_seconds(leader.pid)
            res = asyncio.run(_run_once(hubs, n_tasks, timeout=600))
            res["leader_cpu_ms_per_task"] = round(1000 * (_cpu_seconds(leader.pid) - cpu0) / n_tasks, 3)
            res["replicas"] = n_replicas
            return res
        finally:
            for a in agents:
                a.stop()
            for h in hubs:
                h.stop()
            _drop(schema, stream)


def _drop(schema: str, stream: str) -> None:
    import asyncpg
    import redis

    async def drop() -> None:
        c = await asyncpg.connect(PG)
        await c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await c.close()

    asyncio.run(drop())
    redis.Redis(host="127.0.0.1", port=6379).delete(stream)


def run(mode: str) -> dict[str, Any]:
    n = {"smoke": 200, "quick": 2000, "full": 10_000}[mode]
    rows = [run_config(k, n) for k in (1, 2, 3)]
    base = rows[0]["tasks_per_s"]
    for r in rows:
        r["ratio_vs_1"] = round(r["tasks_per_s"] / base, 3) if base else None
    return {"rows": rows, "tasks": n}
