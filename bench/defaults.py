"""The defaults row: N no-op tasks through 4 ``hive agent`` processes started as a
user starts them, against the Celery and Dask baselines of the same run.

* the hub: ``hive serve`` with its default settings (only ``--no-demo``, a loopback
  port, a fresh SQLite file and a quiet log, as every bench hub);
* 4 agents: ``python -m hivehub agent --url URL --name NAME --handler bench.defaults:noop``,
  nothing else: one slot each, the CLI's default prefetch, its default INFO log
  (to a file), its default id file (in a private state directory);
* the tasks, the submitter and the clock are the tasks bench's (``bench/tasks.py``:
  ``POST /api/tasks/batch`` of 1,000, timed from the first submit to the last
  ``task_completed`` received on ``/ws``).

N = 10,000 (2,000 with ``--quick``, 200 with ``--smoke``; ``HIVEBENCH_DEFAULTS_N`` sets
another, e.g. a longer run to profile).

``HIVEBENCH_DEFAULTS_AGENT_ARGS`` (e.g. ``--prefetch 0``) adds flags to every agent,
to compare against the defaults; the result records them (``agent_args``).
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

from bench.common import PY, Hub, Proc, agents_online_cpu, workdir

AGENTS = 4


async def noop(ctx: Any) -> None:
    """The handler: returns at once."""
    return None


def run(mode: str) -> dict[str, Any]:
    import uvloop

    from bench.tasks import _hub_async

    n = int(os.environ.get("HIVEBENCH_DEFAULTS_N", 0)) or {"smoke": 200, "quick": 2_000}.get(mode, 10_000)
    with workdir("defaults") as d:
        hub = Hub(str(d / "defaults.db"), d).start()
        env = {"HIVE_AGENT_STATE_DIR": str(d / "agent-state")}
        extra = shlex.split(os.environ.get("HIVEBENCH_DEFAULTS_AGENT_ARGS", ""))
        procs: list[Proc] = []
        try:
            for i in range(AGENTS):
                args = [PY, "-m", "hivehub", "agent", "--url", hub.url, "--name", f"default-{i}"]
                args += ["--handler", "bench.defaults:noop", *extra]
                procs.append(Proc(args, d / f"agent-{i}.log", env=env))

            cpu = agents_online_cpu(hub, procs, AGENTS)

            load0 = os.getloadavg()[0]
            c0, w0 = cpu(), time.monotonic()
            r = uvloop.run(_hub_async(hub, n, AGENTS, timeout=300))
            c1, w1 = cpu(), time.monotonic()
            r["cpu_pct"] = {k: round(100 * (c1[k] - c0[k]) / (w1 - w0), 1) for k in c0}
            r["hub_cpu_ms_per_task"] = round((c1["hub"] - c0["hub"]) / n * 1000, 3)
            r["agent_args"] = extra
            r["loadavg_1m"] = {"before": round(load0, 2), "after": round(os.getloadavg()[0], 2)}
            agents = hub.get("/api/agents?limit=100")["agents"]
            r["agents"] = [
                {k: a.get(k) for k in ("name", "max_concurrent_tasks", "prefetch")}
                | {"completed": a["metrics"]["tasks_completed"]}
                for a in agents
            ]
            events = hub.get("/api/hive/status")["published_sequence"]
            r["log_events"] = int(events)
            r["log_bytes"] = sum(p.stat().st_size for p in Path(d).glob("defaults.db*"))
        finally:
            for p in procs:
                p.stop(timeout=10)
            hub.stop()
    return r
