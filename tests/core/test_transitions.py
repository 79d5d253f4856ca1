"""The (start, finish) tables of ``core/transitions.py`` validate every status change."""

from __future__ import annotations

import itertools

import pytest

from hivehub.core.errors import InvalidTransition
from hivehub.core.model import AgentStatus, TaskStatus
from hivehub.core.transitions import (
    AGENT_TRANSITIONS,
    TASK_TRANSITIONS,
    check_agent_transition,
    check_task_transition,
    markdown,
)

from ._harness import Sim, at

AS = AgentStatus
TS = TaskStatus


def test_every_pair_outside_the_task_table_raises() -> None:
    s = Sim()
    s.submit("t", t=0)
    t = s.task("t")
    for a, b in itertools.product(TS, TS):
        t.status = a
        if (a, b) in TASK_TRANSITIONS:
            check_task_transition(t, b)
        else:
            with pytest.raises(InvalidTransition):
                check_task_transition(t, b)


def test_every_pair_outside_the_agent_table_raises() -> None:
    s = Sim()
    s.register("a", t=0)
    a = s.agent("a")
    for x, y in itertools.product(AS, AS):
        a.status = x
        if (x, y) in AGENT_TRANSITIONS:
            check_agent_transition(a, y)
        else:
            with pytest.raises(InvalidTransition):
                check_agent_transition(a, y)


def test_no_agent_row_enters_or_leaves_failed() -> None:
    """No decision puts an agent in the spec's ``failed`` status, so no row names it."""
    assert not [pair for pair in AGENT_TRANSITIONS if AS.FAILED in pair]


def test_the_tables_are_the_documentation() -> None:
    text = markdown()
    assert text.count("\n| `") == len(TASK_TRANSITIONS) + len(AGENT_TRANSITIONS)
    assert "| `pending` | `assigned` | task_assigned |" in text


def test_an_applied_status_change_outside_the_table_is_refused() -> None:
    """A log this core did not write cannot put an agent in a status the table forbids."""
    from hivehub.core import events as ev

    s = Sim()
    s.register("a", t=0)
    bad = ev.AgentStatusChanged(
        timestamp=at(1), agent_id="a", old_status="idle", new_status="failed", reason="x"
    )
    with pytest.raises(InvalidTransition):
        s.hive.apply(
            ev.Event(type=bad.TYPE, data=bad, timestamp=at(1), message_id="m", sequence=s.hive.sequence + 1)
        )
