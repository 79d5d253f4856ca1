"""LLM agents end to end on the real stack: a real ``hive serve`` (with ``--prices``),
real ``hive agent --llm-base-url`` processes, and the real llama.cpp server on the
bundled SmolLM2 model (the session fixture ``llm_server``), measured at the model side
by a byte-counting proxy (tests/e2e/llm_support.py). No mocked model anywhere.

llama-cpp-python's stream carries no usage chunk, so the SDK counts completion tokens
from the streamed chunks and, after the stream, the prompt with the server's tokenizer
(``prompt_tokens_source: "tokenizer"``): the tests compare those with the chunks the
model server sent, and a length-capped request with what the same server reports for
it non-streamed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.llm_support import MODEL, PRICE_IN, PRICE_OUT, EventTap, LLMAgentProc, ModelProxy, write_prices
from tests.hubproc import ROOT, Hub, wait_for

LONG = "Write a long story about a dragon who learns to bake bread."
ENDED = ("completed", "failed", "cancelled")
ENDED_EVENTS = ("task_completed", "task_failed", "task_cancelled", "task_released")


@pytest.fixture
def proxy(llm_server: str) -> Iterator[ModelProxy]:
    p = ModelProxy(llm_server)
    yield p
    p.close()


@pytest.fixture
def stack(tmp_path: Path, proxy: ModelProxy) -> Iterator[Any]:
    """``stack(*agent_flags, caps=[...])`` -> (hub, tap, agent id); all stopped after."""
    started: list[Any] = []
    prices = write_prices(tmp_path / "prices.json")
    hub = Hub(tmp_path / "hive.db", "--prices", str(prices), "--retry-base", "0.05", "--retry-cap", "0.2")

    def start(*flags: str, caps: tuple[str, ...] = ("llm:0.9",), before: Any = None) -> tuple:
        hub.start()
        started.append(hub)
        if before is not None:
            before(hub)
        tap = EventTap(hub)
        started.append(tap)
        agent = LLMAgentProc(hub, "writer", proxy.base_url, tmp_path, list(caps), *flags)
        started.append(agent)
        return hub, tap, agent.wait_online(hub)

    yield start
    for x in reversed(started):
        x.close() if isinstance(x, EventTap) else x.stop()


def submit(hub: Hub, prompt: str, max_tokens: int, **spec: Any) -> str:
    body = {"type": "llm", "input": {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}, **spec}
    return str(hub.post("/api/tasks", body, expect=201)["id"])


def ended(hub: Hub, tid: str, timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        t = hub.get(f"/api/tasks/{tid}")
        return t if t["status"] in ENDED else None

    return wait_for(done, timeout, what=f"task {tid} to end")  # type: ignore[no-any-return]


def ts(message: dict[str, Any]) -> float:
    return datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")).timestamp()


def direct(base: str, prompt: str, max_tokens: int) -> dict[str, Any]:
    """The same request made directly to the model server, not streamed."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    req = urllib.request.Request(
        f"{base}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def test_streamed_output_usage_and_cost_survive_a_restart(
    stack: Any, proxy: ModelProxy, llm_server: str
) -> None:
    hub, tap, agent_id = stack()
    tid = submit(hub, LONG, 40)
    # the output so far, read over REST while the model still streams
    running = wait_for(
        lambda: (t := hub.get(f"/api/tasks/{tid}"))["status"] == "running" and t["output"] and t,
        30,
        what="partial output while running",
    )
    task = ended(hub, tid)
    assert task["status"] == "completed", task
    owner = "anonymous"  # without auth (created_by "admin:anonymous": the token part)
    text = task["result"]["text"]
    assert text and running["output"] and text.startswith(running["output"]) and running["output"] != text
    deltas = [
        m["data"]["output_delta"] for _, m in tap.of("task_progress", tid) if m["data"].get("output_delta")
    ]
    assert len(deltas) >= 2 and "".join(deltas) == text == task["output"]

    # usage: what the model server sent (chunks at the model side), priced by the hub
    _, done = tap.wait("task_completed", tid)
    usage = done["data"]["usage"]
    sent = [c for s in proxy.snapshot() for c in s.content_chunks()]
    assert "".join(sent) == text
    assert usage["model"] == MODEL and usage["completion_tokens"] == len(sent) == 40
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    want_cost = round((usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6, 9)
    assert usage["cost_usd"] == pytest.approx(want_cost, abs=1e-12)
    # the same request to the model server directly, not streamed: the same counts
    served = direct(llm_server, LONG, 40)["usage"]
    assert served["completion_tokens"] == usage["completion_tokens"]
    assert served["prompt_tokens"] == usage["prompt_tokens"] and usage["prompt_tokens_source"] == "tokenizer"
    assert task["usage"] == {k: v for k, v in usage.items() if k != "task_id"}

    def totals() -> tuple[Any, ...]:
        llm = hub.get("/api/hive/status")["llm"]
        agent = hub.get(f"/api/agents/{agent_id}")
        agent = agent.get("agent", agent)
        return llm["by_model"][MODEL], llm["by_owner"][owner], agent["metrics"]["usage"]

    before = totals()
    for t in before:
        assert t["requests"] == 1 and t["completion_tokens"] == 40
        assert t["cost_usd"] == pytest.approx(want_cost, abs=1e-12)
    hub.stop()
    hub.start()  # the same --db: the totals are folded again from the log
    assert totals() == before


def test_a_quota_pool_paces_50_tasks_at_its_token_limit(stack: Any, proxy: ModelProxy) -> None:
    """50 tasks through a pool of 1500 tokens a minute (25 a second): each uses about
    20 tokens (an 18-token prompt as the server counts it, 2 completion tokens), so
    after the first burst (the bucket holds 10 s worth) the rest take about 30 s, which
    the model (about 0.07 s a call) outruns by far: the pool sets the pace. The rate is
    measured over the assignments after the burst: the tokens of the tasks assigned in
    that window over its length, against the limit."""
    tpm, per_task, n = 1500, 20, 50

    def pool(hub: Hub) -> None:
        status, _ = hub.request("PUT", "/api/quotas/small", {"tokens_per_minute": tpm})
        assert status == 200

    hub, tap, _ = stack("--quota", "small", before=pool)
    body = {"prompt": "Hi", "system": "Reply.", "max_tokens": 2, "temperature": 0}
    ids = [
        str(
            hub.post("/api/tasks", {"type": "llm", "input": body, "estimated_tokens": per_task}, expect=201)[
                "id"
            ]
        )
        for _ in range(n)
    ]
    tasks = [ended(hub, t, 180) for t in ids]
    assert all(t["status"] == "completed" for t in tasks), [t["status"] for t in tasks]
    assert proxy.rejected == 0 and not tap.of("task_failed")  # zero provider 429s
    wait_for(lambda: len([m for _, m in tap.of("task_completed") if m["data"]["task_id"] in ids]) == n, 10)
    used = {m["data"]["task_id"]: m["data"]["usage"]["total_tokens"] for _, m in tap.of("task_completed")}
    assigned = sorted(
        (ts(m), m["data"]["task_id"]) for _, m in tap.of("task_assigned") if m["data"]["task_id"] in ids
    )
    assert len(assigned) == n  # one attempt each
    # the burst: what the full bucket holds, plus a margin of two tasks
    burst = tpm // 6 // per_task + 2
    span = assigned[-1][0] - assigned[burst][0]
    tokens = sum(used[tid] for _, tid in assigned[burst + 1 :])
    rate = tokens / span * 60
    mean = sum(used.values()) / n
    print(
        f"\npacing: {rate:.0f} tokens/min measured over {span:.1f} s after a burst of {burst + 1} tasks "
        f"vs the limit {tpm} ({mean:.1f} tokens a task)"
    )
    assert abs(rate - tpm) <= 0.1 * tpm, rate


def test_a_provider_429_pauses_the_pool_without_spending_retries(stack: Any, proxy: ModelProxy) -> None:
    def pool(hub: Hub) -> None:
        assert hub.request("PUT", "/api/quotas/p429", {"requests_per_minute": 600})[0] == 200

    proxy.reject_next = 1  # the agent's first call meets a 429 with Retry-After: 2
    hub, tap, _ = stack("--quota", "p429", before=pool)
    tid = submit(hub, "Say hello.", 8, max_retries=0)
    seen, failed = tap.wait("task_failed", tid)
    assert failed["data"]["error"]["code"] == "RATE_LIMITED"
    paused = hub.get("/api/quotas/p429")["quota"]["paused_until"]
    assert paused is not None and ts({"timestamp": paused}) >= ts(failed) + 1.9
    task = ended(hub, tid)
    assert task["status"] == "completed" and task["failures"] == 0, task
    assert proxy.rejected == 1
    # the retry waited for the pause (Retry-After) before it was assigned again
    second = tap.of("task_assigned", tid)[-1][1]
    assert len(tap.of("task_assigned", tid)) == 2 and ts(second) >= ts({"timestamp": paused}) - 0.05


def test_budget_exhaustion_blocks_alerts_and_bounds_overspend(stack: Any, proxy: ModelProxy) -> None:
    """Three attempts in flight at once against an owner's daily budget, on the real
    model. Each reserves its ``estimated_tokens`` (30), less than it really uses
    (about 45: a 37-token prompt as the server counts it, plus up to 8 completion
    tokens), so the budget is overspent; the hub admits an attempt only while what
    the owner spent plus the reservations in flight plus its own fit the budget
    (checked here on every assignment of the log), so the overspend is what the
    attempts in flight at the last admission used beyond their reservations, and
    stays within the sum of those reservations."""
    budget, reserve, per_task = 100, 30, 8
    ids: list[str] = []
    owner = "anonymous"  # without auth (created_by "admin:anonymous": the token part)

    def limit(hub: Hub) -> None:  # before the agent is online: nothing runs yet
        prompt = "Count from one to one hundred."
        ids.extend(submit(hub, prompt, per_task, estimated_tokens=reserve) for _ in range(8))
        assert hub.request("PUT", f"/api/budgets/{owner}", {"tokens_per_day": budget})[0] == 200

    # three tasks at once; the model calls one after the other (llama-cpp-python
    # serves one stream at a time and would cut a concurrent one short)
    hub, tap, _ = stack("--max-concurrent", "3", "--llm-max-concurrent", "1", before=limit)
    wait_for(
        lambda: [x for x in tap.of("system_alert") if "budget" in json.dumps(x[1]["data"])],
        60,
        what="the budget alert",
    )
    wait_for(lambda: hub.get(f"/api/budgets/{owner}")["budget"]["reserved_tokens"] == 0, 60, what="settled")
    wait_for(
        lambda: not [t for t in ids if hub.get(f"/api/tasks/{t}")["status"] not in ("pending", "completed")],
        60,
        what="the admitted attempts to end",
    )
    tasks = [hub.get(f"/api/tasks/{t}") for t in ids]
    waiting = [t for t in tasks if t["status"] == "pending"]
    done = [t for t in tasks if t["status"] == "completed"]
    assert waiting and all(t["blocked_reason"] == "budget" for t in waiting), tasks
    view = hub.get(f"/api/budgets/{owner}")["budget"]
    assert view["blocked"]
    spent = view["spent_tokens"]
    assert spent == sum(t["usage"]["total_tokens"] for t in done)

    # the log, in order: the admission rule held at every assignment, and the bound
    spent_so_far, in_flight, bound = 0, {}, 0
    for _, m in tap.messages:
        d = m["data"]
        if m["type"] == "task_assigned" and d["task_id"] in ids:
            r = d["reservation"]["budget_tokens"]
            assert spent_so_far + sum(in_flight.values()) + r <= budget, (spent_so_far, in_flight, r)
            in_flight[d["task_id"]] = r
            bound = sum(in_flight.values())  # the reservations in flight at the last admission
        elif m["type"] in ENDED_EVENTS and d.get("task_id") in in_flight:
            in_flight.pop(d["task_id"])
            spent_so_far += (d.get("usage") or {}).get("total_tokens", 0)
    assert spent_so_far == spent and len(done) >= 3  # three were in flight at once
    overspend = spent - budget
    print(
        f"\nbudget {budget}: spent {spent} (overspend {overspend}, bound {bound} reserved in flight at "
        f"the last admission), {len(done)} ran, {len(waiting)} blocked"
    )
    assert 0 < overspend <= bound, (overspend, bound)
    # a raised budget lets the rest run
    assert hub.request("PUT", f"/api/budgets/{owner}", {"tokens_per_day": 10_000})[0] == 200
    assert all(ended(hub, t["id"])["status"] == "completed" for t in waiting)


def test_cancel_closes_the_model_stream_within_a_second(stack: Any, proxy: ModelProxy) -> None:
    hub, tap, _ = stack()
    tid = submit(hub, LONG, 400)
    tap.wait("task_progress", tid)
    wait_for(lambda: proxy.snapshot() and proxy.snapshot()[-1].content_chunks(), 30, what="chunks")
    t_cancel = time.monotonic()
    hub.post(f"/api/tasks/{tid}/cancel", {"reason": "enough"}, expect=200)
    seen, cancelled = tap.wait("task_cancelled", tid)
    stream = wait_for(
        lambda: next((s for s in proxy.snapshot() if s.client_closed is not None), None), 5, what="close"
    )
    closed_in = stream.client_closed - t_cancel
    after_event = sum(len(b) for t, b in stream.forwarded if t > seen)
    after_close = sum(len(b) for t, b in stream.forwarded if t > stream.client_closed)
    print(
        f"\ncancel: stream closed {closed_in * 1000:.0f} ms after the cancel request; "
        f"{after_event} bytes forwarded after task_cancelled reached /ws, {after_close} after the close; "
        f"the model server sent {stream.dropped_after_close} bytes more that nothing read"
    )
    assert closed_in < 1.0 and after_close == 0
    usage = cancelled["data"]["usage"]
    chunks = stream.content_chunks()
    assert usage is not None and usage["model"] == MODEL and 0 < usage["completion_tokens"] <= len(chunks)
    assert len(chunks) < 400  # the generation was cut short, not run to its end
    assert hub.get(f"/api/tasks/{tid}")["status"] == "cancelled"


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivehub", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("via", ["rest", "cli"])
def test_approval_and_mid_task_input_round_trips(stack: Any, via: str) -> None:
    handler = "ask=tests.e2e.llm_handlers:ask_then_write"
    hub, tap, _ = stack("--handler", handler, caps=("ask:0.9",))
    tid = hub.post("/api/tasks", {"type": "ask", "requires_approval": True}, expect=201)["id"]
    t = hub.get(f"/api/tasks/{tid}")
    assert t["status"] == "awaiting_approval" and t["blocked_reason"] == "approval"
    if via == "rest":
        hub.post(f"/api/tasks/{tid}/approve", {"comment": "go"}, expect=200)
    else:
        r = hive("approve", tid, "--comment", "go", "--url", hub.url)
        assert r.returncode == 0, r.stderr
    question = wait_for(
        lambda: (t := hub.get(f"/api/tasks/{tid}"))["status"] == "input_required" and t["pending_input"],
        30,
        what="the handler's question",
    )
    assert question["question"] == "Which topic?" and question["choices"] == ["bees", "cats"]
    if via == "rest":
        hub.post(f"/api/tasks/{tid}/input", {"answer": "bees"}, expect=200)
    else:
        r = hive("answer", tid, "bees", "--url", hub.url)
        assert r.returncode == 0, r.stderr
    task = ended(hub, tid)
    assert task["status"] == "completed" and task["result"]["topic"] == "bees", task
    assert task["result"]["text"] and task["usage"]["completion_tokens"] > 0
    assert task["approved_by"]
    types = [m["type"] for _, m in tap.messages if m["data"].get("task_id") == tid]
    for kind in ("task_approval_requested", "task_approved", "task_input_required", "task_input_received"):
        assert kind in types, types
