"""Real event envelopes and tasks for the CLI tests, made by the hub's own core
(``tests/core/_harness.Sim``): a task that waits for approval, streams output,
asks a question, gets its answer and completes with priced usage."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from hivehub.core import events as ev
from hivehub.core.commands import ApproveTask, ProvideInput, RequestInput, SubmitTask, TaskSpec
from hivehub.core.hive import HiveConfig
from hivehub.core.model import ModelPrice, UsageReport
from hivehub.core.tasklog import task_id_of
from tests.core._harness import Sim

PRICES = {"smol": ModelPrice(input_per_million=1.0, output_per_million=2.0)}
OUTPUT = ["Hello", ", wor", "ld!\n"]


def envelopes(events: list[ev.Event], first_sequence: int) -> list[dict[str, Any]]:
    """The events as the /ws sends them (the hub's encoder), numbered from ``first_sequence``."""
    out = []
    for i, e in enumerate(events):
        env = json.loads(ev.encode_event(e))
        env["sequence"] = first_sequence + i
        out.append(env)
    return out


def task_json(s: Sim, task_id: str) -> dict[str, Any]:
    return json.loads(msgspec.json.encode(s.task(task_id)))


def approved_question_run() -> tuple[Sim, list[ev.Event]]:
    """Every event of task ``t`` from its creation to its completion, and the Sim."""
    s = Sim(HiveConfig(heartbeat_timeout=10_000.0, prices=PRICES))
    s.register("a", t=0)
    log: list[ev.Event] = []
    spec = TaskSpec(id="t", type="summarize", description="sum it up", requires_approval=True)
    log += s.do(SubmitTask(spec=spec, created_by="alice"), 1)
    log += s.do(ApproveTask(task_id="t", approved_by="carol", comment="go"), 2)
    log += s.start("t", t=3)
    log += s.progress("t", 0.3, t=4, output_delta=OUTPUT[0], current_step="writing")
    log += s.progress("t", 0.5, t=5, output_delta=OUTPUT[1], current_step="writing")
    question = RequestInput(
        task_id="t",
        agent_id="a",
        attempt=1,
        request_id="q1",
        question="Send it?",
        choices=["yes", "no"],
        timeout_seconds=60,
    )
    log += s.do(question, 6)
    log += s.do(ProvideInput(task_id="t", answer="yes", answered_by="bob", request_id="q1"), 7)
    log += s.progress("t", 0.9, t=8, output_delta=OUTPUT[2], current_step="writing")
    usage = UsageReport(model="smol", prompt_tokens=1000, completion_tokens=500)
    log += s.complete("t", t=9, result={"ok": True}, usage=usage)
    return s, [e for e in log if task_id_of(e.data) == "t"]  # what /ws?task_id=t sends
