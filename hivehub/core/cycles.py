"""Learning-cycle decisions: when a cycle starts, what it records when it completes,
an operator's reset. The update itself is pure (``learning.py``); folding the
events is ``projection.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import events as ev
from .commands import CompleteLearning, ResetLearning
from .context import Decision
from .errors import AgentNotFound, InvalidInput, InvalidTransition
from .learning import updated_proficiency
from .model import AgentStatus

__all__ = ["complete_cycle", "maybe_learn", "on_complete_learning", "on_reset_learning"]

AS = AgentStatus


def maybe_learn(ctx: Decision, only: Sequence[str] | None) -> None:
    """Start a cycle for each agent with enough new outcomes (or old enough ones).
    ``only``: the agents this command touched, in the order it touched them
    (every agent on a Tick)."""
    s = ctx.s
    cfg = s.config.learning
    if not cfg.enabled or not s.outcomes or (only is not None and not only):
        return
    mono = ctx.mono
    busy = {c.agent_id for c in s.cycles.values()}
    todo = s.outcomes.items() if only is None else [(k, s.outcomes[k]) for k in only if k in s.outcomes]
    for agent_id, window in list(todo):
        a = s.agents.get(agent_id)
        if a is None or agent_id in busy or a.status not in (AS.IDLE, AS.ACTIVE):
            continue
        n = max((len(v) for v in window.values()), default=0)
        if n == 0:
            continue
        last = s._learn_since.get(agent_id, mono)
        if n < cfg.min_outcomes and mono - last < cfg.interval_seconds:
            continue
        target = max(sorted(window), key=lambda k: len(window[k]))
        durations = s.cycle_durations_ms
        est = (sum(durations) / len(durations)) / 60000 if durations else 0.0
        ctx.emit(
            ev.LearningCycleStarted(
                timestamp=ctx.now,
                cycle_id=f"learn-{s._new_id()}",
                agent_id=agent_id,
                learning_type="capability_improvement",
                target_capability=target,
                estimated_duration_minutes=round(est, 6),
            )
        )
        ctx.emit_status(a, AS.LEARNING, "learning_cycle_started")


def on_complete_learning(ctx: Decision, cmd: CompleteLearning) -> None:
    if cmd.cycle_id not in ctx.s.cycles:
        raise InvalidTransition(f"no learning cycle {cmd.cycle_id} in progress", cycle_id=cmd.cycle_id)
    complete_cycle(ctx, cmd.cycle_id)


def complete_cycle(ctx: Decision, cycle_id: str) -> None:
    s = ctx.s
    c = s.cycles[cycle_id]
    a = s.agents.get(c.agent_id)
    improvements: dict[str, ev.Improvement] = {}
    if a is not None:
        for name, scores in sorted(c.window.items()):
            cap = a.capability(name)
            if cap is None or not scores:
                continue
            new = round(updated_proficiency(cap.proficiency, cap.learning_rate, scores), 6)
            improvements[f"{name}_proficiency"] = ev.Improvement(
                old_value=cap.proficiency, new_value=new, improvement=round(new - cap.proficiency, 6)
            )
    ctx.emit(
        ev.LearningCycleCompleted(
            timestamp=ctx.now,
            cycle_id=cycle_id,
            agent_id=c.agent_id,
            improvements=improvements,
            duration_ms=round(max(0.0, ctx.mono - c.started_mono) * 1000, 3),
        )
    )
    if a is not None:
        if a.status == AS.LEARNING:
            ctx.emit_status(a, AS.ACTIVE if a.current_tasks else AS.IDLE, "learning_cycle_completed")
        ctx.emit_performance(a, "learning_cycle_completed")


def on_reset_learning(ctx: Decision, cmd: ResetLearning) -> None:
    a = ctx.s.agents.get(cmd.agent_id)
    if a is None:
        raise AgentNotFound(f"no agent {cmd.agent_id}", agent_id=cmd.agent_id)
    names = (
        [c.name for c in a.capabilities]
        if cmd.capabilities is None
        else list(dict.fromkeys(cmd.capabilities))
    )
    unknown = [n for n in names if a.capability(n) is None]
    if unknown:
        raise InvalidInput(
            f"agent {a.id} has no capability {unknown[0]}",
            agent_id=a.id,
            unknown=unknown,
            capabilities=[c.name for c in a.capabilities],
        )
    changes: dict[str, ev.Improvement] = {}
    for n in names:
        c = a.capability(n)
        assert c is not None
        changes[n] = ev.Improvement(
            old_value=c.proficiency, new_value=c.prior, improvement=round(c.prior - c.proficiency, 6)
        )
    ctx.emit(
        ev.AgentLearningReset(
            timestamp=ctx.now, agent_id=a.id, capabilities=changes, requested_by=cmd.requested_by
        )
    )
