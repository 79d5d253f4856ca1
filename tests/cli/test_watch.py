"""``hive watch``: one line per event, from the summary table of its type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hivehub.cli.render import TYPE_STYLE
from hivehub.cli.tasks import BAR_UPDATES
from hivehub.cli.watch import SUMMARIES, format_event, summarize

CASES: list[tuple[dict[str, Any], str]] = [
    (
        {
            "type": "task_created",
            "data": {"task": {"id": "t1", "type": "x", "priority": 3}, "matching_agents": 2},
        },
        "task t1 type=x priority=high matching_agents=2",
    ),
    (
        {
            "type": "task_assigned",
            "data": {
                "task_id": "t1",
                "agent_id": "a1",
                "assignment_reason": "best_score",
                "score": 0.8765,
                "attempt_number": 2,
                "previous_agent_id": "a0",
            },
        },
        "task t1 -> agent a1 (best_score, score 0.88, attempt 2, from a0)",
    ),
    (
        {
            "type": "task_assigned",
            "data": {"task_id": "t1", "agent_id": "a1", "assignment_reason": "best_score", "score": None},
        },
        "task t1 -> agent a1 (best_score, score 0.00, attempt 1)",
    ),
    (
        {"type": "task_started", "data": {"task_id": "t1", "agent_id": "a1", "attempt_number": 1}},
        "task t1 on agent a1 (attempt 1)",
    ),
    (
        {"type": "task_progress", "data": {"task_id": "t1", "progress": 0.456, "current_step": "parsing"}},
        "task t1 46% parsing",
    ),
    ({"type": "task_progress", "data": {"task_id": "t1", "progress": None}}, "task t1 0%"),
    (
        {"type": "task_completed", "data": {"task_id": "t1", "agent_id": "a1", "execution_time_ms": 12.6}},
        "task t1 by agent a1 in 13 ms",
    ),
    (
        {
            "type": "task_failed",
            "data": {
                "task_id": "t1",
                "agent_id": None,
                "error": {"code": "E", "message": "boom"},
                "failure_kind": "handler",
                "retry_scheduled": True,
            },
        },
        "task t1 on -: E: boom (handler, retry scheduled)",
    ),
    (
        {
            "type": "task_failed",
            "data": {
                "task_id": "t1",
                "agent_id": "a1",
                "error": {"code": "E", "message": "boom"},
                "failure_kind": "timeout",
            },
        },
        "task t1 on a1: E: boom (timeout, final)",
    ),
    (
        {"type": "task_cancelled", "data": {"task_id": "t1", "reason": "operator", "cancelled_by": "admin"}},
        "task t1 (operator, by admin)",
    ),
    (
        {
            "type": "task_retried",
            "data": {"task_id": "t1", "previous_status": "failed", "requested_by": "op"},
        },
        "task t1 re-queued from failed by op",
    ),
    (
        {"type": "task_released", "data": {"task_id": "t1", "agent_id": "a1", "reason": "agent_shutdown"}},
        "task t1 released by agent a1 (agent_shutdown)",
    ),
    (
        {"type": "task_recalled", "data": {"task_id": "t1", "agent_id": "a1", "for_agent_id": "a2"}},
        "task t1 recalled from agent a1 (unstarted; agent a2 has a free slot)",
    ),
    (
        {
            "type": "agent_created",
            "data": {
                "agent": {
                    "id": "a1",
                    "name": "W",
                    "type": "worker",
                    "capabilities": [{"name": "nlp", "proficiency": 0.75}, {"name": "x"}],
                }
            },
        },
        "agent a1 W (worker) nlp:0.75, x:0",
    ),
    (
        {"type": "agent_created", "data": {"agent": {"id": "a1", "name": "W", "type": "worker"}}},
        "agent a1 W (worker) -",
    ),
    (
        {
            "type": "agent_status_changed",
            "data": {"agent_id": "a1", "old_status": "idle", "new_status": "active", "reason": "task"},
        },
        "agent a1 idle -> active (task)",
    ),
    (
        {
            "type": "agent_removed",
            "data": {"agent_id": "a1", "reason": "operator", "cleanup_summary": {"tasks_reassigned": 3}},
        },
        "agent a1 (operator; 3 task(s) reassigned)",
    ),
    (
        {
            "type": "agent_performance_updated",
            "data": {
                "agent_id": "a1",
                "metrics": {"tasks_completed": 9, "success_rate": 0.9, "average_response_time_ms": 120.4},
            },
        },
        "agent a1 done=9 success=90% avg=120ms",
    ),
    (
        {
            "type": "hive_status_update",
            "data": {
                "status": "healthy",
                "metrics": {"active_agents": 1, "total_agents": 3, "pending_tasks": 4, "system_load": 0.333},
            },
        },
        "healthy agents 1/3 active, 4 pending, 0 running, load 0.33",
    ),
    (
        {"type": "system_alert", "data": {"level": "warning", "title": "T", "message": "M"}},
        "warning [active] T: M",
    ),
    (
        {
            "type": "resource_alert",
            "data": {
                "resource": "cpu",
                "usage_percent": 91.26,
                "threshold_percent": 80,
                "trend": "rising",
                "state": "cleared",
            },
        },
        "cpu 91.3% (threshold 80%, rising) [cleared]",
    ),
    (
        {
            "type": "module_status_changed",
            "data": {"module": "store", "old_status": "healthy", "new_status": "degraded", "reason": "slow"},
        },
        "store healthy -> degraded (slow)",
    ),
    ({"type": "error", "data": {"code": "invalid_input", "message": "bad"}}, "invalid_input: bad"),
    (
        {"type": "snapshot", "data": {"sequence": 42, "agents": [{}, {}], "tasks": [{}]}},
        "state at sequence 42: 2 agent(s), 1 task(s)",
    ),
    (
        {
            "type": "learning_cycle_completed",
            "data": {
                "cycle_id": "c1",
                "agent_id": "a1",
                "improvements": {"math": {"old_value": 0.5, "new_value": 0.6234, "improvement": 0.1234}},
                "duration_ms": 3.4,
            },
        },
        "cycle c1 agent a1: math 0.50 -> 0.62 (3 ms)",
    ),
    (
        {
            "type": "learning_cycle_started",
            "data": {
                "cycle_id": "c1",
                "agent_id": "a1",
                "learning_type": "reinforcement",
                "target_capability": "math",
            },
        },
        "cycle c1 agent a1 reinforcement on math",
    ),
    (
        {
            "type": "agent_learning_reset",
            "data": {
                "agent_id": "a1",
                "requested_by": "admin",
                "capabilities": {"math": {"old_value": 0.8, "new_value": 0.5, "improvement": -0.3}},
            },
        },
        "agent a1 learning reset by admin: math 0.80 -> 0.50",
    ),
    (
        {"type": "agent_updated", "data": {"agent_id": "a1", "max_concurrent_tasks": 4}},
        "agent a1 updated: max_concurrent_tasks",
    ),
    (
        {
            "type": "coordination_event",
            "data": {"module": "swarm", "event_type": "rebalance", "details": {"moved": 2}},
        },
        "swarm: rebalance (moved=2)",
    ),
    (
        {
            "type": "inter_module_message",
            "data": {"from_module": "learning", "to_module": "swarm", "message_type": "x"},
        },
        "learning -> swarm: x",
    ),
    (
        {
            "type": "error_occurred",
            "data": {
                "severity": "high",
                "component": "store",
                "error": {"code": "store_unavailable", "message": "m"},
            },
        },
        "high in store: store_unavailable: m",
    ),
    (
        {"type": "task_approval_requested", "data": {"task_id": "t1", "requested_by": "operator:ci"}},
        "task t1 waits for approval (submitted by operator:ci)",
    ),
    (
        {"type": "task_approved", "data": {"task_id": "t1", "approved_by": "ops", "comment": "fine"}},
        "task t1 approved by ops: fine",
    ),
    (
        {"type": "task_rejected", "data": {"task_id": "t1", "rejected_by": "ops", "reason": "no"}},
        "task t1 rejected by ops: no",
    ),
    (
        {
            "type": "task_input_required",
            "data": {
                "task_id": "t1",
                "agent_id": "a1",
                "question": "Ship it?",
                "choices": ["yes", "no"],
                "timeout_seconds": 60,
            },
        },
        "task t1 asks: Ship it? [yes / no] (agent a1, answer within 60 s)",
    ),
    (
        {"type": "task_input_received", "data": {"task_id": "t1", "answered_by": "ops", "answer": "yes"}},
        "task t1 answered by ops: yes",
    ),
    (
        {"type": "task_input_received", "data": {"task_id": "t1", "timed_out": True, "answer": None}},
        "task t1 question timed out (default applies)",
    ),
    (
        {"type": "quota_set", "data": {"name": "openai", "tokens_per_minute": 9000, "requested_by": "admin"}},
        "quota pool openai: tokens per minute 9000 (by admin)",
    ),
    (
        {"type": "quota_deleted", "data": {"name": "openai", "requested_by": "admin"}},
        "quota pool openai deleted (by admin)",
    ),
    (
        {"type": "budget_set", "data": {"owner": "ci", "cost_usd_per_day": 2.5, "requested_by": "admin"}},
        "budget of ci: cost usd per day 2.5 (by admin)",
    ),
    (
        {"type": "budget_deleted", "data": {"owner": "ci", "requested_by": "admin"}},
        "budget of ci deleted (by admin)",
    ),
    (
        {
            "type": "task_completed",
            "data": {
                "task_id": "t1",
                "agent_id": "a1",
                "execution_time_ms": 800,
                "usage": {"model": "smollm2", "total_tokens": 43, "cost_usd": 0.000012},
            },
        },
        "task t1 by agent a1 in 800 ms [smollm2: 43 tokens, $0.000012]",
    ),
    (
        {"type": "task_progress", "data": {"task_id": "t1", "progress": 0.5, "output_delta": "Once upon"}},
        "task t1 50% +9 chars 'Once upon'",
    ),
    ({"type": "something_new"}, "{}"),
    ({}, "{}"),
]


@pytest.mark.parametrize(("event", "line"), CASES, ids=[str(e.get("type")) for e, _ in CASES])
def test_summary_of_each_event_type(event: dict[str, Any], line: str) -> None:
    assert summarize(event) == line


def test_every_event_type_of_the_log_has_its_own_line() -> None:
    from hivehub.core.events import DATA_TYPES

    assert set(DATA_TYPES) <= set(SUMMARIES), sorted(set(DATA_TYPES) - set(SUMMARIES))


def test_every_summarized_type_is_covered_and_styled() -> None:
    assert set(SUMMARIES) <= {e.get("type") for e, _ in CASES}
    assert set(SUMMARIES) <= set(TYPE_STYLE)


def test_a_type_without_a_summary_is_compact_json_cut_at_200_characters() -> None:
    line = summarize({"type": "new_kind", "data": {"payload": "z" * 300, "timestamp": "t"}})
    assert len(line) == 200 and line.endswith("...")
    assert line.startswith('{"payload":"zzz')
    assert json.loads(summarize({"type": "new_kind", "data": {"a": [1, 2]}})) == {"a": [1, 2]}


def test_format_event_line() -> None:
    ev = {
        "sequence": 7,
        "timestamp": "2026-01-02T03:04:05.678Z",
        "type": "error",
        "data": {"code": "c", "message": "m"},
    }
    text = format_event(ev)
    assert text.plain == f"{7:>7} {'03:04:05.678':<12} {'error':<26} c: m"
    assert str(text.spans[-1].style) == "bold red"  # failures are coloured whole


def test_progress_bar_follows_the_task_events() -> None:
    assert BAR_UPDATES["task_progress"]("task_progress", {"progress": 0.25, "current_step": "s"}) == {
        "state": "running",
        "completed": 25.0,
        "description": "s",
    }
    retry = BAR_UPDATES["task_failed"](
        "task_failed", {"retry_scheduled": True, "attempt_number": 1, "error": {"code": "E"}}
    )
    assert retry == {"state": "retrying", "completed": 0, "description": "attempt 1 failed: E"}
    final = BAR_UPDATES["task_failed"]("task_failed", {"error": {"code": "E", "message": "m"}})
    assert final == {"state": "failed", "description": "E: m"}
    assert BAR_UPDATES["task_released"]("task_released", {})["description"] == "released"
    assert "task_created" not in BAR_UPDATES  # leaves the bar alone
