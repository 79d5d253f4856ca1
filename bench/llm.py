"""LLM tasks through the hub against calling the model server directly.

One real llama.cpp server on the bundled SmolLM2-135M (the ``llm`` extra), one real
hub, one ``hive agent --llm-base-url`` process. ``n`` pairs, interleaved so drift of
the shared machine hits both sides alike: the same request (fixed prompt, temperature
0, ``max_tokens`` that it always reaches) once made directly with the SDK's own
``LLMClient`` (the client code the agent runs), once as a hub task submitted over REST
and seen ``task_completed`` on /ws. Reported: the added latency per task (medians, %),
the hub's overhead per streamed token (ms), and the hub's CPU seconds against the model
server's CPU seconds over the hub tasks (psutil on both pids). Targets: under 5 %
added latency, under 2 % of the model server's CPU. What is measured is reported;
nothing is made to pass.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, free_port, wait_until, workdir

PROMPT = "Write a long story about a dragon who learns to bake bread."
MAX_TOKENS = 32
N = {"smoke": 3, "quick": 10, "full": 30}


def _cpu(p: Any) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


async def _pairs(hub: Hub, base: str, n: int, hub_ps: Any, model_ps: Any) -> dict[str, Any]:
    from hivehub.agent.llm import LLMClient, parse_request

    client = LLMClient(base, model="smollm2")
    request = parse_request({"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0})
    direct: list[float] = []
    via_hub: list[float] = []
    tokens: list[int] = []
    hub_cpu = model_cpu = 0.0
    body = {"type": "llm", "input": {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0}}
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{hub.ws_url}/ws") as ws:
        await client.chat(request)  # warm both the model and the agent's path once
        for i in range(n + 1):
            t0 = time.perf_counter()
            r = await client.chat(request)
            d = time.perf_counter() - t0
            h0, m0 = _cpu(hub_ps), _cpu(model_ps)
            t0 = time.perf_counter()
            async with session.post(f"{hub.url}/api/tasks", json=body) as resp:
                tid = (await resp.json())["id"]
            usage = None
            while usage is None:
                m = json.loads((await ws.receive(timeout=120)).data)
                if m["type"] in ("task_completed", "task_failed") and m["data"]["task_id"] == tid:
                    if m["type"] == "task_failed":
                        raise RuntimeError(f"an LLM task failed: {m['data']}")
                    usage = m["data"]["usage"]
            h = time.perf_counter() - t0
            if i == 0:
                continue  # the first hub task also warms the agent's connection
            hub_cpu += _cpu(hub_ps) - h0
            model_cpu += _cpu(model_ps) - m0
            direct.append(d)
            via_hub.append(h)
            tokens.append(int(usage["completion_tokens"]))
            assert r.usage["completion_tokens"] == usage["completion_tokens"], (r.usage, usage)
    await client.close()
    d50, h50 = statistics.median(direct), statistics.median(via_hub)
    per_token = (statistics.mean(via_hub) - statistics.mean(direct)) / statistics.mean(tokens)
    return {
        "tasks": n,
        "completion_tokens_per_task": statistics.mean(tokens),
        "direct_p50_ms": round(d50 * 1000, 1),
        "hub_p50_ms": round(h50 * 1000, 1),
        "added_latency_pct": round((h50 - d50) / d50 * 100, 2),
        "hub_overhead_per_token_ms": round(per_token * 1000, 3),
        "hub_cpu_s": round(hub_cpu, 3),
        "model_cpu_s": round(model_cpu, 3),
        "hub_cpu_vs_model_pct": round(hub_cpu / model_cpu * 100, 2) if model_cpu else None,
        "targets": {"added_latency_pct": 5.0, "hub_cpu_vs_model_pct": 2.0},
    }


def run(mode: str) -> dict[str, Any]:
    import psutil

    from hivehub.demo.llm import model_path

    n = N[mode]
    with workdir("llm") as wd:
        port = free_port()
        model = Proc(
            [PY, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1"]
            + ["--port", str(port), "--n_ctx", "2048"],
            wd / "model.log",
        )
        base = f"http://127.0.0.1:{port}/v1"
        hub = Hub(str(wd / "hive.db"), wd, *HUB_BENCH_FLAGS)
        agent: Proc | None = None
        try:
            import urllib.request

            def up() -> bool:
                with urllib.request.urlopen(f"{base}/models", timeout=1) as r:
                    return r.status == 200

            wait_until(up, 120, what="the model server")
            hub.start()
            agent = Proc(
                [PY, "-m", "hivehub", "agent", "--url", hub.ws_url, "--name", "bench-llm", "--no-state"]
                + ["--capability", "llm:0.9", "--llm-base-url", base, "--llm-model", "smollm2"]
                + ["--log-level", "WARNING"],
                wd / "agent.log",
            )
            wait_until(
                lambda: any(a["name"] == "bench-llm" for a in hub.get("/api/agents")["agents"]),
                60,
                what="the LLM agent",
            )
            out = asyncio.run(_pairs(hub, base, n, psutil.Process(hub.pid), psutil.Process(model.pid)))
        finally:
            if agent is not None:
                agent.stop()
            hub.stop()
            model.stop()
    return out
