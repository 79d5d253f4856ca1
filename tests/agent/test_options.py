"""One option object for both transports and ``hive agent`` (``agent/options.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivehub.agent import Agent, AgentOptions, PullAgent
from hivehub.cli.agent import build_parser, make_agent


def test_push_and_pull_agents_take_the_same_options(tmp_path: Path) -> None:
    opts = AgentOptions(
        type="specialist",
        max_concurrent_tasks=3,
        agent_id="a-1",
        token="tok",
        metadata={"team": "x"},
        heartbeat_interval=2.0,
        reconnect_base=0.1,
        reconnect_cap=1.0,
        progress_interval=0.5,
        max_result_bytes=1000,
        state_dir=tmp_path,
    )
    push = Agent("W", {"nlp": 0.8}, url="ws://h:1", options=opts, register_timeout=3)
    pull = PullAgent("W", {"nlp": 0.8}, url="http://h:1", options=opts, claim_wait=5)
    for agent in (push, pull):
        assert agent.options is opts
        assert (str(agent.type), agent.max_concurrent_tasks, agent.agent_id, agent.token) == (
            "specialist",
            3,
            "a-1",
            "tok",
        )
        assert agent.metadata == {"team": "x"} and agent.heartbeat_interval == 2.0
        assert (agent.reconnect_base, agent.reconnect_cap, agent.progress_interval) == (0.1, 1.0, 0.5)
        assert agent.max_result_bytes == 1000 and agent.id_file == tmp_path / "W.id"
    assert push.register_timeout == 3 and pull.claim_wait == 5


def test_keywords_still_work_and_win_over_options() -> None:
    agent = Agent("W", url="ws://h:1", options=AgentOptions(token="a", max_concurrent_tasks=2), token="b")
    assert agent.token == "b" and agent.max_concurrent_tasks == 2
    assert agent.options == AgentOptions(token="b", max_concurrent_tasks=2)
    plain = PullAgent("W", url="http://h:1", agent_id="x", type="learner")
    assert plain.agent_id == "x" and str(plain.type) == "learner"


def test_invalid_options_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="max_concurrent_tasks"):
        AgentOptions(max_concurrent_tasks=0)
    with pytest.raises(ValueError, match="reconnect"):
        Agent("W", reconnect_base=0)
    with pytest.raises(ValueError):
        PullAgent("W", type="boss")
    with pytest.raises(TypeError):
        Agent("W", no_such_option=1)
    with pytest.raises(ValueError, match="name"):
        PullAgent("")


def test_hive_agent_builds_its_options(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["--demo", "--pull", "--type", "coordinator", "--max-concurrent", "4", "--id", "z", "--no-state"]
    )
    agent = make_agent(args, parser)
    assert isinstance(agent, PullAgent)
    assert agent.options.type == "coordinator" and agent.options.max_concurrent_tasks == 4
    assert agent.options.agent_id == "z" and agent.id_file is None
