"""``hive --help`` and every command's: defaults shown, examples that parse, ``--version``,
``hive`` alone printing help, and the global options accepted before the command."""

from __future__ import annotations

import argparse
import shlex

import pytest

from hivehub import __version__
from hivehub.cli import build_parser, hoist, main
from hivehub.cli.helptext import EXAMPLES, suffix, walk


def commands() -> list[tuple[str, argparse.ArgumentParser]]:
    # 'hive agent' is a placeholder here: it has its own parser (tests/cli/test_agent.py)
    return [(path, p) for path, p in walk(build_parser()) if path != "agent"]


@pytest.mark.parametrize("path", [path for path, _ in commands()])
def test_every_command_has_examples_that_parse(path: str) -> None:
    lines = EXAMPLES.get(path)
    assert lines and len(lines) >= 1, f"'hive {path}' has no examples in hivehub/cli/helptext.py"
    parser = dict(commands())[path]
    assert "examples:" in parser.format_help()
    for line in lines:
        words = shlex.split(line.split("#", 1)[0].split("|", 1)[0])
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)  # VAR=value before the command
        assert words[0] == "hive", line
        try:
            build_parser().parse_args(words[1:])
        except SystemExit as exc:
            pytest.fail(f"example does not parse ({exc.code}): {line}")


def test_help_shows_defaults() -> None:
    text = dict(commands())["tasks list"].format_help()
    assert "default 100" in text or "default: 100" in text
    serve = " ".join(dict(commands())["serve"].format_help().split())
    assert "default: 3001" in serve or "default 3001" in serve


def test_version_and_bare_hive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"hive {__version__}"
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: hive") and "examples:" in out


def test_global_options_before_or_after_the_command() -> None:
    assert hoist(["--url", "http://h:1", "tasks", "list"]) == ["tasks", "list", "--url", "http://h:1"]
    assert hoist(["--token=t", "--url", "u", "status", "--json"]) == [
        "status",
        "--json",
        "--token=t",
        "--url",
        "u",
    ]
    assert hoist(["tasks", "list", "--url", "u"]) == ["tasks", "list", "--url", "u"]
    assert hoist(["--url", "u", "agent", "--", "x"]) == ["agent", "--url", "u", "--", "x"]
    before = build_parser().parse_args(hoist(["--url", "http://h:9", "--token", "T", "tasks", "show", "abc"]))
    after = build_parser().parse_args(["tasks", "show", "abc", "--url", "http://h:9", "--token", "T"])
    assert (
        (before.url, before.token, before.task_id)
        == (after.url, after.token, after.task_id)
        == (
            "http://h:9",
            "T",
            "abc",
        )
    )


def test_every_environment_variable_serve_names_in_its_help_is_read() -> None:
    import os
    import re

    from hivehub.cli import serve

    def serve_parser() -> argparse.ArgumentParser:
        return dict(commands())["serve"]

    named = 0
    for action in serve_parser()._actions:
        m = re.search(r"env (HIVE_\w+)", (action.help or "") + suffix(action))
        if not m or not action.option_strings:
            continue
        name = m.group(1)
        if action.choices:
            value, want = str(list(action.choices)[-1]), list(action.choices)[-1]
        elif isinstance(action.default, bool) or action.nargs == 0:
            value, want = "1", True
        elif isinstance(action.default, list):
            value, want = "a,b", ["a", "b"]
        elif isinstance(action.default, int | float) or action.default == "auto":  # (auto or a number)
            value = "7"
            want = action.type("7") if action.type else 7  # type: ignore[operator]
        else:
            value, want = "x-from-env", "x-from-env"
        old = os.environ.get(name)
        os.environ[name] = value
        try:
            got = getattr(serve_parser().parse_args([]), action.dest)
        finally:
            if old is None:
                del os.environ[name]
            else:
                os.environ[name] = old
        # a value read from the environment is taken as given or through the option's type
        assert got == want or str(got) == value or (action.type and got == action.type(value)), (name, got)
        named += 1
    assert named >= 30, named
    assert serve._pending_env == []


def test_hive_agent_help_has_examples_that_parse() -> None:
    from hivehub.cli.agent import build_parser as agent_parser

    text = agent_parser().format_help()
    assert "examples:" in text and "Environment: HIVE_URL" in text
    for line in EXAMPLES["agent"]:
        words = shlex.split(line)
        assert words[:2] == ["hive", "agent"], line
        try:
            agent_parser().parse_args(words[2:])
        except SystemExit as exc:
            pytest.fail(f"example does not parse ({exc.code}): {line}")
