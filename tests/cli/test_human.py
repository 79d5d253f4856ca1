"""``hive approve|reject|answer|inbox`` and ``hive quotas|budgets``: what each sends to
the hub, and how the replies render (canned JSON from a tiny hub, tasks made by the core)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hivehub.cli import main
from hivehub.core.commands import RequestInput
from tests.cli.fakerest import FakeRest
from tests.cli.scenario import task_json
from tests.core._harness import Sim

QUOTA = {
    "name": "openai-main",
    "requests_per_minute": 60,
    "tokens_per_minute": 90000,
    "max_concurrent": None,
    "in_flight": 2,
    "paused_until": None,
    "agents": ["agent-1", "agent-2"],
}
BUDGET = {
    "owner": "alice",
    "tokens_per_day": 100000,
    "cost_usd_per_day": 2.5,
    "day": "2026-12-02",
    "spent_tokens": 1234,
    "spent_cost_usd": 0.0123,
    "reserved_tokens": 500,
    "reserved_cost_usd": 0.0,
    "blocked": True,
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRest]:
    monkeypatch.setenv("COLUMNS", "200")
    with FakeRest() as h:
        monkeypatch.setenv("HIVE_URL", h.url)
        yield h


def waiting_tasks() -> tuple[dict, dict]:
    """One task awaiting approval and one with an open question, as the hub holds them."""
    s = Sim()
    s.register("a", t=0)
    s.submit("ask", t=1, type="deploy")
    s.start("ask", t=2)
    s.do(
        RequestInput(
            task_id="ask",
            agent_id="a",
            attempt=1,
            request_id="q7",
            question="Which region?",
            choices=["eu-west", "us-east"],
            timeout_seconds=60,
        ),
        3,
    )
    s.submit("gate", t=4, type="spend", description="buy more GPUs", requires_approval=True)
    return task_json(s, "gate"), task_json(s, "ask")


def sent(hub: FakeRest) -> list[tuple[str, str, object]]:
    return [(r["method"], r["path"], r["body"]) for r in hub.requests]


def test_approve_reject_answer_send_the_routes_of_the_design(
    hub: FakeRest, capsys: pytest.CaptureFixture[str]
) -> None:
    gate, ask = waiting_tasks()
    hub.reply("POST", "/api/tasks/gate/approve", {"task": {**gate, "status": "pending"}})
    hub.reply("POST", "/api/tasks/gate/reject", {"task": {**gate, "status": "cancelled"}})
    hub.reply("POST", "/api/tasks/ask/input", {"task": {**ask, "status": "running"}})
    assert main(["approve", "gate", "--comment", "ok by me"]) == 0
    assert "task gate approved (pending)" in capsys.readouterr().out
    assert main(["reject", "gate", "--reason", "too dear"]) == 0
    assert "rejected (cancelled)" in capsys.readouterr().out
    assert main(["answer", "ask", "eu-west", "--request-id", "q7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "running"
    assert sent(hub) == [
        ("POST", "/api/tasks/gate/approve", {"comment": "ok by me"}),
        ("POST", "/api/tasks/gate/reject", {"reason": "too dear"}),
        ("POST", "/api/tasks/ask/input", {"answer": "eu-west", "request_id": "q7"}),
    ]


def test_a_refusal_of_the_hub_is_exit_2_with_its_code(
    hub: FakeRest, capsys: pytest.CaptureFixture[str]
) -> None:
    err = {"error": {"code": "invalid_transition", "message": "task t is running", "details": {}}}
    hub.reply("POST", "/api/tasks/t/approve", err, status=409)
    assert main(["approve", "t"]) == 2
    assert "invalid_transition: task t is running (HTTP 409)" in capsys.readouterr().err


def test_the_inbox_shows_the_approvals_and_the_questions_with_their_choices(
    hub: FakeRest, capsys: pytest.CaptureFixture[str]
) -> None:
    gate, ask = waiting_tasks()
    hub.reply("GET", "/api/tasks", {"tasks": [gate, ask], "next_cursor": None})
    # (the fake answers both status queries alike; the inbox asks for each status once)
    assert main(["inbox"]) == 0
    out = capsys.readouterr().out
    assert "waiting for a person" in out
    assert "approval" in out and "buy more GPUs" in out
    assert "answer" in out and "Which region?" in out and "eu-west | us-east" in out
    queries = [r["query"]["status"] for r in hub.requests]
    assert queries == ["awaiting_approval", "input_required"]
    assert main(["inbox", "--json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)] == ["gate", "ask", "gate", "ask"]


def test_quotas_set_list_delete(hub: FakeRest, capsys: pytest.CaptureFixture[str]) -> None:
    hub.reply("PUT", "/api/quotas/openai-main", {"quota": QUOTA})
    hub.reply("GET", "/api/quotas", {"quotas": [QUOTA]})
    hub.reply("DELETE", "/api/quotas/openai-main", {"deleted": "openai-main"})
    assert main(["quotas", "set", "openai-main", "--rpm", "60", "--tpm", "90000"]) == 0
    assert main(["quotas", "list"]) == 0
    out = capsys.readouterr().out
    assert "openai-main" in out and "90,000" in out and "agent-1, agent-2" in out
    assert main(["quotas", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [QUOTA]
    assert main(["quotas", "delete", "openai-main"]) == 0
    assert "deleted quota pool openai-main" in capsys.readouterr().out
    assert sent(hub)[0] == (
        "PUT",
        "/api/quotas/openai-main",
        {"requests_per_minute": 60, "tokens_per_minute": 90000},
    )
    assert sent(hub)[-1][:2] == ("DELETE", "/api/quotas/openai-main")


def test_budgets_set_list_delete(hub: FakeRest, capsys: pytest.CaptureFixture[str]) -> None:
    hub.reply("PUT", "/api/budgets/alice", {"budget": BUDGET})
    hub.reply("GET", "/api/budgets", {"budgets": [BUDGET]})
    hub.reply("DELETE", "/api/budgets/alice", {"deleted": "alice"})
    assert main(["budgets", "set", "alice", "--tokens-per-day", "100000", "--cost-per-day", "2.5"]) == 0
    assert main(["budgets", "list"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "1,234" in out and "$2.5000" in out and "blocked" in out
    assert main(["budgets", "delete", "alice"]) == 0
    assert sent(hub)[0] == ("PUT", "/api/budgets/alice", {"tokens_per_day": 100000, "cost_usd_per_day": 2.5})
    err = {"error": {"code": "budget_not_found", "message": "no budget for bob", "details": {}}}
    hub.reply("DELETE", "/api/budgets/bob", err, status=404)
    assert main(["budgets", "delete", "bob"]) == 2
    assert "budget_not_found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["quotas", "set", "p"],  # no limit at all
        ["budgets", "set", "alice"],
        ["quotas", "set", "p", "--tpm", "0"],
        ["quotas", "set", "p", "--rpm", "2.5"],
        ["quotas", "set", "p", "--max-concurrent", "-1"],
        ["budgets", "set", "alice", "--cost-per-day", "0"],
        ["budgets", "set", "alice", "--tokens-per-day", "1e13"],
        ["inbox", "--limit", "0"],
    ],
)
def test_bad_limits_are_usage_errors_before_anything_is_sent(
    hub: FakeRest, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    assert hub.requests == []


def test_an_unreachable_hub_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.hubproc import free_port

    assert main(["inbox", "--url", f"http://127.0.0.1:{free_port()}"]) == 3
    assert "hub_unreachable" in capsys.readouterr().err
