"""Tasks end to end: N no-op tasks through 4 agent processes over WebSocket,
durable SQLite log -- and the same N no-op tasks on Celery and on Dask.

Hive Hub (``run_hub``):

* a hub subprocess on a fresh SQLite file (the durable event log);
* 4 agent processes (``bench.noop_agent``: the SDK's ``Agent``, handler
  returns at once), ``max_concurrent_tasks`` = ``concurrency`` each;
* a ``/ws?types=task_completed`` subscriber in this process records when each
  task's ``task_completed`` arrives;
* tasks are submitted with ``POST /api/tasks/batch`` (1,000 per request, 4
  requests in flight) with explicit ids; a task's submit time is when its batch
  request was sent.

tasks/s = N / (first submit -> last ``task_completed`` received).
Submit-to-complete latency per task includes the time it waited in the queue:
all N are submitted up front, as fast as the hub accepts them, so p50 is
roughly half the run. The Celery and Dask runs are timed the same way.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, agents_online_cpu, latency_summary, workdir
from bench.wsclient import Completions, connect


async def _hub_async(hub: Hub, n: int, agents: int, timeout: float) -> dict[str, Any]:
    import aiohttp

    comp = Completions(n)
    on_message, done_at = comp.on_message, comp.at

    sub = await connect("127.0.0.1", hub.port, "/ws?types=task_completed", on_message)
    sent_at: dict[str, float] = {}
    errors: list[str] = []
    batch = 1000
    sem = asyncio.Semaphore(4)
    async with aiohttp.ClientSession() as session:

        async def post(lo: int, hi: int) -> None:
            tasks = [
                {
                    "id": f"e2e-{i}",
                    "type": "noop",
                    "description": "noop",
                    "max_retries": 0,
                    "timeout_seconds": 600,
                }
                for i in range(lo, hi)
            ]
            async with sem:
                t = time.time()
                for i in range(lo, hi):
                    sent_at[f"e2e-{i}"] = t
                async with session.post(hub.url + "/api/tasks/batch", json={"tasks": tasks}) as r:
                    if r.status != 201:
                        errors.append(f"{r.status} {(await r.text())[:200]}")
                    else:
                        await r.read()

        t0 = time.time()
        await asyncio.gather(*(post(lo, min(n, lo + batch)) for lo in range(0, n, batch)))
        t_submitted = time.time()
        try:
            await asyncio.wait_for(comp.done, timeout)
        except TimeoutError:
            pass
    sub.close()
    lat = [done_at[k] - sent_at[k] for k in done_at if k in sent_at]
    t_end = max(done_at.values()) if done_at else time.time()
    return {
        "tasks": n,
        "completed": len(done_at),
        "submit_errors": errors[:3],
        "submit_s": round(t_submitted - t0, 3),
        "submit_per_s": round(n / (t_submitted - t0), 1),
        "seconds": round(t_end - t0, 3),
        "tasks_per_s": round(len(done_at) / (t_end - t0), 1) if done_at else None,
        "latency": latency_summary(lat),
    }


def run_hub(mode: str) -> dict[str, Any]:
    import uvloop

    n = {"smoke": 200, "quick": 2_000}.get(mode, 20_000)
    agents, concurrency = 4, 64
    with workdir("tasks") as d:
        hub = Hub(str(d / "tasks.db"), d, *HUB_BENCH_FLAGS).start()
        procs: list[Proc] = []
        try:
            for i in range(agents):
                procs.append(
                    Proc(
                        [
                            PY,
                            "-m",
                            "bench.noop_agent",
                            "--url",
                            hub.ws_url,
                            "--name",
                            f"bench-noop-{i}",
                            "--concurrency",
                            str(concurrency),
                            "--max-seconds",
                            "900",
                        ],
                        d / f"agent-{i}.log",
                    )
                )

            cpu = agents_online_cpu(hub, procs, agents)

            c0, w0 = cpu(), time.monotonic()
            r = uvloop.run(_hub_async(hub, n, agents, timeout=300))
            c1, w1 = cpu(), time.monotonic()
            r["cpu_pct"] = {k: round(100 * (c1[k] - c0[k]) / (w1 - w0), 1) for k in c0}
            r["hub_cpu_ms_per_task"] = round((c1["hub"] - c0["hub"]) / n * 1000, 3)
            r["agents"], r["agent_concurrency"] = agents, concurrency
            r["log_events"] = int(hub.get("/api/hive/status")["published_sequence"])
            r["log_bytes"] = sum(p.stat().st_size for p in Path(d).glob("tasks.db*"))
        finally:
            for p in procs:
                p.stop(timeout=10)
            hub.stop()
    return r
