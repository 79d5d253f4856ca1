"""``hive tasks watch``: the renderer fed the core's own event envelopes, and the
command against a tiny hub that replays them on /ws."""

from __future__ import annotations

import json

import pytest

from hivehub.cli import main
from hivehub.cli.follow import RENDERERS, TaskWatcher, usage_line
from hivehub.core.commands import CancelTask
from tests.cli.fakerest import FakeRest
from tests.cli.scenario import OUTPUT, approved_question_run, envelopes, task_json
from tests.core._harness import Sim


def notes_and_output(watcher: TaskWatcher, events: list[dict]) -> tuple[list[str], str]:
    notes, output = [], ""
    for e in events:
        for p in watcher.feed(e):
            if p.kind == "output":
                output += p.text
            else:
                notes.append(p.text)
    return notes, output


def test_the_watcher_streams_the_output_and_shows_the_question_and_the_usage() -> None:
    _, log = approved_question_run()
    w = TaskWatcher("t")
    notes, output = notes_and_output(w, envelopes(log, 2))
    assert output == "".join(OUTPUT)  # the deltas, concatenated, unchanged
    assert w.final == "completed"
    text = "\n".join(notes)
    for expected in (
        "awaiting approval",
        "approved[/] by carol: go",
        "attempt 1 -> agent a",
        "step: writing (30%)",
        "Send it?",
        "choices: yes | no",
        "hive answer t TEXT --request-id q1",
        "answered[/] by bob: yes",
        "completed[/] by agent a",
        "smol: 1000 prompt + 500 completion = 1500 tokens, $0.002",
    ):
        assert expected in text, (expected, text)
    assert text.count("step: writing") == 1  # a step is shown when it changes, not per report


def test_a_failed_attempt_restarts_the_output_and_a_cancel_ends_the_watch() -> None:
    s = Sim()
    s.register("a", t=0)
    log = s.submit("t", t=1, max_retries=2)
    log += s.start("t", t=2)
    log += s.progress("t", 0.1, t=3, output_delta="partial")
    log += s.fail("t", t=4, code="LLM_UNAVAILABLE")
    log += s.tick(10)
    log += s.do(CancelTask(task_id="t", cancelled_by="ops", reason="enough"), 11)
    w = TaskWatcher("t")
    notes, output = notes_and_output(w, envelopes([e for e in log if e.type.startswith("task_")], 1))
    text = "\n".join(notes)
    assert output == "partial"
    assert "attempt 1 failed[/] (LLM_UNAVAILABLE: it broke); retry scheduled" in text
    assert "new attempt, output restarts" in text and "attempt 2 -> agent a" in text
    assert w.final == "cancelled" and "cancelled[/] by ops (enough)" in text


def test_every_renderer_has_a_case_above() -> None:
    assert set(RENDERERS) >= {"task_progress", "task_input_required", "task_completed", "task_cancelled"}
    assert usage_line(None) is None
    assert usage_line({"model": "m", "total_tokens": 3, "cost_usd": None}).endswith("no price")


def test_the_watch_command_prints_the_output_on_stdout_and_exits_with_the_outcome(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s, log = approved_question_run()
    task = task_json(s, "t")
    with FakeRest() as hub:
        hub.reply("GET", "/api/tasks/t", task)
        hub.events = envelopes(log, task["created_sequence"])
        rc = main(["tasks", "watch", "t", "--url", hub.url])
    out, err = capsys.readouterr()
    assert rc == 0
    assert out == "".join(OUTPUT)  # only the model's text goes to stdout
    assert "Send it?" in err and "1500 tokens" in err
    ws = [r for r in hub.requests if r["method"] == "WS"][0]
    assert ws["query"]["task_id"] == "t" and ws["query"]["since"] == str(task["created_sequence"] - 1)


def test_the_watch_command_exits_1_for_a_cancelled_task(capsys: pytest.CaptureFixture[str]) -> None:
    s = Sim()
    log = s.submit("t", t=1)
    log += s.do(CancelTask(task_id="t", cancelled_by="ops", reason="no"), 2)
    with FakeRest() as hub:
        hub.reply("GET", "/api/tasks/t", task_json(s, "t"))
        hub.events = envelopes(log, 1)
        assert main(["tasks", "watch", "t", "--url", hub.url, "--json"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["task_created", "task_cancelled"]


def test_watching_an_unknown_task_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeRest() as hub:
        assert main(["tasks", "watch", "nope", "--url", hub.url]) == 2
    assert "not_found" in capsys.readouterr().err
