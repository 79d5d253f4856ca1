"""The dashboard as an operations console (issue 15), in Debian's chromium against a
real hub and real agent processes: the agent page (linkable, Back works, keyboard),
charts that change when tasks complete, honest state while the hub is down and the
recovery after it returns, confirmations, copyable ids, paging, and the 390 px layout.

Every wait is on a selector or a condition. Screenshots go to test-output/ and are
checked for content. The history API is not needed here (the page falls back to
what the hub holds in memory); tests/e2e/test_dashboard_history.py covers it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e import test_dashboard as dashboard
from tests.e2e.dashboard_support import connected, page_width, shot
from tests.e2e.test_dashboard import ROOT, Browser, expect, ms, new_page, task_row
from tests.hubproc import Hub, wait_for

browser = dashboard.browser  # Debian's chromium, never a download
VENDOR = ROOT / "hivehub" / "dashboard" / "vendor" / "uPlot.iife.min.js"
DOWN = ("WebSocket connection to", "Failed to load resource", "ERR_CONNECTION_REFUSED")


@pytest.fixture(autouse=True)
def _uplot() -> None:
    if not VENDOR.exists():
        pytest.fail(
            "uPlot is not installed: run `make install` (npm ci, then copied to hivehub/dashboard/vendor/)"
        )


def submit(hub: Hub, n: int, **spec) -> list[str]:
    body = {
        "tasks": [{"type": "echo", "description": f"Echo #{i}", "input": {"i": i}, **spec} for i in range(n)]
    }
    out = hub.post("/api/tasks/batch", body, expect=201)
    return [t["id"] for t in out["tasks"]]


def all_done(hub: Hub, ids: list[str]) -> bool:
    return all(hub.get(f"/api/tasks/{i}")["status"] == "completed" for i in ids)


def test_agent_page_links_back_keyboard_copy_and_remove(hub: Hub, agents, browser: Browser) -> None:
    a = agents(hub, "Echo-1", ["echo"])
    wait_for(lambda: any(x["name"] == "Echo-1" for x in hub.get("/api/agents")["agents"]), 20, what="agent")
    agent = next(x for x in hub.get("/api/agents")["agents"] if x["name"] == "Echo-1")
    ids = submit(hub, 25)
    wait_for(lambda: all_done(hub, ids), 30, what="25 tasks done")
    page, console = new_page(browser, 1280, 900, allow=("404",))
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(hub.url + "/")
    connected(page)

    # keyboard: the card takes focus and Enter opens the agent's page, a linkable route
    card = page.locator(f'[data-testid="agent-card"][data-agent-id="{agent["id"]}"]')
    card.focus()
    page.keyboard.press("Enter")
    view = page.get_by_test_id("agent-view")
    expect(view).to_be_visible()
    assert page.evaluate("location.hash") == f"#/agents/{agent['id']}"
    expect(page.get_by_test_id("overview-view")).to_be_hidden()
    expect(page.get_by_test_id("agent-view-name")).to_have_text("Echo-1")
    expect(view.locator('.cap[data-capability="echo"]')).to_be_visible()
    expect(view.locator('[data-fact="Done / failed"]')).to_have_text("25 / 0", timeout=ms(10))
    expect(view.locator('[data-fact="Tokens"]')).to_contain_text("0")
    # task history, 20 a page: two pages of 25
    history = page.get_by_test_id("agent-view-history")
    expect(history.get_by_test_id("task-card")).to_have_count(20, timeout=ms(10))
    pager = page.get_by_test_id("agent-view-pager")
    pager.get_by_test_id("pager-next").click()
    expect(history.get_by_test_id("task-card")).to_have_count(5)
    expect(pager.get_by_test_id("pager-info")).to_have_attribute("data-page", "2")
    expect(pager.get_by_test_id("pager-next")).to_be_disabled()
    pager.get_by_test_id("pager-prev").click()
    expect(history.get_by_test_id("task-card")).to_have_count(20)
    # status history from the log, proficiency and success charts drawn by uPlot
    expect(page.get_by_test_id("agent-status-row").first).to_be_visible(timeout=ms(10))
    prof = view.locator('[data-chart="proficiency"]')
    expect(prof.locator(".uplot")).to_have_count(1, timeout=ms(10))
    assert float(prof.get_attribute("data-total")) > 0
    expect(view.locator('[data-chart="success"] .uplot')).to_have_count(1)

    # a short id copies the whole id, and the click does not open the task
    chip = history.get_by_test_id("task-card").first.get_by_test_id("id-chip")
    full = chip.get_attribute("data-copy")
    assert full in ids and chip.inner_text() == full[:8]
    chip.click()
    expect(chip).to_have_attribute("data-copied", "yes")
    assert page.evaluate("navigator.clipboard.readText()") == full
    expect(page.get_by_test_id("task-details")).to_be_hidden()
    # Enter on a card opens the task, Esc closes it
    history.get_by_test_id("task-card").first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("task-details")).to_be_visible()
    expect(page.get_by_test_id("task-details")).to_have_attribute("data-task-id", full)
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("task-details")).to_be_hidden()
    shot(page, "console-agent", full_page=True)

    # Back returns to the overview; Forward to the agent; Esc leaves a view
    page.go_back()
    expect(page.get_by_test_id("overview-view")).to_be_visible()
    expect(view).to_be_hidden()
    page.go_forward()
    expect(view).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("overview-view")).to_be_visible()
    page.goto(f"{hub.url}/#/agents/{agent['id']}")  # a link opens the page directly
    expect(page.get_by_test_id("agent-view-name")).to_have_text("Echo-1", timeout=ms(15))

    # remove asks first: Esc keeps the agent, the confirm button removes it
    page.get_by_test_id("agent-view-remove").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("confirm-title")).to_contain_text("Remove agent Echo-1")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert hub.request("GET", f"/api/agents/{agent['id']}")[0] == 200
    page.get_by_test_id("agent-view-remove").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("agent-view-status")).to_have_text("removed", timeout=ms(10))
    assert hub.request("GET", f"/api/agents/{agent['id']}")[0] == 404
    expect(page.locator('[data-testid="agent-status-row"][data-status="removed"]')).to_have_count(
        1, timeout=ms(10)
    )
    a.stop()
    console.check()


def test_charts_change_when_tasks_complete(hub: Hub, agents, browser: Browser) -> None:
    agents(hub, "Echo-1", ["echo"], max_concurrent=4)
    page, console = new_page(browser, 1280, 1000)
    page.goto(hub.url + "/#/charts")
    connected(page)
    charts = page.get_by_test_id("all-charts")
    throughput = charts.locator('[data-chart="throughput"]')
    expect(throughput.locator(".uplot")).to_have_count(1, timeout=ms(10))
    expect(charts).to_have_attribute("data-source", re.compile("memory|history"))

    def completed() -> float:
        return page.evaluate(
            """() => document.querySelector('[data-testid="all-charts"] [data-chart="throughput"]')
                 .chartData.series[0].values.reduce((a, b) => a + (b || 0), 0)"""
        )

    def plotted() -> float:
        # what uPlot itself holds: the series of the instance in the chart's box
        return page.evaluate(
            """() => { const c = window.hive.charts.all.charts.get('throughput');
                       return c.plot.data[1].reduce((a, b) => a + (b || 0), 0); }"""
        )

    before = completed()
    ids = submit(hub, 12)
    wait_for(lambda: completed() >= before + 12, 20, what="the throughput chart to count 12 completions")
    wait_for(lambda: plotted() >= before + 12, 10, what="uPlot to plot them")
    latency = charts.locator('[data-chart="latency"]')
    wait_for(lambda: float(latency.get_attribute("data-total") or 0) > 0, 10, what="latency percentiles")
    # a task nobody can run: the queue-depth and by-state charts show it pending
    hub.post("/api/tasks", {"type": "poetry", "required_capabilities": [{"name": "poetry"}]}, expect=201)
    queue = charts.locator('[data-chart="queue"]')
    wait_for(lambda: float(queue.get_attribute("data-total") or 0) > 0, 10, what="queue depth")
    expect(charts.locator('[data-chart="states"] .uplot')).to_have_count(1)
    # the window selector: 1 h redraws over a longer span, the completions stay
    charts.locator('[data-testid="chart-window"][data-window="3600"]').click()
    expect(charts.locator('[data-testid="chart-window"][data-window="3600"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_for(
        lambda: page.evaluate("window.hive.charts.all.window") == 3600 and completed() >= 12,
        10,
        what="1 h window",
    )
    assert all_done(hub, ids)
    # the overview panel counts them too
    page.get_by_test_id("nav-overview").click()
    expect(page.get_by_test_id("chart-summary")).to_have_attribute(
        "data-total", re.compile(r"^(1[2-9]|[2-9]\d)"), timeout=ms(10)
    )
    page.get_by_test_id("nav-charts").click()
    shot(page, "console-charts")
    console.check()


def test_stale_while_the_hub_is_down_and_recovery(tmp_path: Path, browser: Browser) -> None:
    db = tmp_path / "hive.db"
    hub = Hub(db).start()
    port = hub.port
    page, console = new_page(browser, 1280, 900, allow=DOWN)
    try:
        hub.post(
            "/api/agents",
            {"name": "Pull-1", "capabilities": [{"name": "misc", "proficiency": 0.5}]},
            expect=201,
        )
        page.goto(hub.url + "/")
        connected(page)
        banner = page.get_by_test_id("stale-banner")
        expect(banner).to_be_hidden()
        assert page.evaluate("document.body.dataset.stale") == "false"
        assert page.evaluate("window.hive.stream.options.backoffCap") == 3000

        hub.stop()
        expect(banner).to_be_visible(timeout=ms(10))
        expect(banner).to_contain_text("last updated")
        assert page.evaluate("document.body.dataset.stale") == "true"
        # the health last seen is not shown as the hub's health now
        expect(page.get_by_test_id("hive-health")).to_have_text("unknown", timeout=ms(5))
        # every figure is greyed out
        opacity = page.evaluate("getComputedStyle(document.querySelector('.metrics')).opacity")
        assert float(opacity) < 1
        # the age counts up while down
        expect(banner).to_have_attribute("data-age", re.compile(r"^([2-9]|\d\d+)$"), timeout=ms(10))
        # reconnect attempts stay under the 3 s ceiling (with jitter) however many there are
        delays: list[tuple[int, int]] = []

        def attempts() -> bool:
            info = page.evaluate("window.hive.stream.stateInfo")
            if info.get("delay") is not None and (
                not delays or delays[-1] != (info["attempt"], info["delay"])
            ):
                delays.append((info["attempt"], info["delay"]))
            return info.get("attempt", 0) >= 6

        wait_for(attempts, 40, interval=0.05, what="six reconnect attempts")
        assert all(d <= 3000 for _, d in delays), delays
        shot(page, "console-stale")

        hub = Hub(db, port=port).start()
        late = hub.post(
            "/api/tasks", {"type": "after_restart", "description": "made after the restart"}, expect=201
        )
        connected(page)
        expect(banner).to_be_hidden(timeout=ms(10))
        assert page.evaluate("document.body.dataset.stale") == "false"
        expect(page.get_by_test_id("hive-health")).to_have_text(
            re.compile("healthy|degraded"), timeout=ms(10)
        )
        expect(task_row(page, late["id"])).to_be_visible(timeout=ms(10))
        wait_for(
            lambda: page.evaluate("window.hive.stream.lastSequence")
            >= hub.get("/api/hive/status")["published_sequence"],
            what="the page to catch up with since",
        )
        opacity = page.evaluate("getComputedStyle(document.querySelector('.metrics')).opacity")
        assert float(opacity) == 1
        console.check()
    finally:
        hub.stop()


def test_confirmations_and_keyboard_on_the_task_table(hub: Hub, browser: Browser) -> None:
    stuck = hub.post(
        "/api/tasks",
        {
            "type": "nobody_can",
            "description": "Waits for a poet",
            "required_capabilities": [{"name": "poetry"}],
        },
        expect=201,
    )
    page, console = new_page(browser, 1280, 900)
    page.goto(hub.url + "/")
    connected(page)
    row = task_row(page, stuck["id"])
    expect(row).to_have_attribute("data-status", "pending", timeout=ms(10))
    dialog = page.get_by_test_id("confirm-dialog")

    # cancel asks; Esc and "Keep it" keep the task; focus starts on the safe choice
    row.get_by_test_id("task-cancel").click()
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("confirm-title")).to_contain_text("Waits for a poet")
    assert page.evaluate("document.activeElement.dataset.testid") == "confirm-cancel"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    row.get_by_test_id("task-cancel").click()
    page.get_by_test_id("confirm-cancel").click()
    expect(dialog).to_be_hidden()
    assert hub.get(f"/api/tasks/{stuck['id']}")["status"] == "pending"
    row.get_by_test_id("task-cancel").click()
    page.get_by_test_id("confirm-ok").click()
    expect(row).to_have_attribute("data-status", "cancelled", timeout=ms(10))
    # retry asks too (from the details dialog: the confirmation stacks on top of it)
    row.get_by_test_id("task-title").click()
    expect(page.get_by_test_id("task-details")).to_be_visible()
    page.get_by_test_id("task-details-retry").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # closes the confirmation only
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("task-details")).to_be_visible()
    assert hub.get(f"/api/tasks/{stuck['id']}")["status"] == "cancelled"
    page.get_by_test_id("task-details-retry").click()
    page.get_by_test_id("confirm-ok").click()
    expect(row).to_have_attribute("data-status", "pending", timeout=ms(10))
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("task-details")).to_be_hidden()

    # keyboard: rows are in the tab order, arrows move between them, Enter opens
    other = hub.post(
        "/api/tasks",
        {"type": "nobody_can", "description": "Second", "required_capabilities": [{"name": "poetry"}]},
        expect=201,
    )
    expect(task_row(page, other["id"])).to_be_visible(timeout=ms(10))
    task_row(page, other["id"]).focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.taskId") == stuck["id"]
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("task-details")).to_have_attribute("data-task-id", stuck["id"])
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("task-details")).to_be_hidden()
    # the first Tab from the top reaches the navigation before the panels
    page.locator(".brand h1").click()  # (the sequential focus starting point: the top)
    page.keyboard.press("Tab")
    seen = []
    for _ in range(12):
        seen.append(page.evaluate("document.activeElement.dataset.testid || document.activeElement.tagName"))
        page.keyboard.press("Tab")
    assert "nav-overview" in seen and "nav-tasks" in seen, seen
    console.check()


def test_task_history_view_pages_and_filters(hub: Hub, browser: Browser) -> None:
    ids = submit(hub, 120, required_capabilities=[{"name": "poetry"}])
    page, console = new_page(browser, 1280, 900)
    page.goto(hub.url + "/#/tasks")
    connected(page)
    lst = page.get_by_test_id("history-list")
    expect(lst.get_by_test_id("task-card")).to_have_count(50, timeout=ms(10))
    first = lst.get_by_test_id("task-card").first.get_attribute("data-task-id")
    assert first == ids[-1]  # newest first
    pager = page.get_by_test_id("history-pager")
    pager.get_by_test_id("pager-next").click()
    expect(pager.get_by_test_id("pager-info")).to_have_attribute("data-page", "2")
    pager.get_by_test_id("pager-next").click()
    expect(lst.get_by_test_id("task-card")).to_have_count(20)
    expect(pager.get_by_test_id("pager-next")).to_be_disabled()
    seen = set(lst.get_by_test_id("task-card").evaluate_all("els => els.map(e => e.dataset.taskId)"))
    assert ids[0] in seen
    pager.get_by_test_id("pager-prev").click()
    expect(pager.get_by_test_id("pager-info")).to_have_attribute("data-page", "2")
    # a filter is part of the link: Back restores the unfiltered list
    hub.post(f"/api/tasks/{ids[0]}/cancel", {"reason": "test"})
    page.get_by_test_id("history-status").select_option("cancelled")
    page.get_by_test_id("history-apply").click()
    expect(lst.get_by_test_id("task-card")).to_have_count(1, timeout=ms(10))
    assert "status=cancelled" in page.evaluate("location.hash")
    page.go_back()
    expect(lst.get_by_test_id("task-card")).to_have_count(50, timeout=ms(10))
    expect(page.get_by_test_id("history-status")).to_have_value("")
    shot(page, "console-history")
    console.check()


def test_390px_layout(hub: Hub, agents, browser: Browser) -> None:
    agents(hub, "Echo-With-A-Long-Name-1", ["echo", "a_capability_with_a_long_name"])
    ids = submit(hub, 6)
    hub.post(
        "/api/tasks",
        {
            "type": "nobody_can",
            "description": "A task with a description long enough to wrap on a phone screen",
            "required_capabilities": [{"name": "poetry"}],
        },
        expect=201,
    )
    wait_for(lambda: all_done(hub, ids), 30, what="tasks done")
    agent = next(x for x in hub.get("/api/agents")["agents"] if x["name"].startswith("Echo"))
    page, console = new_page(browser, 390, 844)
    page.goto(hub.url + "/")
    connected(page)
    expect(page.get_by_test_id("task-row")).to_have_count(7, timeout=ms(10))
    expect(page.locator(".uplot").first).to_be_visible(timeout=ms(10))
    assert page_width(page) <= 390
    # no table is wider than the screen
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().right))"
    )
    assert widest <= 390, widest
    shot(page, "console-390-overview")
    page.get_by_test_id("task-title").first.click()
    expect(page.get_by_test_id("task-details")).to_be_visible()
    box = page.get_by_test_id("task-details").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page_width(page) <= 390
    shot(page, "console-390-details")
    page.keyboard.press("Escape")
    for route, ready in (
        (f"#/agents/{agent['id']}", '[data-testid="agent-view-history"] [data-testid="task-card"]'),
        ("#/tasks", '[data-testid="history-list"] [data-testid="task-card"]'),
        ("#/charts", '[data-testid="all-charts"] .uplot'),
    ):
        page.evaluate(f"location.hash = {route!r}")
        expect(page.locator(ready).first).to_be_visible(timeout=ms(10))
        assert page_width(page) <= 390, route
        shot(page, f"console-390-{route.split('/')[1] or 'overview'}")
    console.check()
