"""The tasks-bench baselines: the same N no-op tasks on Celery and on Dask.

Each runs in its own process (``python -m bench.baselines celery|dask MODE``,
last stdout line ``RESULT {json}``), so neither library's threads, loggers or
warnings leak into the bench runner or into pytest.

* **Celery 5**, Redis broker *and* Redis result backend (results stored: the
  equivalent of the hub's durable ``task_completed``), one worker with
  ``--pool prefork --concurrency 4`` (4 worker processes), default prefetch.
  The Redis is a private ``redis-server`` on a free loopback port, started and
  stopped here. Tasks are sent with ``apply_async`` one by one (one message per
  task, like the hub's one task per submit). A task is complete when its result
  is in Redis: its completion time is the result's ``date_done`` (set by the
  worker when it stores the result), found by polling ``MGET`` on the result keys.
* **Dask distributed**: ``LocalCluster(n_workers=4, threads_per_worker=1,
  processes=True)``, ``client.map(noop, range(N), pure=False)``; a task's
  completion time is when ``as_completed`` yields it in the client.

tasks/s = N / (first submit -> last completion). Latency = completion - submit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import PY, ROOT, Proc, free_port, latency_summary, wait_until, workdir


def sizes(mode: str) -> int:
    return {"smoke": 100, "quick": 2_000}.get(mode, 20_000)


# ------------------------------------------------------------------ celery


def _start_redis(d: Path) -> tuple[Proc | None, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    p = Proc(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(d),
        ],
        d / "redis.log",
    )
    import redis

    r = redis.Redis(host="127.0.0.1", port=port)
    wait_until(r.ping, 20, what="redis-server")
    r.close()
    return p, f"redis://127.0.0.1:{port}/0"


def run_celery(mode: str) -> dict[str, Any]:
    import redis

    n = sizes(mode)
    queue = f"hivebench-{uuid.uuid4().hex[:8]}"
    with workdir("celery") as d:
        redis_proc, url = _start_redis(d)
        env = {"HIVEBENCH_REDIS": url, "HIVEBENCH_QUEUE": queue}
        os.environ.update(env)
        worker = Proc(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "bench.celery_app",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "4",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
            ],
            d / "celery-worker.log",
            env=env,
            cwd=ROOT,
        )
        try:
            from bench.celery_app import app, noop

            rc = redis.Redis.from_url(url)
            # ready: a warm-up round trip through the worker
            warm = [noop.apply_async() for _ in range(8)]
            for w in warm:
                w.get(timeout=60)
            ids: list[str] = []
            sent_at: dict[str, float] = {}
            t0 = time.time()
            for _ in range(n):
                r = noop.apply_async()
                ids.append(r.id)
                sent_at[r.id] = time.time()
            t_submitted = time.time()
            done: dict[str, float] = {}
            pending = list(ids)
            deadline = time.monotonic() + 300
            while pending and time.monotonic() < deadline:
                still = []
                for lo in range(0, len(pending), 2000):
                    chunk = pending[lo : lo + 2000]
                    vals = rc.mget([f"celery-task-meta-{i}" for i in chunk])
                    for tid, v in zip(chunk, vals, strict=True):
                        if v is None:
                            still.append(tid)
                            continue
                        meta = json.loads(v)
                        dd = meta.get("date_done")
                        done[tid] = datetime.fromisoformat(dd).timestamp() if dd else time.time()
                pending = still
                if pending:
                    time.sleep(0.05)
            t_end = max(done.values()) if done else time.time()
            lat = [done[i] - sent_at[i] for i in done]
            out = {
                "tasks": n,
                "completed": len(done),
                "submit_s": round(t_submitted - t0, 3),
                "submit_per_s": round(n / (t_submitted - t0), 1),
                "seconds": round(t_end - t0, 3),
                "tasks_per_s": round(len(done) / (t_end - t0), 1) if done else None,
                "latency": latency_summary(lat),
                "worker": "prefork, concurrency 4",
                "broker": "redis (private redis-server)",
                "result_backend": "redis",
            }
            for lo in range(0, len(ids), 5000):
                rc.delete(*[f"celery-task-meta-{i}" for i in ids[lo : lo + 5000]])
            rc.close()
            app.close()
        finally:
            worker.stop(timeout=20)
            if redis_proc is not None:
                redis_proc.stop()
    return out


# ------------------------------------------------------------------ dask


def _noop(i: int) -> int:
    return i


def run_dask(mode: str) -> dict[str, Any]:
    import logging

    from dask.distributed import Client, LocalCluster, as_completed

    n = sizes(mode)
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=4,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
        client.gather(client.map(_noop, range(8), pure=False))  # warm-up
        t0 = time.time()
        futs = client.map(_noop, range(n), pure=False)
        t_submitted = time.time()
        done: list[float] = []
        for _ in as_completed(futs):  # type: ignore[no-untyped-call]
            done.append(time.time())
        t_end = time.time()
        del futs
    return {
        "tasks": n,
        "completed": len(done),
        "submit_s": round(t_submitted - t0, 3),
        "seconds": round(t_end - t0, 3),
        "tasks_per_s": round(len(done) / (t_end - t0), 1),
        "latency": latency_summary([t - t0 for t in done]),
        "cluster": "LocalCluster(n_workers=4, threads_per_worker=1, processes=True)",
    }


# ------------------------------------------------------------------ runner


def run_in_subprocess(which: str, mode: str, timeout: float = 600) -> dict[str, Any]:
    with workdir(f"{which}-runner") as d:
        log = d / "stderr.log"
        with open(log, "wb") as err:
            try:
                cp = subprocess.run(
                    [PY, "-m", "bench.baselines", which, mode],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{which} baseline timed out after {timeout}s") from None
        lines = [ln for ln in cp.stdout.decode().splitlines() if ln.startswith("RESULT ")]
        if cp.returncode != 0 or not lines:
            raise RuntimeError(
                f"{which} baseline failed ({cp.returncode}): {log.read_text(errors='replace')[-2000:]}"
            )
        return dict(json.loads(lines[-1][7:]))


if __name__ == "__main__":
    which, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "quick")
    result = run_celery(mode) if which == "celery" else run_dask(mode)
    print("RESULT " + json.dumps(result), flush=True)
