"""Print a log made by the hub's own core (``tests/core/_harness.Sim``) as JSON:
``{"events": [envelopes...], "tasks": {id: task}}``, for ``people.test.mjs`` to fold
into the dashboard's mirror and compare with the core's tasks. Covers approval,
rejection, streamed output over two attempts, a question answered, one timed out,
usage on completion, failure and cancel."""

from __future__ import annotations

import json
import sys

import msgspec

from hivehub.core.commands import CancelTask, RejectTask, SubmitTask, TaskSpec
from hivehub.core.model import UsageReport
from tests.cli.scenario import approved_question_run, envelopes
from tests.core.test_human import ask


def main() -> None:
    s, _ = approved_question_run()  # task "t": approved, output, question answered, usage
    s.do(SubmitTask(spec=TaskSpec(id="no", requires_approval=True), created_by="eve"), 20)
    s.do(RejectTask(task_id="no", rejected_by="carol", reason="no way"), 21)
    s.submit("r", t=22, max_retries=2)
    s.start("r", t=23)
    s.progress("r", 0.2, t=24, output_delta="first try")
    s.fail("r", t=25, usage=UsageReport(model="smol", prompt_tokens=10, completion_tokens=3))
    s.tick(40)
    s.start("r", t=41)
    s.progress("r", 0.4, t=42, output_delta="second ")
    ask(s, "r", 43, request_id="q9", timeout=5.0)
    s.tick(60)  # the question times out
    s.progress("r", 0.6, t=61, output_delta="try", usage=UsageReport(model="smol", prompt_tokens=20))
    s.do(CancelTask(task_id="r", cancelled_by="ops", reason="enough"), 62)
    out = {
        "events": envelopes(s.log, 1),
        "tasks": {tid: json.loads(msgspec.json.encode(t)) for tid, t in s.hive.tasks.items()},
    }
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
