"""``hive agent`` argument handling (the agent is built, not started)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from hivehub.agent import Agent, PullAgent, TaskContext
from hivehub.cli.agent import build_parser, load_handler, make_agent, parse_capability, parse_handler
from hivehub.demo import math_task, text_analysis


def sample_handler(ctx: TaskContext) -> str:
    return "sample"


def build(argv: list[str]) -> Any:
    parser = build_parser()
    return make_agent(parser.parse_args(argv), parser)


def test_parse_capability() -> None:
    assert parse_capability("data_processing:0.85") == {"name": "data_processing", "proficiency": 0.85}
    assert parse_capability("x:0.5:0.2") == {"name": "x", "proficiency": 0.5, "learning_rate": 0.2}
    assert parse_capability("x") == {"name": "x", "proficiency": 0.5}
    for bad in ("x:1.5", "x:abc", ":0.5", "a:1:1:1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_capability(bad)


def test_parse_and_load_handler() -> None:
    assert parse_handler("pkg.mod:fn") == ("*", "pkg.mod:fn")
    assert parse_handler("text_analysis=pkg.mod:fn") == ("text_analysis", "pkg.mod:fn")
    assert load_handler("hivehub.demo:text_analysis") is text_analysis
    assert load_handler("tests.cli.test_agent:sample_handler") is sample_handler
    for bad in (
        "nocolon",
        "no_such_module_xyz:fn",
        "hivehub.demo:missing",
        "hivehub.demo:STOPWORDS",
    ):
        with pytest.raises(ValueError):
            load_handler(bad)


def test_full_command_line() -> None:
    agent = build(
        [
            "--url", "http://127.0.0.1:3001",
            "--name", "Worker-7",
            "--type", "specialist",
            "--capability", "data_processing:0.85",
            "--capability", "text_analysis:0.4:0.2",
            "--max-concurrent", "3",
            "--handler", "tests.cli.test_agent:sample_handler",
            "--handler", "math=hivehub.demo:math_task",
            "--id", "agent-42",
            "--token", "secret",
        ]
    )  # fmt: skip
    assert isinstance(agent, Agent)
    assert agent.url == "ws://127.0.0.1:3001/agents/ws"
    assert (agent.name, str(agent.type), agent.max_concurrent_tasks) == ("Worker-7", "specialist", 3)
    assert agent.agent_id == "agent-42" and agent.token == "secret"
    assert [(c.name, c.proficiency, c.learning_rate) for c in agent.capabilities] == [
        ("data_processing", 0.85, 0.1),
        ("text_analysis", 0.4, 0.2),
    ]
    assert agent.handlers == {"*": sample_handler, "math": math_task}
    assert agent.spec()["id"] == "agent-42"


def test_demo_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVE_URL", "https://hub.example.org")
    monkeypatch.setenv("HIVE_TOKEN", "tok")
    agent = build(["--demo"])
    assert agent.url == "wss://hub.example.org/agents/ws"
    assert agent.token == "tok"
    assert {"data_processing", "text_analysis", "math", "numeric"} <= set(agent.handlers)
    # without --capability, the handled task types are announced
    assert {c.name: c.proficiency for c in agent.capabilities}["text_analysis"] == 0.6
    pull = build(["--demo", "--pull", "--url", "ws://127.0.0.1:3001/agents/ws"])
    assert isinstance(pull, PullAgent) and pull.base_url == "http://127.0.0.1:3001"


def test_errors_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        [],
        ["--handler", "no_such_module_xyz:fn"],
        ["--demo", "--url", "ftp://x"],
        ["--type", "boss"],
    ):
        with pytest.raises(SystemExit) as info:
            build(argv)
        assert info.value.code == 2
    assert "hive agent" in capsys.readouterr().err
