"""``hive tasks watch ID``: follow one task live, its streamed output as it comes.

The task's own history is replayed from the log (``/ws?task_id=ID&since=<its
creation - 1>``) and then followed live, so a watch started late still shows the
whole output. The model's text (``task_progress.output_delta``) goes to stdout
as it arrives, unchanged, so ``hive tasks watch ID > out.txt`` captures exactly
the task's output; everything else (status changes, questions, the usage) are
notes on stderr. :class:`TaskWatcher` turns each event into those pieces without
doing I/O, so the rendering is tested with real event envelopes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .render import consoles, money
from .runner import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from ..client import HiveClient


class Piece(NamedTuple):
    """What one event shows: ``output`` text for stdout, or a ``note`` line (rich markup)."""

    kind: Literal["output", "note"]
    text: str


def usage_line(u: dict[str, Any] | None) -> str | None:
    """``gpt-4o-mini: 12 prompt + 30 completion = 42 tokens, $0.000020`` (``None``: no usage)."""
    if not u:
        return None
    cost = u.get("cost_usd")
    price = "no price" if cost is None else money(float(cost))
    return (
        f"{u.get('model')}: {u.get('prompt_tokens', 0)} prompt + {u.get('completion_tokens', 0)} "
        f"completion = {u.get('total_tokens', 0)} tokens, {price}"
    )


def question_lines(task_id: str, d: dict[str, Any]) -> list[str]:
    """The question of a ``task_input_required`` (or a task's ``pending_input``), and how to answer."""
    from rich.markup import escape

    lines = [f"[bold yellow]question[/] {escape(str(d.get('question', '')))}"]
    choices = d.get("choices")
    if choices:
        lines.append("  choices: " + " | ".join(escape(str(c)) for c in choices))
    rid = d.get("request_id")
    answer = f"hive answer {task_id} TEXT" + (f" --request-id {rid}" if rid else "")
    deadline = d.get("deadline")
    lines.append(
        f"  [dim]answer with: {escape(answer)}" + (f" (times out {deadline})" if deadline else "") + "[/]"
    )
    return lines


Render = Callable[["TaskWatcher", dict[str, Any]], list[Piece]]


def _note(*lines: str) -> list[Piece]:
    return [Piece("note", line) for line in lines]


def _created(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    t = d.get("task") or {}
    return _note(f"task [bold]{t.get('id')}[/] ({t.get('type')}) created, {t.get('status')}")


def _approval_requested(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    return _note(
        f"[yellow]awaiting approval[/] (owner {d.get('requested_by')}): "
        f"hive approve {w.task_id} | hive reject {w.task_id}"
    )


def _approved(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    comment = f": {d['comment']}" if d.get("comment") else ""
    return _note(f"[green]approved[/] by {d.get('approved_by')}{comment}")


def _rejected(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    return _note(f"[magenta]rejected[/] by {d.get('rejected_by')}: {d.get('reason')}")


def _assigned(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    n = d.get("attempt_number", 1)
    restart = n > 1 and w.output_seen  # a new attempt streams its output from the start
    w.output_seen = False
    w.step = None
    head = "[yellow]new attempt, output restarts[/] " if restart else ""
    return _note(f"{head}attempt {n} -> agent {d.get('agent_id')}")


def _started(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    return _note(f"[bright_blue]running[/] on agent {d.get('agent_id')}")


def _progress(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    out: list[Piece] = []
    step = d.get("current_step")
    if step and step != w.step:
        out.append(Piece("note", f"[dim]step: {step} ({float(d.get('progress') or 0):.0%})[/]"))
    w.step = step
    if d.get("output_delta"):
        w.output_seen = True
        out.append(Piece("output", str(d["output_delta"])))
    return out


def _input_required(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    return _note(*question_lines(w.task_id, d))


def _input_received(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    if d.get("timed_out"):
        return _note("[yellow]question timed out[/]; the handler's fallback applies")
    return _note(f"[green]answered[/] by {d.get('answered_by')}: {d.get('answer')}")


def _with_usage(line: str, d: dict[str, Any]) -> list[Piece]:
    u = usage_line(d.get("usage"))
    return _note(line, *([f"[bold cyan]usage[/] {u}"] if u else []))


def _completed(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    w.final = "completed"
    took = float(d.get("execution_time_ms") or 0)
    return _with_usage(f"[bold green]completed[/] by agent {d.get('agent_id')} in {took:.0f} ms", d)


def _failed(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    e = d.get("error") or {}
    what = f"{e.get('code')}: {e.get('message')}"
    if d.get("retry_scheduled"):
        return _with_usage(
            f"[yellow]attempt {d.get('attempt_number')} failed[/] ({what}); retry scheduled", d
        )
    w.final = "failed"
    return _with_usage(f"[bold red]failed[/] {what}", d)


def _cancelled(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    w.final = "cancelled"
    return _with_usage(f"[magenta]cancelled[/] by {d.get('cancelled_by')} ({d.get('reason')})", d)


def _requeued(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    why = d.get("reason") or f"by {d.get('requested_by')}"
    return _note(f"[yellow]re-queued[/] ({why})")


def _error(w: TaskWatcher, d: dict[str, Any]) -> list[Piece]:
    return _note(f"[red]{d.get('code')}[/]: {d.get('message')}")


#: event type -> what it shows (other events show nothing)
RENDERERS: dict[str, Render] = {
    "task_created": _created,
    "task_approval_requested": _approval_requested,
    "task_approved": _approved,
    "task_rejected": _rejected,
    "task_assigned": _assigned,
    "task_started": _started,
    "task_progress": _progress,
    "task_input_required": _input_required,
    "task_input_received": _input_received,
    "task_completed": _completed,
    "task_failed": _failed,
    "task_cancelled": _cancelled,
    "task_retried": _requeued,
    "task_released": _requeued,
    "error": _error,
}


class TaskWatcher:
    """Events of one task in, :class:`Piece` s out; ``final`` is set once the task ended
    (``completed``, ``failed`` for good, ``cancelled``)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.final: str | None = None
        self.output_seen = False
        self.step: str | None = None

    def feed(self, ev: dict[str, Any]) -> list[Piece]:
        render = RENDERERS.get(str(ev.get("type", "")))
        return [] if render is None else render(self, ev.get("data") or {})


async def cmd_tasks_watch(c: HiveClient, args: argparse.Namespace) -> int:
    import msgspec

    task = await c.get_task(args.task_id)
    out, err = consoles()
    watcher = TaskWatcher(task["id"])
    at_line_start = True
    enc = msgspec.json.Encoder()

    def show(pieces: list[Piece]) -> None:
        nonlocal at_line_start
        for p in pieces:
            if p.kind == "output":
                sys.stdout.write(p.text)
                sys.stdout.flush()
                at_line_start = p.text.endswith("\n")
            else:
                if not at_line_start:  # end the output's line on the terminal, not in stdout
                    err.file.write("\n")
                    at_line_start = True
                err.print(p.text)

    since = int(task["created_sequence"]) - 1 if task.get("created_sequence") else None
    if since is None:
        # a hub that does not tell where the task began: show what it holds, then follow live
        if not args.json:
            show([Piece("output", task["output"])] if task.get("output") else [])
        if task["status"] in ("completed", "failed", "cancelled"):
            if not args.json:
                show(_with_usage(f"task {task['id']} {task['status']}", task))
            return EXIT_OK if task["status"] == "completed" else EXIT_FAILED
    async with c.stream(task_id=task["id"], since=since) as events:
        async for ev in events:
            if args.json:
                sys.stdout.buffer.write(enc.encode(ev) + b"\n")
                sys.stdout.flush()
                watcher.feed(ev)
            else:
                show(watcher.feed(ev))
            if watcher.final:
                break
    if watcher.final is None:  # pragma: no cover - the stream closed without the end
        return EXIT_FAILED
    if not args.json:
        final = await c.get_task(task["id"])
        total = usage_line(final.get("usage"))
        if total and int(final.get("attempt") or 0) > 1:
            show(_note(f"[bold cyan]usage over {final['attempt']} attempts[/] {total}"))
    out.file.flush()
    return EXIT_OK if watcher.final == "completed" else EXIT_FAILED
