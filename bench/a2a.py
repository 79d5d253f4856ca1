"""One task through the A2A bridge against the same task on an agent of the SDK.

A real hub, one real A2A agent (``a2a-sdk``'s server classes; ``python -m bench.a2a
agent --port P``: one skill, ``echo_a2a``, streaming, that answers with one artifact
chunk and completes), ``hive a2a-bridge`` running it, and one ``hive agent`` of the
SDK whose handler does the same work (``echo_sdk``). ``n`` pairs, interleaved so drift
of the shared machine hits both sides alike: a task submitted over REST and seen
``task_completed`` on /ws, once per path, one at a time. Also measured: the A2A agent
called directly with the ``a2a-sdk`` client (what the bridge itself pays per task).
Reported: the medians, the bridge's added latency over the SDK path (ms) and the ratio.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import urllib.request
from typing import Any

import aiohttp

from bench.common import HUB_BENCH_FLAGS, PY, Hub, Proc, free_port, wait_until, workdir

N = {"smoke": 5, "quick": 30, "full": 100}


def echo(ctx: Any) -> dict[str, Any]:
    """The SDK agent's handler: the same answer the A2A agent gives."""
    return {"text": f"echo {ctx.input}"}


def serve_agent(port: int) -> None:
    """The benchmark's A2A agent (run in its own process)."""
    import uvicorn
    from a2a.helpers import new_text_part
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        Task,
        TaskState,
        TaskStatus,
    )
    from starlette.applications import Starlette

    class Echo(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            assert context.task_id and context.context_id
            up = TaskUpdater(event_queue, context.task_id, context.context_id)
            if context.current_task is None:
                await event_queue.enqueue_event(
                    Task(
                        id=context.task_id,
                        context_id=context.context_id,
                        status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    )
                )
            await up.add_artifact([new_text_part(f"echo {context.get_user_input()}")], name="echo")
            await up.complete()

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            assert context.task_id and context.context_id
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()

    url = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="bench-a2a",
        description="echoes its input",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url + "/", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo_a2a", name="echo", description="echoes its input", tags=["echo"])],
    )
    handler = DefaultRequestHandler(Echo(), InMemoryTaskStore(), card)
    app = Starlette(routes=create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


async def _direct(url: str, n: int) -> list[float]:
    """The A2A agent alone, through the a2a-sdk client: one streamed task at a time."""
    import httpx
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
    from a2a.types import Message, Part, Role, SendMessageRequest

    out: list[float] = []
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, url).get_agent_card()
        client = ClientFactory(ClientConfig(httpx_client=http)).create(card)
        for i in range(n + 1):
            req = SendMessageRequest(
                message=Message(role=Role.ROLE_USER, message_id=f"m{i}", parts=[Part(text=f"x{i}")])
            )
            t0 = time.perf_counter()
            async for _ev in client.send_message(req):
                pass
            if i:
                out.append(time.perf_counter() - t0)
    return out


async def _pairs(hub: Hub, n: int) -> tuple[list[float], list[float]]:
    sdk: list[float] = []
    bridge: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{hub.ws_url}/ws") as ws:

        async def one(capability: str, text: str) -> float:
            body = {"type": capability, "input": text, "required_capabilities": [{"name": capability}]}
            t0 = time.perf_counter()
            async with session.post(f"{hub.url}/api/tasks", json=body) as resp:
                tid = (await resp.json())["id"]
            while True:
                m = json.loads((await ws.receive(timeout=60)).data)
                if m["type"] in ("task_completed", "task_failed") and m["data"]["task_id"] == tid:
                    if m["type"] == "task_failed":
                        raise RuntimeError(f"a {capability} task failed: {m['data']}")
                    if capability == "echo_a2a":
                        assert m["data"]["result"]["text"] == f"echo {text}", m["data"]
                    return time.perf_counter() - t0

        for i in range(n + 1):  # the first pair warms both paths
            s, b = await one("echo_sdk", f"s{i}"), await one("echo_a2a", f"b{i}")
            if i:
                sdk.append(s)
                bridge.append(b)
    return sdk, bridge


def run(mode: str) -> dict[str, Any]:
    n = N[mode]
    with workdir("a2a") as wd:
        port = free_port()
        a2a_url = f"http://127.0.0.1:{port}"
        agent = Proc([PY, "-m", "bench.a2a", "agent", "--port", str(port)], wd / "a2a-agent.log")
        hub = Hub(str(wd / "hive.db"), wd, *HUB_BENCH_FLAGS)
        procs: list[Proc] = [agent]
        try:

            def card_up() -> bool:
                with urllib.request.urlopen(f"{a2a_url}/.well-known/agent-card.json", timeout=1) as r:
                    return r.status == 200

            wait_until(card_up, 60, what="the A2A agent")
            hub.start()
            procs.append(
                Proc(
                    [PY, "-m", "hivehub", "a2a-bridge", "--card", a2a_url, "--url", hub.ws_url]
                    + ["--log-level", "WARNING"],
                    wd / "bridge.log",
                )
            )
            procs.append(
                Proc(
                    [PY, "-m", "hivehub", "agent", "--url", hub.ws_url, "--name", "bench-sdk", "--no-state"]
                    + ["--capability", "echo_sdk:0.9", "--handler", "echo_sdk=bench.a2a:echo"]
                    + ["--log-level", "WARNING"],
                    wd / "sdk-agent.log",
                )
            )

            def online() -> bool:
                names = {a["name"] for a in hub.get("/api/agents")["agents"] if a["status"] == "idle"}
                return {"bench-a2a", "bench-sdk"} <= names

            wait_until(online, 60, what="the bridge's and the SDK's agents")
            sdk, bridge = asyncio.run(_pairs(hub, n))
            direct = asyncio.run(_direct(a2a_url, n))
        finally:
            for p in reversed(procs[1:]):
                p.stop()
            hub.stop()
            agent.stop()
    s50, b50, d50 = statistics.median(sdk), statistics.median(bridge), statistics.median(direct)
    return {
        "tasks": n,
        "sdk_p50_ms": round(s50 * 1000, 2),
        "bridge_p50_ms": round(b50 * 1000, 2),
        "a2a_direct_p50_ms": round(d50 * 1000, 2),
        "added_ms": round((b50 - s50) * 1000, 2),
        "ratio_vs_sdk": round(b50 / s50, 2),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["agent"] and len(sys.argv) == 4 and sys.argv[2] == "--port":
        serve_agent(int(sys.argv[3]))
    else:
        sys.exit("usage: python -m bench.a2a agent --port PORT")
