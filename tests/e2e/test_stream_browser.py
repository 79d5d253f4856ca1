"""Compressed delivery to a real browser: Debian's chromium (Playwright, as the
dashboard tests launch it) opens /ws against a real hub, negotiates permessage-deflate
as every browser does, and gets every event intact and in order, the big ones
compressed by the hub's shared compressor and the small ones plain."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests.e2e import test_dashboard as dashboard
from tests.e2e.test_dashboard import Browser, ms, new_page
from tests.hubproc import Hub

browser = dashboard.browser  # Debian's chromium, never a download

#: a description that makes a task_created event far over the hub's DEFLATE_MIN (512
#: bytes); a task_cancelled event (about 370 bytes) stays under it
BIG = "Every browser negotiates permessage-deflate with the hive. " * 30

OPEN = """(url) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    window.got = [];
    ws.onmessage = (e) => window.got.push(JSON.parse(e.data));
    ws.onopen = () => resolve(ws.extensions);
    ws.onerror = () => reject(new Error("the WebSocket failed"));
})"""


def deflated(hub: Hub) -> int:
    with urllib.request.urlopen(hub.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^hive_ws_deflate_messages_total ([0-9.e+]+)$", text, re.M)
    assert m is not None, "hive_ws_deflate_messages_total not in /metrics"
    return int(float(m.group(1)))


def test_chromium_negotiates_permessage_deflate_and_gets_every_event(
    tmp_path: Path, browser: Browser
) -> None:
    hub = Hub(tmp_path / "hive.db", "--no-demo").start()
    try:
        # the hub's origin without the dashboard (whose own /ws would add to the count);
        # a JSON page has no favicon, which chromium asks for anyway
        page, console = new_page(browser, allow=("status of 404",))
        page.goto(hub.url + "/health")
        # chromium offers "permessage-deflate; client_max_window_bits"; ws.extensions is
        # the hub's answer
        ext = page.evaluate(OPEN, hub.ws_url + "/ws?types=task_created,task_cancelled")
        assert ext == "permessage-deflate; server_no_context_takeover", ext
        before = deflated(hub)
        want: list[str] = []
        for i in range(3):
            t = hub.post("/api/tasks", {"description": f"{BIG}{i}"}, expect=201)
            hub.post(f"/api/tasks/{t['id']}/cancel", {}, expect=200)
            want += [f"task_created:{BIG}{i}", f"task_cancelled:{t['id']}"]
        batch = hub.post(
            "/api/tasks/batch",
            {"tasks": [{"description": BIG + "batch"}, {"description": "small"}]},
            expect=201,
        )
        want += [f"task_created:{BIG}batch", "task_created:small"]
        page.wait_for_function(f"window.got.length >= {len(want)}", timeout=ms(15))
        got = page.evaluate("window.got")
        seen = [
            f"{m['type']}:{m['data']['task']['description'] if 'task' in m['data'] else m['data']['task_id']}"
            for m in got
        ]
        assert seen == want
        assert got[-1]["data"]["task"]["id"] == batch["tasks"][1]["id"]
        seqs = [m["sequence"] for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # the five task_created events (each about 2 KB) were compressed, once each; the
        # three task_cancelled ones went plain. The browser inflated them: its text is intact.
        assert deflated(hub) - before == 5
        console.check()
    finally:
        hub.stop()
