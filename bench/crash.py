"""Crash safety at a larger size than the test suite: ``kill -9`` the hub under load.

A hub on a SQLite log, 4 no-op SDK agents, 2 ``/ws`` subscribers that resume with
``since`` after every disconnect, and a producer submitting batches of tasks
without pause. The hub is killed with SIGKILL ``kills`` times at random moments
(seeded) and restarted on the same port and log. Then everything is checked:

* tasks accepted (the producer got a 201) vs tasks that reached a terminal state,
  and tasks that reached more than one;
* the log's sequences: gaps and duplicates;
* each subscriber's received sequences against the log: missed and repeated.

``events_lost`` (must be 0) counts log gaps plus events a subscriber missed.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, wait_until, workdir


async def _subscriber(url_ref: list[str], seqs: list[int], stop: asyncio.Event) -> int:
    """Follow /ws, resuming from the last sequence seen; returns the reconnect count."""
    reconnects = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            since = seqs[-1] if seqs else 0
            try:
                async with session.ws_connect(f"{url_ref[0]}/ws?since={since}", heartbeat=None) as ws:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        m = json.loads(msg.data)
                        if "sequence" in m:
                            seqs.append(m["sequence"])
                        if stop.is_set():
                            break
            except (aiohttp.ClientError, OSError):
                pass
            if not stop.is_set():
                reconnects += 1
                await asyncio.sleep(0.05)
    return reconnects


async def _producer(url_ref: list[str], accepted: list[str], stop: asyncio.Event, batch: int) -> None:
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            body = {
                "tasks": [{"type": "noop", "required_capabilities": [{"name": "noop"}]} for _ in range(batch)]
            }
            try:
                async with session.post(f"{url_ref[0]}/api/tasks/batch", json=body) as r:
                    if r.status == 201:
                        accepted.extend(t["id"] for t in (await r.json())["tasks"])
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.02)  # the hub is down: try again


def _fetch_log(hub: Hub) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        page = hub.get(f"/api/events?since={since}&limit=10000")
        out += page["events"]
        if page["next_since"] == since:
            return out
        since = page["next_since"]


def run(mode: str) -> dict[str, Any]:
    kills, seconds, batch = {"smoke": (1, 3.0, 20), "quick": (3, 12.0, 100), "full": (5, 30.0, 200)}[mode]
    rng = random.Random(7)
    with workdir("crash") as wd:
        db = str(wd / "crash.db")
        hub = Hub(db, wd, *HUB_BENCH_FLAGS, "--heartbeat-timeout", "5", "--retry-base", "0.05").start()
        port = hub.port
        agents = [
            Proc(
                [
                    PY,
                    "-m",
                    "bench.noop_agent",
                    "--url",
                    hub.ws_url,
                    "--name",
                    f"noop-{i}",
                    "--concurrency",
                    "8",
                    "--max-seconds",
                    str(int(seconds * 4 + 120)),
                ],
                wd / f"agent-{i}.log",
            )
            for i in range(4)
        ]
        try:
            wait_until(
                lambda: sum(1 for a in hub.get("/api/agents")["agents"] if a["status"] in ("idle", "active"))
                == 4,
                60,
                what="4 agents online",
            )

            async def scenario() -> dict[str, Any]:
                nonlocal hub
                url_ref = [hub.url]
                stop, sub_stop = asyncio.Event(), asyncio.Event()
                accepted: list[str] = []
                subs: list[list[int]] = [[], []]
                sub_tasks = [asyncio.create_task(_subscriber(url_ref, s, sub_stop)) for s in subs]
                prod = asyncio.create_task(_producer(url_ref, accepted, stop, batch))
                t0 = time.monotonic()
                for _ in range(kills):
                    await asyncio.sleep(rng.uniform(0.3, 1.0) * seconds / kills)
                    hub.proc.stop(timeout=10, sig=9)  # SIGKILL: no shutdown code runs
                    hub = Hub(db, wd, *HUB_BENCH_FLAGS, "--heartbeat-timeout", "5", "--retry-base", "0.05")
                    hub.port = port
                    await asyncio.get_running_loop().run_in_executor(None, hub.start)
                await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
                stop.set()
                await prod
                # let the work finish, then let the subscribers catch up with the log
                deadline = time.monotonic() + 120

                def all_done() -> bool:
                    m = hub.get("/api/hive/status")["metrics"]
                    return m["pending_tasks"] + m["assigned_tasks"] + m["running_tasks"] == 0

                while not all_done() and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                last = hub.get("/api/hive/status")["published_sequence"]
                while any(not s or s[-1] < last for s in subs) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                sub_stop.set()
                reconnects = []
                for t in sub_tasks:
                    t.cancel()
                for t in sub_tasks:
                    try:
                        reconnects.append(await t)
                    except asyncio.CancelledError:
                        reconnects.append(None)
                return {"accepted": accepted, "subs": subs, "last": last}

            res = asyncio.run(scenario())
            log = _fetch_log(hub)
        finally:
            for a in agents:
                a.stop()
            hub.stop()
    seqs = [e["sequence"] for e in log]
    gaps = (seqs[-1] if seqs else 0) - len(set(seqs))
    # subscribers are compared with the log up to where they were let to catch up
    # (agents going idle or offline after that are logged later)
    last = res["last"]
    dups = len(seqs) - len(set(seqs))
    terminal: dict[str, int] = {}
    for e in log:
        d = e["data"]
        if e["type"] in ("task_completed", "task_cancelled") or (
            e["type"] == "task_failed" and not d["retry_scheduled"]
        ):
            terminal[d["task_id"]] = terminal.get(d["task_id"], 0) + 1
    accepted = res["accepted"]
    finished = sum(1 for t in accepted if terminal.get(t, 0) >= 1)
    twice = sum(1 for t in accepted if terminal.get(t, 0) > 1)
    missed = repeated = 0
    for s in res["subs"]:
        got = [x for x in s if x <= last]
        missed += len(set(range(1, last + 1)) - set(got))
        repeated += len(got) - len(set(got))
    return {
        "kills": kills,
        "seconds": seconds,
        "tasks_accepted": len(accepted),
        "tasks_finished": finished,
        "tasks_finished_twice": twice,
        "log_events": len(seqs),
        "log_gaps": gaps,
        "log_duplicates": dups,
        "subscriber_events_missed": missed,
        "subscriber_events_repeated": repeated,
        "events_lost": gaps + missed,
    }
