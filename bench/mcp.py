"""One task through the MCP server against the SDK path.

One real hub, one no-op agent (``bench.noop_agent``: the SDK's ``Agent``, returns at
once). ``n`` pairs, interleaved so drift of the shared machine hits both sides alike:

* SDK: ``HiveClient.submit_task`` then ``HiveClient.wait_for_task`` (the client an
  application would use).
* MCP: the ``mcp`` package's own client, connected once to ``/mcp`` (streamable HTTP,
  as an assistant stays connected), calls ``submit_task`` then ``wait_for_task``.

Both run the same task on the same agent; what differs is the MCP layer (JSON-RPC
over SSE, the stateless session, the tool's own ``HiveClient`` to the hub's port).
Reported: medians and p90 of each, the ratio and the added milliseconds per task.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, latency_summary, wait_until, workdir

N = {"smoke": 5, "quick": 30, "full": 100}
WARMUP = 3
TASK = {"type": "noop", "required_capabilities": {"noop": 0.5}}


async def _pairs(url: str, n: int) -> dict[str, Any]:
    from mcp import Client

    from hivehub.client import HiveClient

    sdk: list[float] = []
    via_mcp: list[float] = []
    async with HiveClient(url) as hive, Client(url + "/mcp") as mcp:
        for i in range(WARMUP + n):
            t0 = time.perf_counter()
            task = await hive.submit_task(TASK)
            done = await hive.wait_for_task(task["id"], 60)
            s = time.perf_counter() - t0
            assert done["status"] == "completed", done

            t0 = time.perf_counter()
            sub = await mcp.call_tool("submit_task", TASK)
            assert not sub.is_error and sub.structured_content, sub.content
            out = await mcp.call_tool("wait_for_task", {"task_id": sub.structured_content["task_id"]})
            m = time.perf_counter() - t0
            assert not out.is_error and out.structured_content, out.content
            assert out.structured_content["status"] == "completed", out.structured_content
            if i >= WARMUP:
                sdk.append(s)
                via_mcp.append(m)
        protocol = mcp.protocol_version
    s50, m50 = statistics.median(sdk), statistics.median(via_mcp)
    return {
        "tasks": n,
        "protocol_version": protocol,
        "sdk": latency_summary(sdk),
        "mcp": latency_summary(via_mcp),
        "sdk_p50_ms": round(s50 * 1000, 2),
        "mcp_p50_ms": round(m50 * 1000, 2),
        "ratio_p50": round(m50 / s50, 2),
        "added_p50_ms": round((m50 - s50) * 1000, 2),
    }


def run(mode: str) -> dict[str, Any]:
    n = N[mode]
    with workdir("mcp") as d:
        hub = Hub(str(d / "hive.db"), d, *HUB_BENCH_FLAGS).start()
        agent: Proc | None = None
        try:
            agent = Proc(
                [PY, "-m", "bench.noop_agent", "--url", hub.ws_url, "--name", "bench-mcp"]
                + ["--concurrency", "1", "--max-seconds", "900"],
                d / "agent.log",
            )
            wait_until(
                lambda: any(a["name"] == "bench-mcp" for a in hub.get("/api/agents")["agents"]),
                60,
                what="the no-op agent",
            )
            return asyncio.run(_pairs(hub.url, n))
        finally:
            if agent is not None:
                agent.stop()
            hub.stop()
