"""``hive agent`` LLM flags: checked before anything starts (exit 2)."""

from __future__ import annotations

import pytest

from hivehub.cli.agent import build_parser, make_agent


def _agent(*argv: str):  # type: ignore[no-untyped-def]
    p = build_parser()
    return make_agent(p.parse_args(["--no-state", *argv]), p)


@pytest.mark.parametrize(
    "argv",
    [
        ["--llm-base-url", "ftp://x/v1", "--llm-model", "m"],
        ["--llm-base-url", "http://127.0.0.1:1/v1"],
        ["--llm-model", "m"],
        ["--llm-max-concurrent", "2"],
        ["--llm-base-url", "http://127.0.0.1:1/v1", "--llm-model", "m", "--llm-max-concurrent", "0"],
        [
            "--llm-base-url",
            "http://127.0.0.1:1/v1",
            "--llm-model",
            "m",
            "--llm-api-key-env",
            "HIVE_NO_SUCH_VAR",
        ],
    ],
)
def test_bad_llm_flags_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _agent(*argv)
    assert info.value.code == 2


def test_llm_agent_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test")
    agent = _agent(
        "--llm-base-url",
        "http://127.0.0.1:1/v1",
        "--llm-model",
        "m",
        "--llm-api-key-env",
        "MY_KEY",
        "--quota",
        "openai-main",
        "--llm-system",
        "Be brief.",
        "--capability",
        "summarize:0.8",
    )
    assert "*" in agent.handlers and agent.llm is not None and agent.llm.model == "m"
    assert agent.llm._gate is None  # no --llm-max-concurrent: no limit of its own
    assert agent.spec()["quota"] == "openai-main"
