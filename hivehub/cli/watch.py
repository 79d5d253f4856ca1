"""``hive watch``: follow the live event stream, one line per event.

Each event type has its own one-line summary in :data:`SUMMARIES` (event type ->
function of the event's data); a type without one is shown as compact JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import argtypes as A
from .render import PRIORITY_LABEL, TYPE_STYLE, caps, consoles, money
from .runner import EXIT_OK, command

if TYPE_CHECKING:
    from ..client import HiveClient


def add_parser(sub: Any, hub: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "watch", parents=[hub], help="follow the live event stream (resumes after disconnects)"
    )
    p.add_argument("--types", help="comma-separated event types")
    p.add_argument("--agent", help="only events about this agent")
    p.add_argument("--task", help="only events about this task")
    p.add_argument(
        "--since",
        type=A.NON_NEGATIVE_INT,
        default=None,
        metavar="N",
        help="replay the events after sequence N first (0: the whole log)",
    )
    p.add_argument("--json", action="store_true", help="one raw JSON message per line")
    p.set_defaults(func=command(cmd_watch, interrupted=EXIT_OK))


# ------------------------------------------------------------------ one line per event type

Summary = Callable[[dict[str, Any]], str]


def _sid(v: Any) -> str:
    return str(v) if v else "-"


def _pct(v: Any) -> str:
    return f"{float(v or 0):.0%}"


def _task_created(d: dict[str, Any]) -> str:
    t = d.get("task") or {}
    priority = PRIORITY_LABEL.get(t.get("priority", 0), t.get("priority"))
    return f"task {t.get('id')} type={t.get('type')} priority={priority} matching_agents={d.get('matching_agents')}"


def _task_assigned(d: dict[str, Any]) -> str:
    extra = f", from {d['previous_agent_id']}" if d.get("previous_agent_id") else ""
    return (
        f"task {d.get('task_id')} -> agent {d.get('agent_id')} ({d.get('assignment_reason')}, "
        f"score {float(d.get('score') or 0):.2f}, attempt {d.get('attempt_number', 1)}{extra})"
    )


def _task_started(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} on agent {d.get('agent_id')} (attempt {d.get('attempt_number')})"


def _usage(d: dict[str, Any]) -> str:
    u = d.get("usage")
    if not u:
        return ""
    cost = u.get("cost_usd")
    price = f", {money(float(cost))}" if cost else ""
    return f" [{u.get('model')}: {u.get('total_tokens', 0)} tokens{price}]"


def _clip(text: Any, n: int = 60) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1] + "…"


def _task_progress(d: dict[str, Any]) -> str:
    step = f" {d['current_step']}" if d.get("current_step") else ""
    out = (
        f" +{len(d['output_delta'])} chars {_clip(d['output_delta'], 40)!r}" if d.get("output_delta") else ""
    )
    return f"task {d.get('task_id')} {_pct(d.get('progress'))}{step}{out}"


def _task_completed(d: dict[str, Any]) -> str:
    took = float(d.get("execution_time_ms") or 0)
    return f"task {d.get('task_id')} by agent {d.get('agent_id')} in {took:.0f} ms{_usage(d)}"


def _task_failed(d: dict[str, Any]) -> str:
    e = d.get("error") or {}
    then = "retry scheduled" if d.get("retry_scheduled") else "final"
    return (
        f"task {d.get('task_id')} on {_sid(d.get('agent_id'))}: {e.get('code')}: {e.get('message')} "
        f"({d.get('failure_kind')}, {then}){_usage(d)}"
    )


def _task_cancelled(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} ({d.get('reason')}, by {d.get('cancelled_by')}){_usage(d)}"


def _task_retried(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} re-queued from {d.get('previous_status')} by {d.get('requested_by')}"


def _task_released(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} released by agent {d.get('agent_id')} ({d.get('reason')})"


def _task_recalled(d: dict[str, Any]) -> str:
    return (
        f"task {d.get('task_id')} recalled from agent {d.get('agent_id')}"
        f" (unstarted; agent {d.get('for_agent_id')} has a free slot)"
    )


def _task_approval_requested(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} waits for approval (submitted by {d.get('requested_by')})"


def _task_approved(d: dict[str, Any]) -> str:
    comment = f": {_clip(d['comment'])}" if d.get("comment") else ""
    return f"task {d.get('task_id')} approved by {d.get('approved_by')}{comment}"


def _task_rejected(d: dict[str, Any]) -> str:
    return f"task {d.get('task_id')} rejected by {d.get('rejected_by')}: {_clip(d.get('reason'))}"


def _task_input_required(d: dict[str, Any]) -> str:
    choices = f" [{' / '.join(d['choices'])}]" if d.get("choices") else ""
    wait = float(d.get("timeout_seconds") or 0)
    return (
        f"task {d.get('task_id')} asks: {_clip(d.get('question'))}{choices} "
        f"(agent {d.get('agent_id')}, answer within {wait:.0f} s)"
    )


def _task_input_received(d: dict[str, Any]) -> str:
    if d.get("timed_out"):
        return f"task {d.get('task_id')} question timed out (default applies)"
    return f"task {d.get('task_id')} answered by {d.get('answered_by')}: {_clip(d.get('answer'))}"


def _limits(d: dict[str, Any], names: tuple[str, ...]) -> str:
    parts = [f"{n.replace('_', ' ')} {d[n]:g}" for n in names if d.get(n) is not None]
    return ", ".join(parts) or "no limits"


def _quota_set(d: dict[str, Any]) -> str:
    limits = _limits(d, ("requests_per_minute", "tokens_per_minute", "max_concurrent"))
    return f"quota pool {d.get('name')}: {limits} (by {d.get('requested_by')})"


def _quota_deleted(d: dict[str, Any]) -> str:
    return f"quota pool {d.get('name')} deleted (by {d.get('requested_by')})"


def _budget_set(d: dict[str, Any]) -> str:
    limits = _limits(d, ("tokens_per_day", "cost_usd_per_day"))
    return f"budget of {d.get('owner')}: {limits} (by {d.get('requested_by')})"


def _budget_deleted(d: dict[str, Any]) -> str:
    return f"budget of {d.get('owner')} deleted (by {d.get('requested_by')})"


def _agent_created(d: dict[str, Any]) -> str:
    a = d.get("agent") or {}
    return f"agent {a.get('id')} {a.get('name')} ({a.get('type')}) {caps(a.get('capabilities', []), 'proficiency')}"


def _agent_status_changed(d: dict[str, Any]) -> str:
    return f"agent {d.get('agent_id')} {d.get('old_status')} -> {d.get('new_status')} ({d.get('reason')})"


def _agent_removed(d: dict[str, Any]) -> str:
    s = d.get("cleanup_summary") or {}
    return f"agent {d.get('agent_id')} ({d.get('reason')}; {s.get('tasks_reassigned', 0)} task(s) reassigned)"


def _agent_updated(d: dict[str, Any]) -> str:
    changed = [k for k in ("name", "capabilities", "max_concurrent_tasks", "quota") if d.get(k) is not None]
    what = (
        caps(d["capabilities"], "proficiency")
        if d.get("capabilities")
        else ", ".join(changed) or "re-registered"
    )
    return f"agent {d.get('agent_id')} updated: {what}"


def _agent_learning_reset(d: dict[str, Any]) -> str:
    back = ", ".join(
        f"{cap} {float(i.get('old_value') or 0):.2f} -> {float(i.get('new_value') or 0):.2f}"
        for cap, i in (d.get("capabilities") or {}).items()
    )
    return f"agent {d.get('agent_id')} learning reset by {d.get('requested_by')}: {back or 'nothing learned'}"


def _learning_cycle_started(d: dict[str, Any]) -> str:
    return (
        f"cycle {d.get('cycle_id')} agent {d.get('agent_id')} {d.get('learning_type')} "
        f"on {d.get('target_capability')}"
    )


def _learning_cycle_completed(d: dict[str, Any]) -> str:
    changes = ", ".join(
        f"{cap} {float(i.get('old_value') or 0):.2f} -> {float(i.get('new_value') or 0):.2f}"
        for cap, i in (d.get("improvements") or {}).items()
    )
    took = float(d.get("duration_ms") or 0)
    return f"cycle {d.get('cycle_id')} agent {d.get('agent_id')}: {changes or 'no change'} ({took:.0f} ms)"


def _coordination_event(d: dict[str, Any]) -> str:
    details = d.get("details") or {}
    brief = ", ".join(f"{k}={_clip(v, 24)}" for k, v in list(details.items())[:4])
    return f"{d.get('module')}: {d.get('event_type')}" + (f" ({brief})" if brief else "")


def _inter_module_message(d: dict[str, Any]) -> str:
    return f"{d.get('from_module')} -> {d.get('to_module')}: {d.get('message_type')}"


def _error_occurred(d: dict[str, Any]) -> str:
    e = d.get("error") or {}
    return f"{d.get('severity')} in {d.get('component')}: {e.get('code')}: {_clip(e.get('message'), 80)}"


def _agent_performance_updated(d: dict[str, Any]) -> str:
    m = d.get("metrics") or {}
    avg = float(m.get("average_response_time_ms") or 0)
    return (
        f"agent {d.get('agent_id')} done={m.get('tasks_completed')} "
        f"success={_pct(m.get('success_rate'))} avg={avg:.0f}ms"
    )


def _hive_status_update(d: dict[str, Any]) -> str:
    m = d.get("metrics") or {}
    return (
        f"{d.get('status')} agents {m.get('active_agents')}/{m.get('total_agents')} active, "
        f"{m.get('pending_tasks')} pending, {m.get('running_tasks', 0)} running, "
        f"load {float(m.get('system_load') or 0):.2f}"
    )


def _system_alert(d: dict[str, Any]) -> str:
    return f"{d.get('level')} [{d.get('state', 'active')}] {d.get('title')}: {d.get('message')}"


def _resource_alert(d: dict[str, Any]) -> str:
    usage, threshold = float(d.get("usage_percent") or 0), float(d.get("threshold_percent") or 0)
    return (
        f"{d.get('resource')} {usage:.1f}% (threshold {threshold:.0f}%, {d.get('trend')}) "
        f"[{d.get('state', 'active')}]"
    )


def _module_status_changed(d: dict[str, Any]) -> str:
    return f"{d.get('module')} {d.get('old_status')} -> {d.get('new_status')} ({d.get('reason')})"


def _error(d: dict[str, Any]) -> str:
    return f"{d.get('code')}: {d.get('message')}"


def _snapshot(d: dict[str, Any]) -> str:
    agents, tasks = len(d.get("agents") or []), len(d.get("tasks") or [])
    return f"state at sequence {d.get('sequence')}: {agents} agent(s), {tasks} task(s)"


def _any(d: dict[str, Any]) -> str:
    """Event types without their own summary: the data as compact JSON, cut at 200 characters."""
    rest = {k: v for k, v in d.items() if k not in ("timestamp", "caused_by")}
    text = json.dumps(rest, default=str, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


#: event type -> its one-line summary (the rest: :func:`_any`)
SUMMARIES: dict[str, Summary] = {
    "task_created": _task_created,
    "task_assigned": _task_assigned,
    "task_started": _task_started,
    "task_progress": _task_progress,
    "task_completed": _task_completed,
    "task_failed": _task_failed,
    "task_cancelled": _task_cancelled,
    "task_retried": _task_retried,
    "task_released": _task_released,
    "task_recalled": _task_recalled,
    "task_approval_requested": _task_approval_requested,
    "task_approved": _task_approved,
    "task_rejected": _task_rejected,
    "task_input_required": _task_input_required,
    "task_input_received": _task_input_received,
    "quota_set": _quota_set,
    "quota_deleted": _quota_deleted,
    "budget_set": _budget_set,
    "budget_deleted": _budget_deleted,
    "agent_created": _agent_created,
    "agent_updated": _agent_updated,
    "agent_learning_reset": _agent_learning_reset,
    "learning_cycle_started": _learning_cycle_started,
    "learning_cycle_completed": _learning_cycle_completed,
    "coordination_event": _coordination_event,
    "inter_module_message": _inter_module_message,
    "error_occurred": _error_occurred,
    "agent_status_changed": _agent_status_changed,
    "agent_removed": _agent_removed,
    "agent_performance_updated": _agent_performance_updated,
    "hive_status_update": _hive_status_update,
    "system_alert": _system_alert,
    "resource_alert": _resource_alert,
    "module_status_changed": _module_status_changed,
    "error": _error,
    "snapshot": _snapshot,
}


def summarize(ev: dict[str, Any]) -> str:
    """One human line for an event's data."""
    return SUMMARIES.get(str(ev.get("type", "")), _any)(ev.get("data") or {})


def _event_style(ev: dict[str, Any]) -> str:
    typ = str(ev.get("type", ""))
    d = ev.get("data") or {}
    if typ == "system_alert" and d.get("level") in ("error", "critical"):
        return "bold red"
    if typ in ("system_alert", "resource_alert") and d.get("state") == "cleared":
        return "green"
    return TYPE_STYLE.get(typ, "white")


def format_event(ev: dict[str, Any]) -> Any:
    from rich.text import Text

    seq = ev.get("sequence")
    ts = ev.get("timestamp") or ""
    clock = str(ts)[11:23] if len(str(ts)) >= 23 else str(ts)
    line = Text()
    line.append(f"{seq if seq else '-':>7} ", style="dim")
    line.append(f"{clock:<12} ", style="dim")
    style = _event_style(ev)
    line.append(f"{ev.get('type', '?'):<26}", style=style)
    line.append(" " + summarize(ev), style=style if ev.get("type") in ("task_failed", "error") else None)
    return line


async def cmd_watch(c: HiveClient, args: argparse.Namespace) -> int:
    import msgspec
    from rich.markup import escape

    out, err = consoles()
    state = {"outage": False, "first": True}

    def note(kind: str, info: dict[str, Any]) -> None:
        if kind == "connected":
            if state["first"]:
                if not args.json:
                    since = info.get("since")
                    err.print(
                        f"[dim]watching {escape(c.ws_url)}"
                        + (f" from sequence {since}" if since is not None else "")
                        + " (Ctrl-C to stop)[/]"
                    )
            elif state["outage"]:
                err.print(f"[green]reconnected[/] [dim](resuming after sequence {info.get('since')})[/]")
            state["first"] = False
            state["outage"] = False
        elif kind == "disconnected" and not state["outage"]:
            state["outage"] = True
            why = info.get("error") or f"closed {info.get('code')} {info.get('reason') or ''}".strip()
            err.print(f"[yellow]disconnected[/] [dim]({escape(str(why))}); reconnecting...[/]")

    stream = c.stream(
        types=args.types, agent_id=args.agent, task_id=args.task, since=args.since, on_state=note
    )
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(stream.close()))
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
        pass
    enc = msgspec.json.Encoder()
    async with stream:
        async for ev in stream:
            if args.json:
                sys.stdout.buffer.write(enc.encode(ev) + b"\n")
                sys.stdout.flush()
            else:
                out.print(format_event(ev))
    return EXIT_OK
