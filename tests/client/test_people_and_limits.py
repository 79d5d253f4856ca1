"""The client methods of the approval, input, quota and budget routes: the request
each sends (method, path, body) and what it returns, against canned replies of a
tiny hub; the hub's error codes come back as the typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hivehub.client import (
    BudgetNotFound,
    HiveClient,
    InvalidInput,
    InvalidTransition,
    QuotaInUse,
    QuotaNotFound,
    SyncHiveClient,
)
from tests.cli.fakerest import FakeRest

TASK = {"id": "t 1", "status": "pending", "approved_by": "carol"}
QUOTA = {"name": "p", "requests_per_minute": 60, "tokens_per_minute": None, "max_concurrent": 2}
BUDGET = {"owner": "alice", "tokens_per_day": 1000, "cost_usd_per_day": None, "blocked": False}


def error(code: str, status: int) -> tuple[dict, int]:
    return {"error": {"code": code, "message": code.replace("_", " "), "details": {}}}, status


@pytest.fixture
def hub() -> Iterator[FakeRest]:
    with FakeRest() as h:
        yield h


def sent(hub: FakeRest) -> list[tuple[str, str, object]]:
    return [(r["method"], r["path"], r["body"]) for r in hub.requests]


async def test_approve_reject_answer(hub: FakeRest) -> None:
    hub.reply("POST", "/api/tasks/t 1/approve", {"task": TASK})
    hub.reply("POST", "/api/tasks/t 1/reject", {"task": {**TASK, "status": "cancelled"}})
    hub.reply("POST", "/api/tasks/t 1/input", {"task": {**TASK, "status": "running"}})
    async with HiveClient(hub.url) as c:
        assert await c.approve_task("t 1", comment="fine") == TASK  # the task, unwrapped
        assert (await c.reject_task("t 1"))["status"] == "cancelled"
        assert (await c.answer_task("t 1", "yes"))["status"] == "running"
        await c.answer_task("t 1", "no", request_id="q2")
    assert sent(hub) == [
        ("POST", "/api/tasks/t 1/approve", {"comment": "fine"}),
        ("POST", "/api/tasks/t 1/reject", {}),
        ("POST", "/api/tasks/t 1/input", {"answer": "yes"}),
        ("POST", "/api/tasks/t 1/input", {"answer": "no", "request_id": "q2"}),
    ]


async def test_the_errors_of_the_people_routes_are_typed(hub: FakeRest) -> None:
    hub.reply("POST", "/api/tasks/t/approve", *error("invalid_transition", 409))
    hub.reply("POST", "/api/tasks/t/input", *error("invalid_input", 400))
    async with HiveClient(hub.url) as c:
        with pytest.raises(InvalidTransition) as ei:
            await c.approve_task("t")
        assert ei.value.status == 409
        with pytest.raises(InvalidInput):
            await c.answer_task("t", "maybe")


async def test_the_inbox_asks_for_both_waiting_statuses(hub: FakeRest) -> None:
    hub.reply("GET", "/api/tasks", {"tasks": [TASK], "next_cursor": None})
    async with HiveClient(hub.url) as c:
        assert await c.inbox(limit=5) == [TASK, TASK]
    assert [(r["query"]["status"], r["query"]["limit"]) for r in hub.requests] == [
        ("awaiting_approval", "5"),
        ("input_required", "5"),
    ]


async def test_quotas(hub: FakeRest) -> None:
    hub.reply("PUT", "/api/quotas/p", {"quota": QUOTA})
    hub.reply("GET", "/api/quotas", {"quotas": [QUOTA]})
    hub.reply("GET", "/api/quotas/p", {"quota": QUOTA})
    hub.reply("DELETE", "/api/quotas/p", {"deleted": "p"})
    hub.reply("GET", "/api/quotas/nope", *error("quota_not_found", 404))
    hub.reply("DELETE", "/api/quotas/busy", *error("quota_in_use", 409))
    async with HiveClient(hub.url) as c:
        assert await c.set_quota("p", requests_per_minute=60, max_concurrent=2) == QUOTA
        assert await c.list_quotas() == [QUOTA]
        assert await c.get_quota("p") == QUOTA
        assert await c.delete_quota("p") == {"deleted": "p"}
        with pytest.raises(QuotaNotFound):
            await c.get_quota("nope")
        with pytest.raises(QuotaInUse):
            await c.delete_quota("busy")
    assert sent(hub)[0] == ("PUT", "/api/quotas/p", {"requests_per_minute": 60, "max_concurrent": 2})


async def test_budgets(hub: FakeRest) -> None:
    hub.reply("PUT", "/api/budgets/alice", {"budget": BUDGET})
    hub.reply("GET", "/api/budgets", {"budgets": [BUDGET]})
    hub.reply("GET", "/api/budgets/alice", {"budget": BUDGET})
    hub.reply("DELETE", "/api/budgets/alice", {"deleted": "alice"})
    hub.reply("GET", "/api/budgets/bob", *error("budget_not_found", 404))
    async with HiveClient(hub.url) as c:
        assert await c.set_budget("alice", tokens_per_day=1000, cost_usd_per_day=1.5) == BUDGET
        assert await c.list_budgets() == [BUDGET]
        assert await c.get_budget("alice") == BUDGET
        assert await c.delete_budget("alice") == {"deleted": "alice"}
        with pytest.raises(BudgetNotFound):
            await c.get_budget("bob")
    assert sent(hub)[0] == ("PUT", "/api/budgets/alice", {"tokens_per_day": 1000, "cost_usd_per_day": 1.5})


def test_the_blocking_client_has_the_same_methods(hub: FakeRest) -> None:
    hub.reply("POST", "/api/tasks/t/approve", {"task": TASK})
    hub.reply("GET", "/api/quotas", {"quotas": [QUOTA]})
    hub.reply("PUT", "/api/budgets/alice", {"budget": BUDGET})
    with SyncHiveClient(hub.url) as c:
        assert c.approve_task("t") == TASK
        assert c.list_quotas() == [QUOTA]
        assert c.set_budget("alice", tokens_per_day=1000) == BUDGET
    for name in (
        "approve_task",
        "reject_task",
        "answer_task",
        "inbox",
        "set_quota",
        "list_quotas",
        "get_quota",
        "delete_quota",
        "set_budget",
        "list_budgets",
        "get_budget",
        "delete_budget",
    ):
        assert callable(getattr(SyncHiveClient, name)) and callable(getattr(HiveClient, name))
