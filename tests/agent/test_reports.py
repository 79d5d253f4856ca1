"""hivehub.agent.reports: the outbox of unanswered reports and the bound on an error."""

from __future__ import annotations

import msgspec

from hivehub.agent.reports import MAX_ERROR_DETAILS_BYTES, Outbox, Report, bounded_error
from hivehub.core.commands import ERROR_CODE_MAX


def test_a_report_carries_its_envelope_and_a_fresh_message_id() -> None:
    a = Report("task_started", {"task_id": "t1", "attempt": 1})
    b = Report("task_started", {"task_id": "t1", "attempt": 1})
    assert a.message_id != b.message_id
    assert a.envelope() == {"type": "task_started", "data": a.data, "message_id": a.message_id}
    assert (a.task_id, a.attempt, a.conn, a.tries) == ("t1", 1, None, 0)


def test_the_outbox_keeps_order_until_each_is_answered() -> None:
    box = Outbox()
    assert box.empty.is_set()
    r1 = box.add("task_started", {"task_id": "t1", "attempt": 1})
    r2 = box.add("task_completed", {"task_id": "t1", "attempt": 1, "result": 1})
    assert [r.kind for r in box] == ["task_started", "task_completed"] and not box.empty.is_set()
    assert box.changed.is_set() and box.get(r1.message_id) is r1 and box.get(None) is None
    assert box.held() == {"t1": 1}
    assert box.remove(r1.message_id) is r1 and len(box) == 1
    assert box.remove(r2.message_id) is r2 and box.empty.is_set()
    assert box.remove("gone") is None


def test_progress_reports_coalesce_per_attempt() -> None:
    box = Outbox()
    box.add("task_progress", {"task_id": "t1", "attempt": 1, "progress": 0.1})
    box.add("task_progress", {"task_id": "t2", "attempt": 1, "progress": 0.1})
    box.add("task_progress", {"task_id": "t1", "attempt": 1, "progress": 0.5})
    assert [(r.task_id, r.data["progress"]) for r in box] == [("t2", 0.1), ("t1", 0.5)]


def test_dropping_an_attempt_forgets_only_its_reports() -> None:
    box = Outbox()
    box.add("task_started", {"task_id": "t1", "attempt": 1})
    box.add("task_started", {"task_id": "t1", "attempt": 2})
    box.drop_attempt("t1", 1)
    assert box.held() == {"t1": 2}
    box.drop_attempt("t1", 2)
    assert box.empty.is_set()


def test_a_long_error_is_cut_with_a_marker_never_dropped() -> None:
    e = bounded_error("C" * (ERROR_CODE_MAX + 5), "m", {"trace": "x" * 40_000})
    assert len(e["code"]) == ERROR_CODE_MAX and "truncated" in e["code"]
    assert len(msgspec.json.encode(e["details"])) <= MAX_ERROR_DETAILS_BYTES
    assert e["details"]["trace"].endswith("[truncated: 40000 characters]")
    assert bounded_error("", "m", {})["code"] == "AGENT_ERROR"


def test_details_that_cannot_be_sent_are_replaced() -> None:
    assert bounded_error("E", "m", {"x": object()})["details"] == {"unserializable_details": True}
    many = {f"k{i}": i for i in range(5000)}  # over the bound even with every string clipped
    assert bounded_error("E", "m", many)["details"]["truncated"] is True
