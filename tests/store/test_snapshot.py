"""The snapshot codec: a hive restored from a snapshot and the events after it
equals a full replay of the log, in every field; and what it refuses.

The property runs the replay state machines of ``tests/core/test_replay_property.py``
(random commands and ticks, forgetting, quota pools and budgets) with one more
rule, ``take_snapshot``, and one more invariant: restoring the latest snapshot
(of the live hive, and of a replay of the same prefix) into a fresh hive and
applying the rest of the log gives the state a full replay gives.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import deque

import msgspec
import pytest
from hypothesis import settings
from hypothesis.stateful import invariant, rule

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentSpec,
    CompleteTask,
    RegisterAgent,
    StartTask,
    SubmitTask,
    TaskSpec,
    Tick,
)
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.indexes import live_deadlines
from hivehub.core.model import Capability
from hivehub.store import snapshot as S
from tests.core import test_replay_property as P
from tests.core._harness import Ids, at
from tests.core._state import differences, full_state


def replay(config: HiveConfig, events: list[ev.Event], drained: float | None) -> Hive:
    h = Hive(config, new_id=Ids("replay"), rng=random.Random(1))
    for e in events:
        h.apply(e)
    if drained is not None:
        h.drain_timers(drained)
    return h


def restored(config: HiveConfig, body: bytes, rest: list[ev.Event], drained: float | None) -> Hive:
    h = Hive(config, new_id=Ids("restored"), rng=random.Random(2))
    S.codec().decode_into(body, h)
    for e in rest:
        h.apply(e)
    if drained is not None:
        h.drain_timers(drained)
    return h


class SnapshotMixin(P.ReplayMachine):
    def __init__(self) -> None:
        super().__init__()
        #: (log length, snapshot of the live hive, snapshot of a replay of that prefix)
        self.snap: tuple[int, bytes, bytes] | None = None

    @rule()
    def take_snapshot(self) -> None:
        k = len(self.log)
        prefix = replay(self.config, self.log, None)
        self.snap = (k, S.codec().encode(self.hive), S.codec().encode(prefix))

    @invariant()
    def restored_snapshot_plus_the_rest_equals_a_full_replay(self) -> None:
        if self.snap is None:
            return
        k, live_body, prefix_body = self.snap
        full = replay(self.config, self.log, self.drained)
        # from the live hive's snapshot: equal in every projection and timer field
        # (the volatile ones hold the heartbeats the live hive heard)
        a = full_state(full)
        b = full_state(restored(self.config, live_body, self.log[k:], self.drained))
        assert a == b, "\n".join(differences(a, b))
        # from a replayed prefix: equal in every field, volatile ones included
        a = full_state(full, volatile=True)
        b = full_state(restored(self.config, prefix_body, self.log[k:], self.drained), volatile=True)
        assert a == b, "\n".join(differences(a, b))


class SnapshotMachine(SnapshotMixin, P.ReplayMachine):
    pass


class SnapshotUsageMachine(SnapshotMixin, P.UsageMachine):
    pass


class SnapshotForgettingMachine(SnapshotMixin, P.ForgettingMachine):
    pass


_SETTINGS = settings(P._SETTINGS, max_examples=40)
SnapshotMachine.TestCase.settings = _SETTINGS
SnapshotUsageMachine.TestCase.settings = settings(_SETTINGS, stateful_step_count=60)
SnapshotForgettingMachine.TestCase.settings = settings(_SETTINGS, max_examples=25)
TestSnapshotReplay = SnapshotMachine.TestCase
TestSnapshotReplayUsage = SnapshotUsageMachine.TestCase
TestSnapshotReplayForgetting = SnapshotForgettingMachine.TestCase


# ---------------------------------------------------------------- the codec


def busy_hive(config: HiveConfig | None = None) -> Hive:
    h = Hive(config, new_id=Ids(), rng=random.Random(0))
    h.handle(
        RegisterAgent(
            id="r",
            spec=AgentSpec(name="a", id="a", capabilities=[Capability("etl", 0.8)], max_concurrent_tasks=2),
        ),
        at(0),
    )
    for i in range(5):
        h.handle(SubmitTask(id=f"s{i}", spec=TaskSpec(id=f"t{i}", type="etl")), at(i + 1))
    return h


def test_the_schema_names_every_field_of_a_hive() -> None:
    h = busy_hive()
    assert set(vars(h)) - S.NOT_STATE == set(S.codec().fields)


def test_a_round_trip_keeps_every_field() -> None:
    h = busy_hive()
    h.outcomes["a"] = {"etl": deque([0.5, 0.9], maxlen=3)}
    h.alerts["k"] = ev.ModuleStatusChanged(
        timestamp=at(1), module="m", old_status="healthy", new_status="down", reason="r"
    )
    back = Hive(new_id=Ids(), rng=random.Random(0))
    S.codec().decode_into(S.codec().encode(h), back)
    assert full_state(back, volatile=True) == full_state(h, volatile=True)
    assert back.outcomes["a"]["etl"].maxlen == 3
    assert type(back.alerts["k"]) is ev.ModuleStatusChanged


def test_the_deadlines_of_finished_tasks_are_not_written() -> None:
    h = busy_hive()  # t0 and t1 assigned to the agent's two slots, each with a deadline
    for i, tid in enumerate(["t0", "t1"]):
        h.handle(StartTask(id=f"st{i}", task_id=tid, agent_id="a", attempt=1), at(10 + i))
        h.handle(CompleteTask(id=f"c{i}", task_id=tid, agent_id="a", attempt=1, result=1), at(20 + i))
    # t2 and t3 took the slots; t0 and t1 left two entries each (assigned, started)
    stale = [e for e in h._deadlines if e[1] in ("t0", "t1")]
    assert len(stale) == 4
    back = Hive(new_id=Ids(), rng=random.Random(0))
    S.codec().decode_into(S.codec().encode(h), back)
    assert back._deadlines == live_deadlines(h) == sorted(e for e in h._deadlines if e not in stale)
    assert {e[1] for e in back._deadlines} == {"t2", "t3"}
    written = msgspec.msgpack.decode(S.codec().encode(h))[list(S.codec().fields).index("_deadlines")]
    assert sorted(tid for _, tid, _ in written) == ["t2", "t3"]
    # and it decides as the hive it was taken from: the same timeouts, once past them
    later = at(10_000)
    assert h.handle(Tick(id="tick"), later) == back.handle(Tick(id="tick"), later)


def test_a_field_outside_the_schema_is_refused_not_dropped() -> None:
    h = busy_hive()
    h._assigned_later = 1  # type: ignore[attr-defined]
    with pytest.raises(S.SnapshotRejected, match="_assigned_later"):
        S.codec().encode(h)


def test_an_unannotated_field_without_a_literal_start_has_no_type() -> None:
    class Odd(Hive):
        def __init__(self) -> None:
            super().__init__()
            self.things = list()  # noqa: C408 (no literal, no annotation)

    with pytest.raises(TypeError, match="things has no type"):
        S.state_fields(Odd)


def test_the_schema_changes_with_a_field() -> None:
    class More(Hive):
        def __init__(self) -> None:
            super().__init__()
            self.prefetch: dict[str, list[str]] = {}

    more = S.StateCodec.build(More)
    assert "prefetch" in more.fields
    assert more.schema != S.codec().schema
    h = More()
    back = More()
    h.prefetch["a"] = ["t1"]
    more.decode_into(more.encode(h), back)
    assert back.prefetch == {"a": ["t1"]}


def snapshot_of(h: Hive) -> S.Snapshot:
    return S.codec().snapshot(h, b"head body")


def test_corrupt_bytes_are_refused() -> None:
    h = busy_hive()
    good = snapshot_of(h)
    for body in (good.body[: len(good.body) // 2], b"\xc1" + good.body[1:], b"", b"not msgpack at all"):
        with pytest.raises(S.SnapshotRejected):
            S.codec().restore(good._replace(body=body), Hive())


def test_another_format_schema_or_config_is_refused() -> None:
    good = snapshot_of(busy_hive())
    S.codec().restore(good, Hive())
    with pytest.raises(S.SnapshotRejected, match="format"):
        S.codec().restore(good._replace(format=S.FORMAT - 1), Hive())
    with pytest.raises(S.SnapshotRejected, match="schema"):
        S.codec().restore(good._replace(schema="0" * 32), Hive())
    # folded with other retention: apply would have evicted other tasks
    with pytest.raises(S.SnapshotRejected, match="settings"):
        S.codec().restore(good, Hive(HiveConfig(retain_finished=3)))


def test_a_snapshot_body_of_another_sequence_is_refused() -> None:
    h = busy_hive()
    snap = snapshot_of(h)
    with pytest.raises(S.SnapshotRejected, match="sequence"):
        S.codec().restore(snap._replace(sequence=snap.sequence + 1), Hive())


def test_the_encoding_is_msgpack_of_the_fields_in_schema_order() -> None:
    h = busy_hive()
    values = msgspec.msgpack.decode(S.codec().encode(h))
    assert len(values) == len(S.codec().fields)
    assert values[list(S.codec().fields).index("sequence")] == h.sequence


def test_the_schema_does_not_depend_on_what_the_process_imported() -> None:
    # protocol.messages.TaskRead and RegisteredAgent subclass Task and Agent (reply
    # shapes, never state): a hub imports them, a tool reading its snapshots may not
    code = "import sys\nfor m in sys.argv[1:]:\n    __import__(m)\nfrom hivehub.store.snapshot import codec\nprint(codec().schema)"
    schemas = {
        subprocess.run(
            [sys.executable, "-c", code, *mods], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        for mods in ([], ["hivehub.server.app"])
    }
    assert schemas == {S.codec().schema}
