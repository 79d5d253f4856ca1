"""The /agents/ws frames of model-backed agents: streamed output and usage in
``task_progress``, usage in ``task_completed`` / ``task_failed`` (and a rate limit's
``retry_after``), and a question (``input_request``) answered with an ``input`` frame."""

from __future__ import annotations

from aiohttp import ClientWebSocketResponse

from .conftest import Hub, recv, recv_until
from .test_agents_ws import CODE, assigned, connect, report


async def started(hub: Hub) -> tuple[ClientWebSocketResponse, int]:
    ws, _ = await connect(hub, id="a1")
    await hub.submit(id="t1", required_capabilities=[{"name": "code"}])
    att: int = (await assigned(ws))["attempt"]
    assert (await report(ws, "task_started", "s", task_id="t1", attempt=att))["type"] == "ack"
    return ws, att


async def test_output_deltas_and_usage_reach_the_task(hub: Hub) -> None:
    ws, att = await started(hub)
    u1 = {"model": "m", "prompt_tokens": 10, "completion_tokens": 2}
    ack = await report(
        ws, "task_progress", "p1", task_id="t1", attempt=att, progress=0.1, output_delta="Hel", usage=u1
    )
    assert ack["type"] == "ack", ack
    await report(ws, "task_progress", "p2", task_id="t1", attempt=att, progress=0.2, output_delta="lo")
    assert (await hub.get("/api/tasks/t1")).body["output"] == "Hello"
    prog = (await hub.events(types="task_progress"))[0]["data"]
    assert prog["output_delta"] == "Hel" and prog["usage"]["total_tokens"] == 12
    u = {"model": "m", "prompt_tokens": 10, "completion_tokens": 5}
    assert (await report(ws, "task_completed", "c", task_id="t1", attempt=att, result="Hello", usage=u))[
        "type"
    ] == "ack"
    t = (await hub.get("/api/tasks/t1")).body
    assert t["status"] == "completed" and t["usage"]["total_tokens"] == 15
    await ws.close()


async def test_an_output_delta_over_the_limit_is_invalid_input(hub: Hub) -> None:
    ws, att = await started(hub)
    err = await report(ws, "task_progress", "p", task_id="t1", attempt=att, output_delta="x" * 65_537)
    assert (err["type"], err["data"]["code"]) == ("error", "invalid_input"), err
    assert (await hub.get("/api/tasks/t1")).body["output"] == ""
    await ws.close()


async def test_a_rate_limited_failure_requeues_without_counting_a_failure(hub: Hub) -> None:
    ws, att = await started(hub)
    err = {"code": "RATE_LIMITED", "message": "429"}
    u = {"model": "m", "prompt_tokens": 3, "completion_tokens": 0}
    ack = await report(ws, "task_failed", "f", task_id="t1", attempt=att, error=err, retry_after=30, usage=u)
    assert ack["type"] == "ack", ack
    failed = (await hub.events(types="task_failed"))[0]["data"]
    assert failed["failure_kind"] == "rate_limited" and failed["usage"]["total_tokens"] == 3
    t = (await hub.get("/api/tasks/t1")).body
    assert t["status"] == "pending" and t["failures"] == 0
    bad = await report(ws, "task_failed", "f2", task_id="t1", attempt=att, error=err, retry_after=-1)
    assert bad["data"]["code"] == "invalid_input"
    await ws.close()


async def test_a_question_is_answered_with_an_input_frame(hub: Hub) -> None:
    ws, att = await started(hub)
    ack = await report(
        ws,
        "input_request",
        "q",
        task_id="t1",
        attempt=att,
        request_id="r1",
        question="Which?",
        choices=["a", "b"],
    )
    assert (ack["type"], ack["data"]) == ("ack", {"type": "input_request", "task_id": "t1"}), ack
    t = (await hub.get("/api/tasks/t1")).body
    assert (t["status"], t["pending_input"]["request_id"]) == ("input_required", "r1")
    r = await hub.post("/api/tasks/t1/input", {"answer": "b"})
    assert r.status == 200, r
    m, _ = await recv_until(ws, lambda m: m["type"] == "input")
    assert m["message_id"] is None
    assert m["data"] == {
        "task_id": "t1",
        "attempt": att,
        "request_id": "r1",
        "answer": "b",
        "timed_out": False,
        "answered_by": "admin:anonymous",
    }
    done = await report(ws, "task_completed", "c", task_id="t1", attempt=att, result="b")
    assert done["type"] == "ack"
    await ws.close()


async def test_a_malformed_question_is_an_error_frame(hub: Hub) -> None:
    ws, att = await started(hub)
    err = await report(ws, "input_request", "q", task_id="t1", attempt=att, question="no request id")
    assert (err["type"], err["data"]["code"]) == ("error", "invalid_input"), err
    assert (await hub.get("/api/tasks/t1")).body["status"] == "running"
    await ws.close()


async def test_an_answer_given_while_the_agent_was_away_is_sent_again_on_reconnect(hub: Hub) -> None:
    ws, att = await started(hub)
    await report(ws, "input_request", "q", task_id="t1", attempt=att, request_id="r1", question="Go?")
    # a second connection replaces the first while the question is open: nothing to re-send
    mid = await hub.ws("/agents/ws")
    data = {"id": "a1", "name": "w", "capabilities": CODE, "running": {"t1": att}}
    await mid.send_json({"type": "register", "message_id": "r-2", "data": data})
    assert (await recv(mid))["type"] == "registered"
    await mid.close()  # gone: the answer below reaches no connection
    r = await hub.post("/api/tasks/t1/input", {"answer": "yes"})
    assert r.status == 200 and r.body["task"]["status"] == "running", r
    back = await hub.ws("/agents/ws")
    await back.send_json({"type": "register", "message_id": "r-3", "data": data})
    assert (await recv(back))["type"] == "registered"
    m, _ = await recv_until(back, lambda m: m["type"] in ("input", "cancel"))
    assert m["type"] == "input" and (m["data"]["request_id"], m["data"]["answer"]) == ("r1", "yes"), m
    assert (await report(back, "task_completed", "c", task_id="t1", attempt=att))["type"] == "ack"
    await back.close()
    await ws.close()


async def test_a_question_nobody_answers_in_time_gets_a_timed_out_input_frame(hub: Hub) -> None:
    ws, att = await started(hub)
    await report(
        ws,
        "input_request",
        "q",
        task_id="t1",
        attempt=att,
        request_id="r1",
        question="?",
        timeout_seconds=0.2,
    )
    m, _ = await recv_until(ws, lambda m: m["type"] == "input")
    assert m["data"] == {
        "task_id": "t1",
        "attempt": att,
        "request_id": "r1",
        "answer": None,
        "timed_out": True,
        "answered_by": "timeout",
    }
    assert (await hub.get("/api/tasks/t1")).body["status"] == "running"
    await ws.close()
