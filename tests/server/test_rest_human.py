"""People in the loop over REST: approving and rejecting tasks that await
approval, a pull agent's question (``input-request``) and its answer (``input``),
and the inbox (``GET /api/tasks?status=...``)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Hub, bearer

OWNER = "admin:anonymous"  # whom a request counts as with auth off


async def running(hub: Hub, task_id: str = "t1", agent_id: str = "a1") -> int:
    """A pull agent ``agent_id`` holding ``task_id`` started; returns the attempt."""
    await hub.register(agent_id, ["code"], id=agent_id)
    await hub.submit(id=task_id, required_capabilities=[{"name": "code"}])
    c = await hub.post(f"/api/agents/{agent_id}/claim?wait=0")
    assert c.status == 200, c
    att: int = c.body["attempt"]
    assert (
        await hub.post(f"/api/tasks/{task_id}/start", {"agent_id": agent_id, "attempt": att})
    ).status == 200
    return att


async def ask(hub: Hub, att: int, **extra: Any) -> Any:
    body = {"agent_id": "a1", "attempt": att, "request_id": "q1", "question": "Ship it?", **extra}
    return await hub.post("/api/tasks/t1/input-request", body)


# ------------------------------------------------------------------ approval


async def test_approve_lets_the_task_into_the_queue(hub: Hub) -> None:
    await hub.submit(id="t1", requires_approval=True)
    inbox = await hub.get("/api/tasks?status=awaiting_approval")
    assert [t["id"] for t in inbox.body["tasks"]] == ["t1"]
    assert inbox.body["tasks"][0]["blocked_reason"] == "approval"
    r = await hub.post("/api/tasks/t1/approve", {"comment": "fine"})
    assert r.status == 200, r
    assert r.body["task"]["status"] == "pending" and r.body["task"]["approved_by"] == OWNER
    ev = await hub.events(types="task_approved")
    assert ev[0]["data"]["comment"] == "fine" and ev[0]["data"]["approved_by"] == OWNER


async def test_reject_cancels_the_task(hub: Hub) -> None:
    await hub.submit(id="t1", requires_approval=True)
    r = await hub.post("/api/tasks/t1/reject", {"reason": "too costly"})
    assert r.status == 200, r
    assert r.body["task"]["status"] == "cancelled"
    rej = (await hub.events(types="task_rejected"))[0]["data"]
    assert (rej["reason"], rej["rejected_by"]) == ("too costly", OWNER)


async def test_approve_and_reject_accept_an_empty_body(hub: Hub) -> None:
    await hub.submit(id="t1", requires_approval=True)
    await hub.submit(id="t2", requires_approval=True)
    assert (await hub.request("POST", "/api/tasks/t1/approve")).status == 200
    assert (await hub.request("POST", "/api/tasks/t2/reject")).body["task"]["status"] == "cancelled"


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_approving_or_rejecting_a_task_not_awaiting_approval_is_409(hub: Hub, action: str) -> None:
    await hub.submit(id="t1")
    r = await hub.post(f"/api/tasks/t1/{action}", {})
    assert (r.status, r.code) == (409, "invalid_transition"), r


@pytest.mark.parametrize("action", ["approve", "reject", "input"])
async def test_an_unknown_task_is_404(hub: Hub, action: str) -> None:
    body = {"answer": "yes"} if action == "input" else {}
    r = await hub.post(f"/api/tasks/nope/{action}", body)
    assert (r.status, r.code) == (404, "task_not_found"), r


async def test_an_unknown_body_field_is_422(hub: Hub) -> None:
    await hub.submit(id="t1", requires_approval=True)
    r = await hub.post("/api/tasks/t1/approve", {"approved_by": "someone else"})
    assert (r.status, r.code) == (422, "invalid_input"), r


# ------------------------------------------------------------------ input


async def test_a_pull_agents_question_waits_for_the_answer(hub: Hub) -> None:
    att = await running(hub)
    r = await ask(hub, att, choices=["yes", "no"], timeout_seconds=600)
    assert r.status == 200, r
    t = r.body["task"]
    assert (t["status"], t["blocked_reason"]) == ("input_required", "input")
    assert t["pending_input"]["question"] == "Ship it?" and t["pending_input"]["choices"] == ["yes", "no"]
    inbox = await hub.get("/api/tasks?status=input_required")
    assert [x["id"] for x in inbox.body["tasks"]] == ["t1"]
    wrong = await hub.post("/api/tasks/t1/input", {"answer": "maybe"})
    assert (wrong.status, wrong.code) == (422, "invalid_input"), wrong
    ok = await hub.post("/api/tasks/t1/input", {"answer": "yes", "request_id": "q1"})
    assert ok.status == 200, ok
    t = ok.body["task"]
    assert t["status"] == "running" and t["pending_input"] is None
    li = t["last_input"]
    assert (li["request_id"], li["answer"], li["answered_by"], li["timed_out"]) == ("q1", "yes", OWNER, False)
    # what a pull agent polls
    assert (await hub.get("/api/tasks/t1")).body["last_input"]["answer"] == "yes"


async def test_answering_a_task_that_asks_nothing_is_409(hub: Hub) -> None:
    await running(hub)
    r = await hub.post("/api/tasks/t1/input", {"answer": "yes"})
    assert r.status == 409, r


async def test_a_question_from_an_agent_not_holding_the_task_is_refused(hub: Hub) -> None:
    att = await running(hub)
    await hub.register("a2", ["code"], id="a2")
    body = {"agent_id": "a2", "attempt": att, "request_id": "q1", "question": "?"}
    r = await hub.post("/api/tasks/t1/input-request", body)
    assert (r.status, r.code) == (409, "not_task_holder"), r


@pytest.mark.parametrize(
    "extra",
    [{"question": ""}, {"timeout_seconds": -1}, {"choices": []}, {"request_id": ""}],
)
async def test_a_malformed_question_is_422(hub: Hub, extra: dict[str, Any]) -> None:
    att = await running(hub)
    r = await ask(hub, att, **extra)
    assert (r.status, r.code) == (422, "invalid_input"), r
    assert (await hub.get("/api/tasks/t1")).body["status"] == "running"


# ------------------------------------------------------------------ roles


async def test_people_routes_need_the_operator_role(secured: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = secured
    op = bearer(tokens["operator"])
    for tid in ("t1", "t2"):
        r = await hub.post("/api/tasks", {"id": tid, "requires_approval": True}, headers=op)
        assert r.status == 201, r
    for path, body in (
        ("/api/tasks/t1/approve", {}),
        ("/api/tasks/t2/reject", {}),
        ("/api/tasks/t1/input", {"answer": "x"}),
    ):
        for role in ("viewer", "agent"):
            r = await hub.post(path, body, headers=bearer(tokens[role]))
            assert r.status == 403, (role, path, r)
    r = await hub.post("/api/tasks/t1/approve", {}, headers=op)
    assert r.status == 200 and r.body["task"]["approved_by"].startswith("operator:"), r
    assert (await hub.post("/api/tasks/t2/reject", {}, headers=bearer(tokens["admin"]))).status == 200


async def test_an_agent_token_asks_only_as_its_own_agent(secured: tuple[Hub, dict[str, str]]) -> None:
    hub, tokens = secured
    body = {"agent_id": "other", "attempt": 1, "request_id": "q", "question": "?"}
    r = await hub.post("/api/tasks/t1/input-request", body, headers=bearer(tokens["agent"]))
    assert r.status == 403, r
    assert (
        await hub.post("/api/tasks/t1/input-request", body, headers=bearer(tokens["viewer"]))
    ).status == 403
