"""The web dashboard in a real browser: Playwright (sync API) driving Debian's
chromium against a real hub subprocess.

Needs ``pip install playwright`` (the test extra) and ``/usr/bin/chromium``
(``apt-get install -y chromium``); no browser is ever downloaded. Screenshots
go to ``test-output/`` (git-ignored). Every wait is on a selector or a
condition with a timeout, never a fixed sleep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TIME_SCALE
from tests.hubproc import ROOT, Hub, wait_for

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - reported by the fixture
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT = ROOT / "test-output"
TEXT = "The hive works well. Agents are fast and reliable."
ONLINE = re.compile(r"^(idle|active|learning)$")


def ms(seconds: float) -> float:
    """A Playwright timeout in ms, scaled like every other wait in the suite."""
    return seconds * 1000 * TIME_SCALE


@pytest.fixture
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.fail("playwright is not installed: pip install 'playwright==1.65.2' (the test extra)")
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium (never download a browser)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Page errors and console errors, minus the ones a test expects."""

    def __init__(self, page: Page, allow: tuple[str, ...] = ()) -> None:
        self.errors: list[str] = []
        self.allow = allow
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not any(a in msg.text for a in self.allow):
            self.errors.append(f"console.error: {msg.text}")

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)


def new_page(
    browser: Browser, width: int = 1280, height: int = 900, allow: tuple[str, ...] = ()
) -> tuple[Page, Console]:
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    return page, Console(page, allow)


def task_row(page: Page, task_id: str):
    return page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')


def no_horizontal_overflow(page: Page) -> None:
    over = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert over <= 0, f"page is {over}px wider than the viewport"


def test_dashboard_submit_task_and_watch_it_complete(tmp_path: Path, browser: Browser) -> None:
    """Demo agents online -> a task submitted through the form -> completed, with its result in the details."""
    OUT.mkdir(exist_ok=True)
    hub = Hub(tmp_path / "hive.db", "--demo", "--no-demo-workload").start()
    try:
        page, console = new_page(browser, 1280, 900)
        page.goto(hub.url + "/")
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=ms(15)
        )

        # the demo agents, live
        dp = page.locator('[data-testid="agent-card"][data-agent-name^="DataProcessor"]')
        expect(dp).to_have_attribute("data-status", ONLINE, timeout=ms(20))
        expect(dp.get_by_test_id("agent-status")).to_have_text(ONLINE)
        expect(page.locator('[data-testid="agent-card"]')).to_have_count(3, timeout=ms(20))
        expect(dp.locator('.cap[data-capability="data_processing"]')).to_be_visible()
        expect(dp.get_by_test_id("agent-load")).to_have_text(re.compile(r"^\d+ / \d+$"))
        expect(page.get_by_test_id("hive-health")).to_have_text(re.compile("healthy|degraded|unhealthy"))
        expect(page.get_by_test_id("module-item").first).to_be_visible()

        # the form validates the input JSON before sending
        page.get_by_test_id("submit-type").fill("text_analysis")
        page.get_by_test_id("submit-description").fill("Dashboard e2e: sentiment of a short text")
        page.get_by_test_id("submit-priority").select_option("high")
        page.get_by_test_id("cap-name").first.fill("text_analysis")
        page.get_by_test_id("cap-min").first.fill("0.5")
        page.get_by_test_id("submit-input").fill('{"text": ')
        expect(page.get_by_test_id("submit-input-error")).to_be_visible()
        expect(page.get_by_test_id("submit-button")).to_be_disabled()
        page.get_by_test_id("submit-input").fill(json.dumps({"text": TEXT}))
        expect(page.get_by_test_id("submit-input-error")).to_be_hidden()
        page.get_by_test_id("submit-timeout").fill("60")
        page.get_by_test_id("submit-retries").fill("2")
        page.get_by_test_id("submit-button").click()

        message = page.get_by_test_id("submit-message")
        expect(message).to_have_attribute("data-kind", "ok", timeout=ms(10))
        task_id = message.get_attribute("data-task-id")
        assert task_id
        sent = hub.get(f"/api/tasks/{task_id}")
        assert sent["type"] == "text_analysis" and sent["priority"] == 3
        assert sent["required_capabilities"] == [{"name": "text_analysis", "min_proficiency": 0.5}]
        assert sent["input"] == {"text": TEXT}
        assert sent["timeout_seconds"] == 60 and sent["max_retries"] == 2

        # the tasks panel follows it live to completed
        row = task_row(page, task_id)
        expect(row).to_be_visible(timeout=ms(10))
        expect(row).to_have_attribute("data-status", "completed", timeout=ms(30))
        expect(row.get_by_test_id("task-status")).to_have_text("completed")
        expect(row.get_by_test_id("task-progress")).to_have_attribute("data-value", "1.000")
        done = hub.get(f"/api/tasks/{task_id}")
        assert done["status"] == "completed"
        agent_name = hub.get(f"/api/agents/{done['assigned_agent_id']}")["name"]
        expect(row.get_by_test_id("task-agent")).to_have_text(agent_name)

        # details: result, attempts, timestamps, agent
        row.get_by_test_id("task-title").click()
        details = page.get_by_test_id("task-details")
        expect(details).to_be_visible()
        expect(details).to_have_attribute("data-task-id", task_id)
        expect(page.get_by_test_id("task-details-status")).to_have_text("completed")
        result = page.get_by_test_id("task-result")
        expect(result).to_contain_text('"sentiment"', timeout=ms(10))
        assert json.loads(result.inner_text()) == done["result"]
        expect(page.get_by_test_id("task-input")).to_contain_text(TEXT)
        expect(page.locator('[data-testid="task-attempt"][data-outcome="completed"]')).to_have_count(
            1, timeout=ms(10)
        )
        expect(page.get_by_test_id("task-details-facts")).to_contain_text(agent_name)
        expect(page.get_by_test_id("task-details-cancel")).to_be_hidden()
        page.screenshot(path=str(OUT / "dashboard-details.png"))
        page.get_by_test_id("task-details-close").click()
        expect(details).to_be_hidden()

        # the feed, the chart and the counters saw it too
        expect(page.locator('[data-testid="feed-item"][data-type="task_completed"]').first).to_be_visible()
        expect(page.get_by_test_id("chart-summary")).to_have_attribute(
            "data-total", re.compile(r"^[1-9]\d*$"), timeout=ms(5)
        )
        expect(page.get_by_test_id("metric-completed")).to_have_text(re.compile(r"^[1-9]\d*$"))
        expect(page.get_by_test_id("last-sequence")).to_have_text(re.compile(r"^\d+$"))

        # feed controls: pause holds the view, a type filter hides entries
        page.get_by_test_id("feed-pause").click()
        expect(page.get_by_test_id("feed-pause")).to_have_attribute("aria-pressed", "true")
        page.get_by_test_id("feed-pause").click()
        expect(page.get_by_test_id("feed-pause")).to_have_attribute("aria-pressed", "false")
        page.get_by_test_id("feed-type-filter").locator("summary").click()
        page.locator('[data-testid="feed-filter"][data-type="task_completed"]').uncheck()
        expect(page.locator('[data-testid="feed-item"][data-type="task_completed"]')).to_have_count(0)
        page.locator('[data-testid="feed-filter"][data-type="task_completed"]').check()
        expect(page.locator('[data-testid="feed-item"][data-type="task_completed"]').first).to_be_visible()
        page.get_by_test_id("feed-type-filter").locator("summary").click()

        # the task filters
        page.get_by_test_id("task-filter-status").select_option("completed")
        expect(row).to_be_visible()
        page.get_by_test_id("task-filter-status").select_option("pending")
        expect(row).to_be_hidden()
        page.get_by_test_id("task-filter-status").select_option("")
        page.get_by_test_id("task-filter-type").select_option("text_analysis")
        expect(row).to_be_visible()
        page.get_by_test_id("task-filter-type").select_option("")

        no_horizontal_overflow(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(OUT / "dashboard.png"))
        page.screenshot(path=str(OUT / "dashboard-full.png"), full_page=True)

        page.set_viewport_size({"width": 800, "height": 900})
        expect(page.get_by_test_id("agents-panel")).to_be_visible()
        wait_for(
            lambda: page.evaluate("document.querySelector('.grid').getBoundingClientRect().width") <= 800,
            what="narrow layout",
        )
        no_horizontal_overflow(page)
        page.screenshot(path=str(OUT / "dashboard-narrow.png"), full_page=True)
        console.check()
    finally:
        hub.stop()


def test_dashboard_actions_and_resume_after_hub_restart(tmp_path: Path, browser: Browser) -> None:
    """Cancel, retry and remove from the page; the page resumes with since after the hub restarts."""
    db = tmp_path / "hive.db"
    hub = Hub(db).start()
    port = hub.port
    # while the hub is down the browser reports failed WebSocket handshakes
    page, console = new_page(
        browser, allow=("WebSocket connection to", "Failed to load resource", "ERR_CONNECTION_REFUSED")
    )
    try:
        agent = hub.post(
            "/api/agents",
            {"name": "Temp-1", "capabilities": [{"name": "misc", "proficiency": 0.5}]},
            expect=201,
        )
        stuck = hub.post(
            "/api/tasks",
            {"type": "nobody_can", "required_capabilities": [{"name": "poetry", "min_proficiency": 0.9}]},
            expect=201,
        )
        page.goto(hub.url + "/")
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=ms(15)
        )

        row = task_row(page, stuck["id"])
        expect(row).to_have_attribute("data-status", "pending", timeout=ms(10))
        row.get_by_test_id("task-cancel").click()
        page.get_by_test_id("confirm-ok").click()  # cancel, retry and remove ask first (issue 15)
        expect(row).to_have_attribute("data-status", "cancelled", timeout=ms(10))
        expect(row.get_by_test_id("task-cancel")).to_be_hidden()
        row.get_by_test_id("task-retry").click()
        page.get_by_test_id("confirm-ok").click()
        expect(row).to_have_attribute("data-status", "pending", timeout=ms(10))
        assert hub.get(f"/api/tasks/{stuck['id']}")["status"] == "pending"

        card = page.locator(f'[data-testid="agent-card"][data-agent-id="{agent["id"]}"]')
        expect(card).to_be_visible()
        card.get_by_test_id("agent-remove").click()
        page.get_by_test_id("confirm-ok").click()
        expect(card).to_have_count(0, timeout=ms(10))
        assert hub.request("GET", f"/api/agents/{agent['id']}")[0] == 404

        seq_before = int(page.get_by_test_id("last-sequence").inner_text())
        hub.stop()
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", re.compile("reconnecting|offline"), timeout=ms(15)
        )
        hub = Hub(db, port=port).start()
        # made while the page is (possibly still) disconnected: must arrive through the replay
        late = hub.post(
            "/api/tasks", {"type": "after_restart", "description": "made after the restart"}, expect=201
        )
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=ms(45)
        )
        expect(task_row(page, late["id"])).to_be_visible(timeout=ms(15))
        stats = page.evaluate("window.hive.stream.stats")
        assert stats["reconnects"] >= 1, stats
        assert int(page.get_by_test_id("last-sequence").inner_text()) > seq_before

        # the page's mirror equals the hub's state, task by task
        wait_for(
            lambda: page.evaluate("window.hive.stream.lastSequence")
            >= hub.get("/api/hive/status")["published_sequence"],
            what="the page to catch up",
        )
        mirror = page.evaluate(
            "Object.fromEntries([...window.hive.state.tasks.values()].map(t => [t.id, t.status]))"
        )
        assert mirror == {t["id"]: t["status"] for t in hub.get("/api/tasks?limit=1000")["tasks"]}
        console.check()
    finally:
        hub.stop()


def test_dashboard_token_field(tmp_path: Path, browser: Browser) -> None:
    """With auth on, the page says why it is offline; a token typed in connects it and is used for REST."""
    hub = Hub(tmp_path / "hive.db", "--admin-token", "dash-secret").start()
    page, console = new_page(browser, allow=("Failed to load resource", "401"))
    try:
        page.goto(hub.url + "/")
        conn = page.get_by_test_id("connection-state")
        expect(conn).to_have_attribute("data-state", "offline", timeout=ms(15))
        expect(conn).to_contain_text("unauthorized")
        page.get_by_test_id("token-input").fill("dash-secret")
        page.get_by_test_id("token-save").click()
        expect(conn).to_have_attribute("data-state", "connected", timeout=ms(15))
        assert page.evaluate("localStorage.getItem('hivehub.token')") == "dash-secret"

        page.get_by_test_id("submit-type").fill("secured")
        page.get_by_test_id("submit-button").click()
        message = page.get_by_test_id("submit-message")
        expect(message).to_have_attribute("data-kind", "ok", timeout=ms(10))
        task_id = message.get_attribute("data-task-id")
        expect(task_row(page, task_id)).to_be_visible(timeout=ms(10))

        # a reload keeps the token
        page.reload()
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=ms(15)
        )
        expect(task_row(page, task_id)).to_be_visible(timeout=ms(10))
        console.check()
    finally:
        hub.stop()
