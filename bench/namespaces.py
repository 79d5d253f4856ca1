"""Two namespaces led by two replicas vs one namespace on one replica (issue 17).

One run, PostgreSQL + a Redis stream, no-op SDK agents (``bench.noop_agent``):

- **alone**: one replica serving namespace ``a``; 2 agents on ``/ns/a``; N tasks
  submitted to it (``POST /ns/a/api/tasks/batch``, 500 a batch); tasks/s = N /
  (first submit -> the last ``task_completed`` seen on ``/ns/a/ws``).
- **split**: two replicas serving ``a`` and ``b``, started together, so that the
  placement (``hivehub/server/placement.py``) gives each namespace a different
  leader (checked; the row fails otherwise); 2 agents per namespace connected to
  that namespace's leader; N tasks into each namespace at once, each through its
  leader; tasks/s of the whole = 2N / (first submit -> the last completion of
  both).

The ratio split/alone is what a second replica adds when the hives are spread
(target >= 1.6). ``HIVEBENCH_NS_PIN=1`` pins each replica to a core of its own
(all its threads, ``sched_setaffinity``; the alone replica to the first core);
measured on the 2-core machine it did not help (1.23x pinned, 1.24x not), so the
replicas run unpinned by default. The agents, PostgreSQL and Redis are never
pinned: on 2 cores they share both with the replicas, which bounds the ratio; the
CPU per task of each (``cpu_ms_per_task``, PostgreSQL counts every backend on the
machine) says where it went.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, wait_until, workdir
from bench.wsclient import Completions, connect

PG = "postgresql://127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
AGENTS_PER_NAMESPACE = 2


def _pin(pid: int, core: int) -> None:
    """Every thread of ``pid`` on ``core`` (threads it starts later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {core})
        except OSError:
            pass  # the thread ended meanwhile


def _pinning() -> bool:
    return os.environ.get("HIVEBENCH_NS_PIN", "0") == "1" and len(os.sched_getaffinity(0)) >= 2


async def _load(hub: Hub, ns: str, n_tasks: int, timeout: float) -> dict[str, Any]:
    """N no-op tasks into ``ns`` through ``hub``; returns when all completed."""
    import aiohttp

    comp = Completions(n_tasks)
    on_message = comp.on_message

    ws = await connect("127.0.0.1", hub.port, f"/ns/{ns}/ws?types=task_completed", on_message)
    try:
        async with aiohttp.ClientSession() as session:
            t0 = time.time()
            sent = 0
            while sent < n_tasks:
                k = min(500, n_tasks - sent)
                body = {
                    "tasks": [{"type": "noop", "required_capabilities": [{"name": "noop"}]} for _ in range(k)]
                }
                async with session.post(f"{hub.url}/ns/{ns}/api/tasks/batch", json=body) as r:
                    if r.status != 201:
                        raise RuntimeError(f"batch refused in {ns}: {r.status} {await r.text()}")
                sent += k
            await asyncio.wait_for(comp.done, timeout)
            end = time.time()
    finally:
        ws.close()
    return {"t0": t0, "end": end, "completed": len(comp.at)}


def _role(h: Hub, ns: str) -> str:
    return str(h.get(f"/ns/{ns}/api/hive/status")["cluster"]["role"])


def _config(names: list[str], n_replicas: int, n_tasks: int, wd: Path) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    stream = f"hivebench:{schema}"
    db = f"{PG}?schema={schema}"
    flags = [*HUB_BENCH_FLAGS, "--bus", f"{REDIS}?stream={stream}", "--cluster-secret", "bench"]
    flags += ["--heartbeat-timeout", "30", "--no-learning"]
    for n in names:
        flags += ["--namespace", n]
    hubs = [Hub(db, wd, *flags) for _ in range(n_replicas)]
    agents: list[Proc] = []
    pinned = _pinning()
    try:
        # together, as a deployment's replicas start: the placement spreads them
        threads = [threading.Thread(target=h.start) for h in hubs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        leaders: dict[str, Hub] = {}
        for ns in names:
            leaders[ns] = wait_until(
                lambda ns=ns: next((h for h in hubs if _role(h, ns) == "leader"), None),
                30,
                what=f"a leader of {ns}",
            )
        if len({id(h) for h in leaders.values()}) != min(len(names), n_replicas):
            raise RuntimeError(f"the namespaces were not spread over the replicas: {leaders}")
        if pinned:
            for i, h in enumerate(hubs):
                _pin(h.pid, i % len(os.sched_getaffinity(0)))
        for ns, lead in leaders.items():
            for i in range(AGENTS_PER_NAMESPACE):
                agents.append(
                    Proc(
                        [
                            PY,
                            "-m",
                            "bench.noop_agent",
                            "--url",
                            f"{lead.ws_url}/ns/{ns}",
                            "--name",
                            f"{ns}-{i}",
                        ]
                        + ["--concurrency", "16", "--max-seconds", "300"],
                        wd / f"agent-{ns}-{i}-{lead.port}.log",
                    )
                )
        for ns, lead in leaders.items():
            wait_until(
                lambda ns=ns, lead=lead: sum(
                    1 for a in lead.get(f"/ns/{ns}/api/agents")["agents"] if a["status"] in ("idle", "active")
                )
                == AGENTS_PER_NAMESPACE,
                60,
                what=f"the agents of {ns} online",
            )

        async def run_all() -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(_load(leaders[ns], ns, n_tasks, 300) for ns in names)))

        cpu0 = _cpu(hubs, agents)
        res = asyncio.run(run_all())
        cpu1 = _cpu(hubs, agents)
        t0 = min(r["t0"] for r in res)
        elapsed = max(r["end"] for r in res) - t0
        total = n_tasks * len(names)
        return {
            "namespaces": names,
            "replicas": n_replicas,
            "tasks": total,
            "seconds": round(elapsed, 3),
            "tasks_per_s": round(total / elapsed, 1),
            "per_namespace_tasks_per_s": {
                ns: round(n_tasks / (r["end"] - r["t0"]), 1) for ns, r in zip(names, res, strict=True)
            },
            "pinned": pinned,
            # where the CPU went, ms per task (the machine's cores bound the ratio)
            "cpu_ms_per_task": {k: round(1000 * (cpu1[k] - cpu0[k]) / total, 3) for k in cpu0},
        }
    finally:
        for a in agents:
            a.stop()
        for h in hubs:
            h.stop()
        _drop([schema] + [f"{schema}_ns_{n}" for n in names], [stream] + [f"{stream}-ns-{n}" for n in names])


def _cpu(hubs: list[Hub], agents: list[Proc]) -> dict[str, float]:
    """CPU seconds so far of the replicas (each), the agents, PostgreSQL and Redis."""
    import psutil

    def secs(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    out = {f"replica{i}": secs(psutil.Process(h.pid)) for i, h in enumerate(hubs)}
    out["agents"] = sum(secs(psutil.Process(a.pid)) for a in agents)
    for name in ("postgres", "redis-server"):
        out[name] = sum(secs(p) for p in psutil.process_iter(["name"]) if p.info["name"] == name)
    return out


def _drop(schemas: list[str], streams: list[str]) -> None:
    import asyncpg
    import redis

    async def drop() -> None:
        c = await asyncpg.connect(PG)
        for s in schemas:
            await c.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        await c.close()

    asyncio.run(drop())
    redis.Redis(host="127.0.0.1", port=6379).delete(*streams)


def run(mode: str) -> dict[str, Any]:
    n = {"smoke": 300, "quick": 5000, "full": 10_000}[mode]
    with workdir("namespaces") as wd:
        alone = _config(["a"], 1, n, wd)
        split = _config(["a", "b"], 2, n, wd)
    ratio = round(split["tasks_per_s"] / alone["tasks_per_s"], 3) if alone["tasks_per_s"] else None
    return {"tasks_per_namespace": n, "alone": alone, "split": split, "ratio": ratio, "target": 1.6}
