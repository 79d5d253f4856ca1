"""The dashboard's inbox, streamed output and LLM usage in a real browser, against a
real hub: a task submitted with ``requires_approval`` is approved from the page, a
question asked by a (pull) agent is answered from the page, the output the agent
streams shows in the task's details, and its usage in the usage panel.

The agent is driven over the REST pull routes (claim, start, progress with
``output_delta``, ``input-request``, complete with ``usage``), so each step
happens when the test says and every wait is on a condition.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e import test_dashboard as dashboard
from tests.e2e.test_dashboard import OUT, Browser, expect, ms, new_page
from tests.hubproc import Hub, wait_for

browser = dashboard.browser  # the same fixture: Debian's chromium, never a download


def _connected(page) -> None:
    expect(page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "connected", timeout=ms(15)
    )


def inbox_item(page, task_id: str):
    return page.locator(f'[data-testid="inbox-item"][data-task-id="{task_id}"]')


def test_approve_and_answer_from_the_inbox_and_see_output_and_usage(tmp_path: Path, browser: Browser) -> None:
    OUT.mkdir(exist_ok=True)
    hub = Hub(tmp_path / "hive.db", "--heartbeat-timeout", "120").start()
    try:
        page, console = new_page(browser, 1280, 900)
        page.goto(hub.url + "/")
        _connected(page)
        expect(page.get_by_test_id("inbox-empty")).to_be_visible()
        expect(page.get_by_test_id("usage-empty")).to_be_visible()

        # ---- approval: the task waits in the inbox until approved from the page
        gate = hub.post(
            "/api/tasks",
            {
                "type": "spend",
                "description": "Buy more GPUs",
                "requires_approval": True,
                # (no agent here can run it: it stays pending, and the ask agent gets the other task)
                "required_capabilities": [{"name": "purchasing"}],
            },
            expect=201,
        )
        assert gate["status"] == "awaiting_approval"
        item = inbox_item(page, gate["id"])
        expect(item).to_be_visible(timeout=ms(10))
        expect(item).to_have_attribute("data-kind", "awaiting_approval")
        expect(item).to_contain_text("Buy more GPUs")
        expect(page.get_by_test_id("inbox-count")).to_have_text("1")
        item.get_by_test_id("inbox-text").fill("budget ok")
        item.get_by_test_id("inbox-approve").click()
        expect(item).to_have_count(0, timeout=ms(10))
        approved = hub.get(f"/api/tasks/{gate['id']}")
        assert approved["status"] == "pending" and approved["approved_by"]
        assert any(
            e["data"]["task_id"] == gate["id"] and e["data"]["comment"] == "budget ok"
            for e in hub.events(types="task_approved")
        )
        # pending with no agent able to run it: the row says why
        row = page.locator(f'[data-testid="task-row"][data-task-id="{gate["id"]}"]')
        expect(row.get_by_test_id("task-step")).to_have_attribute(
            "data-blocked", re.compile(r"^(no_agent|dependencies|budget|quota:.+)$"), timeout=ms(10)
        )

        # ---- a pull agent runs a task, streams output and asks a question
        agent = hub.post(
            "/api/agents",
            {"name": "asker", "capabilities": [{"name": "ask", "proficiency": 0.9}]},
            expect=201,
        )
        task = hub.post(
            "/api/tasks",
            {"type": "ask", "description": "Write and ship", "required_capabilities": [{"name": "ask"}]},
            expect=201,
        )
        status, claim = hub.request("POST", f"/api/agents/{agent['id']}/claim?wait=10")
        assert status == 200 and claim["task"]["id"] == task["id"], (status, claim)
        me = {"agent_id": agent["id"], "attempt": claim["attempt"]}
        hub.post(f"/api/tasks/{task['id']}/start", me, expect=200)
        hub.post(
            f"/api/tasks/{task['id']}/progress",
            {**me, "progress": 0.5, "output_delta": "Hello, "},
            expect=200,
        )
        page.locator(
            f'[data-testid="task-row"][data-task-id="{task["id"]}"] [data-testid="task-title"]'
        ).click()
        expect(page.get_by_test_id("task-output")).to_have_text("Hello, ", timeout=ms(10))
        hub.post(
            f"/api/tasks/{task['id']}/progress", {**me, "progress": 0.6, "output_delta": "world"}, expect=200
        )
        expect(page.get_by_test_id("task-output")).to_have_text("Hello, world", timeout=ms(10))
        page.get_by_test_id("task-details-close").click()

        question = {
            **me,
            "request_id": "q1",
            "question": "Ship it?",
            "choices": ["yes", "no"],
            "timeout_seconds": 300,
        }
        hub.post(f"/api/tasks/{task['id']}/input-request", question, expect=200)
        item = inbox_item(page, task["id"])
        expect(item).to_have_attribute("data-kind", "input_required", timeout=ms(10))
        expect(item.get_by_test_id("inbox-question")).to_have_text("Ship it?")
        expect(item.get_by_test_id("inbox-choice")).to_have_count(2)
        page.screenshot(path=str(OUT / "dashboard-inbox.png"))
        item.locator('[data-testid="inbox-choice"][data-choice="yes"]').click()
        expect(item).to_have_count(0, timeout=ms(10))
        answered = hub.get(f"/api/tasks/{task['id']}")
        assert answered["status"] == "running" and answered["pending_input"] is None
        assert answered["last_input"]["answer"] == "yes"

        # ---- the usage of the completed attempt shows in the usage panel
        usage = {"model": "smol-e2e", "prompt_tokens": 120, "completion_tokens": 30}
        hub.post(
            f"/api/tasks/{task['id']}/complete", {**me, "result": {"ok": True}, "usage": usage}, expect=200
        )
        model_row = page.locator(
            '[data-testid="usage-by-model"] [data-testid="usage-row"][data-name="smol-e2e"]'
        )
        expect(model_row).to_contain_text("150", timeout=ms(15))
        owner_row = page.locator(
            '[data-testid="usage-by-owner"] [data-testid="usage-row"][data-name="anonymous"]'
        )
        expect(owner_row).to_contain_text("150")
        expect(page.get_by_test_id("usage-total")).to_contain_text("150 tokens")
        wait_for(lambda: hub.get("/api/hive/status")["llm"]["total"]["total_tokens"] == 150, 10, "llm totals")
        page.screenshot(path=str(OUT / "dashboard-usage.png"), full_page=True)
        console.check()
    finally:
        hub.stop()


def test_answer_a_free_text_question_from_the_inbox(tmp_path: Path, browser: Browser) -> None:
    hub = Hub(tmp_path / "hive.db", "--heartbeat-timeout", "120").start()
    try:
        page, console = new_page(browser, 1280, 900)
        page.goto(hub.url + "/")
        _connected(page)
        agent = hub.post(
            "/api/agents",
            {"name": "asker", "capabilities": [{"name": "free", "proficiency": 0.9}]},
            expect=201,
        )
        task = hub.post(
            "/api/tasks", {"type": "free", "required_capabilities": [{"name": "free"}]}, expect=201
        )
        status, claim = hub.request("POST", f"/api/agents/{agent['id']}/claim?wait=10")
        assert status == 200, (status, claim)
        me = {"agent_id": agent["id"], "attempt": claim["attempt"]}
        hub.post(f"/api/tasks/{task['id']}/start", me, expect=200)
        q = {**me, "request_id": "name", "question": "What is the customer's name?", "timeout_seconds": 300}
        hub.post(f"/api/tasks/{task['id']}/input-request", q, expect=200)
        item = inbox_item(page, task["id"])
        expect(item.get_by_test_id("inbox-question")).to_have_text(q["question"], timeout=ms(10))
        item.get_by_test_id("inbox-text").fill("Ada Lovelace")
        item.get_by_test_id("inbox-send").click()
        expect(item).to_have_count(0, timeout=ms(10))
        last = hub.get(f"/api/tasks/{task['id']}")["last_input"]
        assert (last["answer"], last["request_id"]) == ("Ada Lovelace", "name")
        console.check()
    finally:
        hub.stop()
