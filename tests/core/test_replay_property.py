"""Property: the live hive and a replay of its log are the same state, and a
rejected command changes nothing.

A hypothesis state machine drives one :class:`Hive` with random commands and
ticks (agents coming and going, single and batch submissions with
dependencies, reports with right and wrong attempts, cancels, retries, learning
resets, the clock moving on). After every step it checks that

- a command the hive refused (``HiveError``) left every field as it was,
  volatile ones included;
- a command is given, as ``facts``, the final statuses the log folds for the
  ids the core has forgotten (``remember_evicted`` is tiny here), as the
  service does, and the bounded evicted index agrees with the log
  (``ForgettingMachine``: bounds so tiny that ids are forgotten all the time);
- quota pools and budgets (set, changed, deleted), usage in progress and outcome
  reports and RATE_LIMITED failures, with approvals and questions to a person in
  between, are folded the same way live and on replay, and the pools' and budgets'
  books balance with the attempts in flight (``UsageMachine``; it found that a pool
  deleted and created again under an attempt in flight forgot the attempt);
- a fresh hive that ``apply``-s the log emitted so far, its timers drained to
  the time of the live hive's last Tick, equals the live one in every field
  (``tests/core/_state.py``: everything but what ``core/state.py`` calls
  volatile: heartbeat liveness, which is not logged by design, and scratch).
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from hivehub.core import events as ev
from hivehub.core.commands import (
    AgentDisconnected,
    AgentPatch,
    AgentSpec,
    ApproveTask,
    CancelTask,
    CompleteLearning,
    CompleteTask,
    DeleteBudget,
    DeleteQuota,
    EvictAgent,
    FailTask,
    Heartbeat,
    ProvideInput,
    Recover,
    RegisterAgent,
    RejectTask,
    ReleaseTask,
    RemoveAgent,
    ReportProgress,
    RequestInput,
    ResetLearning,
    RetryTask,
    SetBudget,
    SetQuota,
    StartTask,
    SubmitTask,
    SubmitTasks,
    TaskSpec,
    Tick,
    UpdateAgent,
)
from hivehub.core.coordination import CoordinationConfig
from hivehub.core.errors import HiveError
from hivehub.core.hive import Hive, HiveConfig
from hivehub.core.learning import LearningConfig
from hivehub.core.model import (
    HELD,
    Capability,
    ModelPrice,
    RequiredCapability,
    TaskError,
    TaskStatus,
    UsageReport,
)
from hivehub.core.tasklog import fold_statuses, fold_task, task_id_of

from ._harness import Ids, at, facts_from
from ._state import changes_since, differences, full_state, snapshot

AGENTS = ["a0", "a1", "a2"]
TASKS = [f"t{i}" for i in range(8)]
CAPS = ["x", "y"]
POOLS = ["p0", "p1"]
OWNERS = [None, "alice", "bob"]

CONFIG = HiveConfig(
    heartbeat_timeout=10.0,
    retry_base_seconds=1.0,
    retry_cap_seconds=4.0,
    performance_interval=1.0,
    retain_finished=3,
    learning=LearningConfig(min_outcomes=2, interval_seconds=20.0),
    coordination=CoordinationConfig(interval_seconds=5.0, min_unstarted_seconds=1.0, margin=0.1),
    prices={"priced": ModelPrice(input_per_million=3.0, output_per_million=15.0)},
    default_estimated_tokens=300,
)

agent_ids = st.sampled_from(AGENTS)
task_ids = st.sampled_from(TASKS)
proficiency = st.sampled_from([0.2, 0.5, 0.9])
capabilities = st.dictionaries(st.sampled_from(CAPS), proficiency, max_size=2).map(
    lambda d: [Capability(name=k, proficiency=v) for k, v in d.items()]
)
requirements = st.dictionaries(st.sampled_from(CAPS), st.sampled_from([0.0, 0.4, 0.8]), max_size=2).map(
    lambda d: [RequiredCapability(name=k, min_proficiency=v) for k, v in d.items()]
)
#: the task's current attempt, a stale or future one, or none at all
attempt_delta = st.sampled_from([0, 0, 0, -1, 1, None])
pools = st.sampled_from([None, *POOLS, *POOLS])
limit = st.none() | st.sampled_from([1, 2, 60, 600, 6000])
usages = st.none() | st.builds(
    UsageReport,
    model=st.sampled_from(["priced", "unpriced"]),
    prompt_tokens=st.sampled_from([0, 100, 900]),
    completion_tokens=st.sampled_from([0, 50, 2000]),
)


@st.composite
def task_specs(draw: st.DrawFn, *, with_id: bool = True) -> TaskSpec:
    return TaskSpec(
        id=draw(task_ids) if with_id else None,
        required_capabilities=draw(requirements),
        depends_on=draw(st.lists(task_ids, max_size=2)),
        max_retries=draw(st.integers(0, 2)),
        timeout_seconds=draw(st.sampled_from([3.0, 30.0])),
        priority=draw(st.integers(1, 4)),
        type=draw(st.sampled_from(["etl", "ml"])),
        estimated_tokens=draw(st.none() | st.sampled_from([50, 1000])),
        max_tokens=draw(st.none() | st.sampled_from([200, 3000])),
        max_cost_usd=draw(st.none() | st.sampled_from([0.01, 1.0])),
        requires_approval=draw(st.sampled_from([False, False, True])),
    )


class ReplayMachine(RuleBasedStateMachine):
    config = CONFIG

    def __init__(self) -> None:
        super().__init__()
        self.hive = Hive(self.config, new_id=Ids(), rng=random.Random(0))
        self.log: list[ev.Event] = []
        self.t = 0.0
        self.n = 0
        #: the monotonic reading of the last Tick: how far the live hive drained its timers
        self.drained: float | None = None

    # -- driving ----------------------------------------------------------

    def do(self, cmd: Any, dt: float = 0.0) -> None:
        self.t += dt
        self.n += 1
        cmd.id = f"c{self.n}"
        before = snapshot(self.hive)
        # what the service does: the final statuses of forgotten ids, from the log
        facts = facts_from(self.log, self.hive.unknown_task_ids(cmd))
        try:
            events = self.hive.handle(cmd, at(self.t), facts=facts)
        except HiveError:
            changed = changes_since(self.hive, before)
            assert not changed, f"{type(cmd).__name__} was refused but changed: {changed}"
            return
        self.log.extend(events)
        if isinstance(cmd, Tick):
            self.drained = at(self.t).timestamp()

    def attempt(self, task_id: str, delta: int | None) -> int | None:
        t = self.hive.tasks.get(task_id)
        if delta is None:
            return None
        return (t.attempt if t is not None else 1) + delta

    def holder(self, task_id: str, agent_id: str, use_holder: bool) -> str:
        t = self.hive.tasks.get(task_id)
        if use_holder and t is not None and t.assigned_agent_id is not None:
            return t.assigned_agent_id
        return agent_id

    # -- agents -----------------------------------------------------------

    @initialize()
    def pools_exist(self) -> None:
        """Both pools exist from the start, so agents draw from them often."""
        self.do(SetQuota(name="p0", tokens_per_minute=6000, max_concurrent=2))
        self.do(SetQuota(name="p1", requests_per_minute=60))

    @rule(
        agent_id=agent_ids,
        caps=capabilities,
        slots=st.integers(1, 2),
        running=st.sampled_from([None, {}]),
        quota=pools,
        prefetch=st.sampled_from([0, 0, 1, 3]),
    )
    def register(
        self,
        agent_id: str,
        caps: list[Capability],
        slots: int,
        running: dict[str, int] | None,
        quota: str | None,
        prefetch: int,
    ) -> None:
        spec = AgentSpec(
            name=agent_id,
            id=agent_id,
            capabilities=caps,
            max_concurrent_tasks=slots,
            quota=quota,
            prefetch=prefetch,
        )
        self.do(RegisterAgent(spec=spec, running=running))

    @rule(agent_id=agent_ids, caps=st.none() | capabilities, slots=st.none() | st.integers(1, 3))
    def update(self, agent_id: str, caps: list[Capability] | None, slots: int | None) -> None:
        self.do(
            UpdateAgent(agent_id=agent_id, patch=AgentPatch(capabilities=caps, max_concurrent_tasks=slots))
        )

    @rule(agent_id=agent_ids)
    def remove(self, agent_id: str) -> None:
        self.do(RemoveAgent(agent_id=agent_id))

    @rule(agent_id=agent_ids)
    def disconnect(self, agent_id: str) -> None:
        self.do(AgentDisconnected(agent_id=agent_id))

    @rule(agent_id=agent_ids)
    def evict(self, agent_id: str) -> None:
        self.do(EvictAgent(agent_id=agent_id))

    @rule(agent_id=agent_ids, dt=st.sampled_from([0.0, 1.0]))
    def heartbeat(self, agent_id: str, dt: float) -> None:
        self.do(Heartbeat(agent_id=agent_id), dt)

    @rule(agent_id=agent_ids, names=st.none() | st.lists(st.sampled_from(CAPS + ["nope"]), max_size=2))
    def reset_learning(self, agent_id: str, names: list[str] | None) -> None:
        self.do(ResetLearning(agent_id=agent_id, capabilities=names))

    @rule(data=st.data())
    def complete_learning(self, data: st.DataObject) -> None:
        cycles = sorted(self.hive.cycles) + ["learn-unknown"]
        self.do(CompleteLearning(cycle_id=data.draw(st.sampled_from(cycles))))

    # -- tasks ------------------------------------------------------------

    # -- quotas and budgets ----------------------------------------------

    @rule(name=st.sampled_from(POOLS), rpm=limit, tpm=limit, conc=st.none() | st.integers(0, 2))
    def set_quota(self, name: str, rpm: int | None, tpm: int | None, conc: int | None) -> None:
        self.do(SetQuota(name=name, requests_per_minute=rpm, tokens_per_minute=tpm, max_concurrent=conc))

    @rule(name=st.sampled_from([*POOLS, "nope"]))
    def delete_quota(self, name: str) -> None:
        self.do(DeleteQuota(name=name))

    @rule(
        owner=st.sampled_from(["anonymous", "alice", "bob"]),
        tokens=st.none() | st.sampled_from([-1, 500, 5000]),
        cost=st.none() | st.sampled_from([0.005, 2.0]),
    )
    def set_budget(self, owner: str, tokens: int | None, cost: float | None) -> None:
        self.do(SetBudget(owner=owner, tokens_per_day=tokens, cost_usd_per_day=cost))

    @rule(owner=st.sampled_from(["anonymous", "alice", "nobody"]))
    def delete_budget(self, owner: str) -> None:
        self.do(DeleteBudget(owner=owner))

    # -- tasks ------------------------------------------------------------

    @rule(spec=task_specs(), owner=st.sampled_from(OWNERS))
    def submit(self, spec: TaskSpec, owner: str | None) -> None:
        self.do(SubmitTask(spec=spec, created_by=owner))

    @rule(specs=st.lists(task_specs(), min_size=1, max_size=4), owner=st.sampled_from(OWNERS))
    def submit_batch(self, specs: list[TaskSpec], owner: str | None) -> None:
        self.do(SubmitTasks(specs=specs, created_by=owner))

    @rule(task_id=task_ids, agent_id=agent_ids, use_holder=st.booleans(), delta=attempt_delta)
    def start(self, task_id: str, agent_id: str, use_holder: bool, delta: int | None) -> None:
        agent_id = self.holder(task_id, agent_id, use_holder)
        self.do(StartTask(task_id=task_id, agent_id=agent_id, attempt=self.attempt(task_id, delta)), 0.5)

    @rule(
        task_id=task_ids,
        agent_id=agent_ids,
        use_holder=st.booleans(),
        delta=attempt_delta,
        p=st.sampled_from([0.0, 0.5]),
        output=st.none() | st.sampled_from(["", "tok "]),
        usage=usages,
    )
    def progress(
        self,
        task_id: str,
        agent_id: str,
        use_holder: bool,
        delta: int | None,
        p: float,
        output: str | None,
        usage: UsageReport | None,
    ) -> None:
        agent_id = self.holder(task_id, agent_id, use_holder)
        attempt = self.attempt(task_id, delta)
        self.do(
            ReportProgress(
                task_id=task_id,
                agent_id=agent_id,
                progress=p,
                attempt=attempt,
                output_delta=output,
                usage=usage,
            ),
            0.5,
        )

    @rule(
        task_id=task_ids,
        agent_id=agent_ids,
        use_holder=st.booleans(),
        delta=attempt_delta,
        quality=st.none() | st.sampled_from([0.3, 1.0]),
        usage=usages,
    )
    def complete(
        self,
        task_id: str,
        agent_id: str,
        use_holder: bool,
        delta: int | None,
        quality: float | None,
        usage: UsageReport | None,
    ) -> None:
        agent_id = self.holder(task_id, agent_id, use_holder)
        attempt = self.attempt(task_id, delta)
        self.do(
            CompleteTask(task_id=task_id, agent_id=agent_id, attempt=attempt, quality=quality, usage=usage),
            0.5,
        )

    @rule(
        task_id=task_ids,
        agent_id=agent_ids,
        use_holder=st.booleans(),
        delta=attempt_delta,
        retryable=st.booleans(),
        code=st.sampled_from(["BOOM", "RATE_LIMITED"]),
        retry_after=st.none() | st.sampled_from([1.0, 30.0]),
        usage=usages,
    )
    def fail(
        self,
        task_id: str,
        agent_id: str,
        use_holder: bool,
        delta: int | None,
        retryable: bool,
        code: str,
        retry_after: float | None,
        usage: UsageReport | None,
    ) -> None:
        agent_id = self.holder(task_id, agent_id, use_holder)
        attempt = self.attempt(task_id, delta)
        error = TaskError(code, "it broke")
        self.do(
            FailTask(
                task_id=task_id,
                agent_id=agent_id,
                attempt=attempt,
                error=error,
                retryable=retryable,
                usage=usage,
                retry_after=retry_after,
            ),
            0.5,
        )

    @rule(
        task_id=task_ids,
        agent_id=agent_ids,
        use_holder=st.booleans(),
        delta=attempt_delta,
        reason=st.sampled_from(["agent_shutdown", "declined", "recalled"]),
    )
    def release(self, task_id: str, agent_id: str, use_holder: bool, delta: int | None, reason: str) -> None:
        agent_id = self.holder(task_id, agent_id, use_holder)
        attempt = self.attempt(task_id, delta)
        self.do(ReleaseTask(task_id=task_id, agent_id=agent_id, attempt=attempt, reason=reason))

    @rule(task_id=task_ids)
    def cancel(self, task_id: str) -> None:
        self.do(CancelTask(task_id=task_id, cancelled_by="u"))

    @rule(task_id=task_ids)
    def retry(self, task_id: str) -> None:
        self.do(RetryTask(task_id=task_id))

    # -- people -----------------------------------------------------------

    def pick(self, data: st.DataObject, status: TaskStatus) -> str:
        """Mostly a task in ``status`` (so the rule reaches it), sometimes any id."""
        ids = sorted(i for i, t in self.hive.tasks.items() if t.status == status)
        return data.draw(st.sampled_from(ids) if ids and data.draw(st.booleans()) else task_ids)

    @rule(data=st.data(), approve=st.booleans())
    def decide_approval(self, data: st.DataObject, approve: bool) -> None:
        task_id = self.pick(data, TaskStatus.AWAITING_APPROVAL)
        if approve:
            self.do(ApproveTask(task_id=task_id, approved_by="op"))
        else:
            self.do(RejectTask(task_id=task_id, rejected_by="op", reason="no"))

    @rule(
        data=st.data(),
        agent_id=agent_ids,
        use_holder=st.booleans(),
        delta=attempt_delta,
        request_id=st.sampled_from(["q1", "q2"]),
        choices=st.sampled_from([None, ["yes", "no"]]),
        timeout=st.sampled_from([1.0, 5.0, 40.0]),
    )
    def request_input(
        self,
        data: st.DataObject,
        agent_id: str,
        use_holder: bool,
        delta: int | None,
        request_id: str,
        choices: list[str] | None,
        timeout: float,
    ) -> None:
        task_id = self.pick(data, data.draw(st.sampled_from([TaskStatus.RUNNING, TaskStatus.ASSIGNED])))
        agent_id = self.holder(task_id, agent_id, use_holder)
        attempt = self.attempt(task_id, delta)
        cmd = RequestInput(
            task_id=task_id,
            agent_id=agent_id,
            attempt=attempt,
            request_id=request_id,
            question="go on?",
            choices=choices,
            timeout_seconds=timeout,
        )
        self.do(cmd, 0.5)

    @rule(task_id=task_ids, agent_id=agent_ids, approve=st.booleans())
    def approval_round(self, task_id: str, agent_id: str, approve: bool) -> None:
        """An agent that can take it, a task that needs approval, and the decision."""
        self.do(RegisterAgent(spec=AgentSpec(name=agent_id, id=agent_id, max_concurrent_tasks=2)))
        self.do(SubmitTask(spec=TaskSpec(id=task_id, requires_approval=True, timeout_seconds=3.0)))
        if not approve:
            self.do(RejectTask(task_id=task_id, rejected_by="op", reason="no"), 0.5)
            return
        self.do(ApproveTask(task_id=task_id, approved_by="op", comment="fine"), 0.5)
        t = self.hive.tasks.get(task_id)
        if t is not None and t.status == TaskStatus.ASSIGNED and t.assigned_agent_id is not None:
            self.do(StartTask(task_id=t.id, agent_id=t.assigned_agent_id, attempt=t.attempt))
            ask = RequestInput(
                task_id=t.id,
                agent_id=t.assigned_agent_id,
                attempt=t.attempt,
                request_id="q1",
                question="go on?",
                choices=["yes", "no"] if agent_id == "a1" else None,
                timeout_seconds=2.0 if agent_id == "a2" else 20.0,
            )
            self.do(ask, 0.5)

    @rule(
        data=st.data(),
        request_id=st.sampled_from(["q1", "q2"]),
        choices=st.sampled_from([None, ["yes", "no"]]),
        timeout=st.sampled_from([1.0, 5.0, 40.0]),
    )
    def start_then_ask(
        self, data: st.DataObject, request_id: str, choices: list[str] | None, timeout: float
    ) -> None:
        """The holder of an assigned task starts it and asks at once (so questions are common)."""
        ids = sorted(i for i, t in self.hive.tasks.items() if t.status == TaskStatus.ASSIGNED)
        if not ids:
            return
        t = self.hive.tasks[data.draw(st.sampled_from(ids))]
        assert t.assigned_agent_id is not None
        self.do(StartTask(task_id=t.id, agent_id=t.assigned_agent_id, attempt=t.attempt), 0.5)
        cmd = RequestInput(
            task_id=t.id,
            agent_id=t.assigned_agent_id,
            attempt=t.attempt,
            request_id=request_id,
            question="go on?",
            choices=choices,
            timeout_seconds=timeout,
        )
        self.do(cmd, 0.5)

    @rule(data=st.data(), dt=st.sampled_from([0.0, 1.0, 3.0]))
    def answer_open_question(self, data: st.DataObject, dt: float) -> None:
        """A right answer to a question that is open (so answers are common)."""
        ids = sorted(i for i, t in self.hive.tasks.items() if t.status == TaskStatus.INPUT_REQUIRED)
        if not ids:
            return
        t = self.hive.tasks[data.draw(st.sampled_from(ids))]
        assert t.pending_input is not None
        answer = t.pending_input.choices[0] if t.pending_input.choices else "ok"
        self.do(ProvideInput(task_id=t.id, answer=answer, request_id=t.pending_input.request_id), dt)

    @rule(
        data=st.data(),
        answer=st.sampled_from(["yes", "maybe"]),
        request_id=st.sampled_from([None, "q1", "q2"]),
        dt=st.sampled_from([0.0, 2.0]),
    )
    def provide_input(self, data: st.DataObject, answer: str, request_id: str | None, dt: float) -> None:
        task_id = self.pick(data, TaskStatus.INPUT_REQUIRED)
        self.do(ProvideInput(task_id=task_id, answer=answer, answered_by="u", request_id=request_id), dt)

    # -- time -------------------------------------------------------------

    @rule(dt=st.sampled_from([0.5, 2.0, 4.0, 11.0, 25.0]))
    def tick(self, dt: float) -> None:
        self.do(Tick(), dt)

    @rule()
    def recover(self) -> None:
        self.do(Recover(), 0.1)

    # -- the property -----------------------------------------------------

    @invariant()
    def replay_equals_live(self) -> None:
        replay = Hive(self.config, new_id=Ids("other"), rng=random.Random(1))
        for e in self.log:
            replay.apply(e)
        if self.drained is not None:
            replay.drain_timers(self.drained)
        live, folded = full_state(self.hive), full_state(replay)
        assert live == folded, "\n".join(differences(live, folded))

    @invariant()
    def recalls_name_unstarted_prefetched_attempts(self) -> None:
        h = self.hive
        for task_id, (attempt, for_agent) in h._recalls.items():
            t = h.tasks[task_id]
            assert t.status == TaskStatus.ASSIGNED and t.attempt == attempt, (task_id, t.status)
            # (for a holder that announced a prefetch; it may since have registered without)
            assert for_agent != t.assigned_agent_id

    @invariant()
    def the_books_balance_with_the_attempts_in_flight(self) -> None:
        h = self.hive
        held = {tid for tid, t in h.tasks.items() if t.status in HELD}
        assert set(h._reservations) <= held
        for name, p in h._pools.items():
            assert name in h.quotas
            n = sum(1 for _, r in h._reservations.values() if r.quota == name)
            assert p.in_flight == n, (name, p.in_flight, n)
        by_owner: dict[str, int] = {}
        for owner, r in h._reservations.values():
            by_owner[owner] = by_owner.get(owner, 0) + r.budget_tokens
        assert {o: x.tokens for o, x in h._reserved.items()} == by_owner
        assert set(h._attempt_usage) <= held
        total = sum(u.total_tokens for u in h.usage_by_model.values())
        assert total == sum(u.total_tokens for u in h.usage_by_owner.values())
        assert total == sum(u.total_tokens for u in h.usage_by_type.values())

    @invariant()
    def the_bounded_index_agrees_with_the_log(self) -> None:
        h = self.hive
        folded = fold_statuses(self.log)
        assert len(h.evicted) <= self.config.remember_evicted
        assert all(folded[i] == st for i, st in h.evicted.items())
        # every task the log created is in memory, remembered or counted as forgotten
        assert len(folded) == len(h.tasks) + len(h.evicted) + h.forgotten
        assert h.status(at(self.t))["metrics"]["total_tasks"] == len(folded)

    @invariant()
    def every_task_folds_from_its_own_events(self) -> None:
        for task_id, t in self.hive.tasks.items():
            assert fold_task(e for e in self.log if task_id_of(e.data) == task_id) == t, task_id


class ForgettingMachine(ReplayMachine):
    """The same, with no bounds at all: every finished task is evicted and forgotten
    at once, so every decision about one reads its final status from the log (the
    remembered index in between is covered by ``test_retention.TestForgetting``)."""

    config = msgspec.structs.replace(CONFIG, retain_finished=0, remember_evicted=0)

    @rule(spec=task_specs())
    def submit_then_cancel(self, spec: TaskSpec) -> None:
        """Tasks that finish at once: soon forgotten, and their ids named again."""
        self.do(SubmitTask(spec=spec))
        assert spec.id is not None
        self.do(CancelTask(task_id=spec.id, cancelled_by="u"))


class UsageMachine(ReplayMachine):
    """The same, focused on usage, quota pools and budgets: three agents (two pools,
    one without) registered from the start, and only the rules that move work,
    usage and limits (the rest of the machine's rules are switched off here)."""

    @initialize()
    def agents_exist(self) -> None:
        for agent_id, quota in zip(AGENTS, ["p0", "p1", None], strict=True):
            every = [Capability(name=c, proficiency=0.9) for c in CAPS]
            spec = AgentSpec(
                name=agent_id, id=agent_id, max_concurrent_tasks=2, quota=quota, capabilities=every
            )
            self.do(RegisterAgent(spec=spec))
        self.do(SetBudget(owner="alice", tokens_per_day=4000, cost_usd_per_day=0.05))

    @rule(spec=task_specs(with_id=False), owner=st.sampled_from(OWNERS))
    def submit_more(self, spec: TaskSpec, owner: str | None) -> None:
        """A task with a hub-made id and no dependencies: accepted, so work flows."""
        self.do(SubmitTask(spec=msgspec.structs.replace(spec, depends_on=[]), created_by=owner))

    @rule(
        data=st.data(),
        action=st.sampled_from(["progress", "complete", "fail", "rate_limited", "cancel"]),
        usage=usages,
        dt=st.sampled_from([0.0, 1.0, 10.0]),
    )
    def holder_reports(self, data: st.DataObject, action: str, usage: UsageReport | None, dt: float) -> None:
        """A report by the holder of a held task, with its current attempt."""
        held = sorted(tid for tid, t in self.hive.tasks.items() if t.status in HELD)
        if not held:
            return
        t = self.hive.tasks[data.draw(st.sampled_from(held))]
        assert t.assigned_agent_id is not None
        ids = {"task_id": t.id, "agent_id": t.assigned_agent_id, "attempt": t.attempt}
        cmd: Any
        if action == "progress":
            cmd = ReportProgress(**ids, progress=0.5, output_delta="tok ", usage=usage)
        elif action == "complete":
            cmd = CompleteTask(**ids, usage=usage)
        elif action == "cancel":
            cmd = CancelTask(task_id=t.id, cancelled_by="u")
        else:
            code = "RATE_LIMITED" if action == "rate_limited" else "BOOM"
            cmd = FailTask(
                **ids,
                error=TaskError(code, "no"),
                usage=usage,
                retry_after=data.draw(st.sampled_from([None, 2.0])),
            )
        self.do(cmd, dt)

    @rule(data=st.data())
    def reregister_without_the_pool(self, data: st.DataObject) -> None:
        """An agent holding attempts re-registers without its pool (keeping them), and
        the pool is deleted and created again: the pool must still count them (a
        deletion while they are in flight is refused, ``quota_in_use``)."""
        holders = sorted(
            {
                t.assigned_agent_id
                for t in self.hive.tasks.values()
                if t.status in HELD and t.assigned_agent_id
            }
        )
        agents = [a for a in holders if self.hive.agents[a].quota is not None]
        if not agents:
            return
        a = self.hive.agents[data.draw(st.sampled_from(agents))]
        pool, q = a.quota, self.hive.quotas[a.quota]
        running = {t.id: t.attempt for t in self.hive.tasks.values() if t.assigned_agent_id == a.id}
        every = [Capability(name=c, proficiency=0.9) for c in CAPS]  # as agents_exist registers it
        spec = AgentSpec(name=a.name, id=a.id, capabilities=every, max_concurrent_tasks=2, quota=None)
        self.do(RegisterAgent(spec=spec, running=running))
        self.do(DeleteQuota(name=pool))
        limits = {"requests_per_minute": q.requests_per_minute, "tokens_per_minute": q.tokens_per_minute}
        self.do(SetQuota(name=pool, max_concurrent=q.max_concurrent, **limits))

    # noise for this machine: covered by ReplayMachine
    update = remove = disconnect = evict = reset_learning = complete_learning = recover = None  # type: ignore[assignment]
    # approval and input stay: a held task may wait for a person (input_required holds
    # its reservation), and approval gates what the pools and budgets see; the broad
    # request_input and provide_input (mostly refused ids) are ReplayMachine's
    request_input = provide_input = None  # type: ignore[assignment]


_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ReplayMachine.TestCase.settings = _SETTINGS
ForgettingMachine.TestCase.settings = _SETTINGS
UsageMachine.TestCase.settings = settings(_SETTINGS, stateful_step_count=60)
TestReplay = ReplayMachine.TestCase
TestReplayUsage = UsageMachine.TestCase
TestReplayForgetting = ForgettingMachine.TestCase
