"""Connections: the hub's resident memory per idle /ws subscriber.

A hub subprocess (``--max-ws-per-client 10000``; its open-file limit raised
through ``preexec_fn``) and subscriber processes (``bench.fanout_client``,
limits raised with ``resource.setrlimit``) that open plain ``/ws`` connections
and then only listen. RSS (psutil) is read after the hub settled with no
subscriber (baseline), then after 1,000 and after 5,000 connections. At each
level one task is created so that every subscriber has been sent one event
(the per-connection write buffers exist, as they would in use), the bench waits
until every subscriber has it, lets the hub settle, and reads RSS.

KiB per connection = (RSS at the level - baseline) / connections.

A second run does the same for 1,000 connections that offer
``permessage-deflate`` the way browsers do (the event they are sent, about 1 KB,
arrives compressed: the hub compresses each event once, with its one shared
compressor and no context takeover, so a compressed subscriber holds no zlib
state of its own; before that, aiohttp kept a compressor per connection).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.common import HUB_BENCH_FLAGS, Hub, workdir
from bench.fanout import Clients


def _post_task(hub: Hub) -> None:
    req = urllib.request.Request(
        hub.url + "/api/tasks",
        data=json.dumps({"description": "connections bench"}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


async def measure(levels: list[int], d: Path, deflate: bool, per_proc: int = 1250) -> dict[str, Any]:
    hub = Hub(
        str(d / f"conn-{int(deflate)}.db"),
        d,
        *HUB_BENCH_FLAGS,
        "--max-ws-per-client",
        "10000",
        "--max-connections-per-address",
        "0",
    )
    await asyncio.to_thread(hub.start)
    clients = Clients()
    rows = []
    try:
        hp = psutil.Process(hub.pid)
        # warm the code paths once (a task, an event) so the baseline is not the cold process
        await asyncio.to_thread(_post_task, hub)
        await asyncio.sleep(1.0)
        rss0 = hp.memory_info().rss
        have, expected = 0, 0
        extra = ("--deflate",) if deflate else ()
        for level in levels:
            add = level - have
            procs = max(1, -(-add // per_proc))
            t = await clients.start(hub.port, "/ws", add, procs, d, timeout=300, extra=extra)
            have = level
            await asyncio.to_thread(_post_task, hub)
            expected += have
            deadline = time.monotonic() + 60
            got = 0
            while time.monotonic() < deadline:
                got = sum(r["messages"] for r in await clients.cmd("report"))
                if got >= expected:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            rss = hp.memory_info().rss
            status = await asyncio.to_thread(hub.get, "/api/hive/status")
            rows.append(
                {
                    "connections": level,
                    "subscribers_seen_by_hub": status.get("subscribers"),
                    "connect_s": round(t, 2),
                    "events_received": got,
                    "events_expected": expected,
                    "rss_mib": round(rss / 2**20, 1),
                    "rss_baseline_mib": round(rss0 / 2**20, 1),
                    "kib_per_connection": round((rss - rss0) / level / 1024, 2),
                    "hub_open_fds": hp.num_fds(),
                }
            )
    finally:
        await clients.stop()
        hub.stop()
    return {"deflate": deflate, "rows": rows}


def run(mode: str) -> dict[str, Any]:
    import uvloop

    levels = {"smoke": [10, 20]}.get(mode, [1_000, 5_000])
    with workdir("connections") as d:
        plain = uvloop.run(measure(levels, d, deflate=False))
        deflate = uvloop.run(measure(levels[:1], d, deflate=True))
    worst = max(r["kib_per_connection"] for r in plain["rows"])
    return {
        "plain": plain["rows"],
        "deflate": deflate["rows"],
        "kib_per_connection": {str(r["connections"]): r["kib_per_connection"] for r in plain["rows"]},
        "kib_per_connection_deflate": {
            str(r["connections"]): r["kib_per_connection"] for r in deflate["rows"]
        },
        "worst_kib_per_connection": worst,
        "targets": {"kib_per_connection": 40},
        "met": {"kib_per_connection": worst <= 40},
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else "quick"), indent=2))
