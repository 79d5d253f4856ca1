"""``hive --help`` and every command's: defaults shown, examples that parse, ``--version``,
``hive`` alone printing help, and the global options accepted before the command."""

from __future__ import annotations

import argparse
import shlex

import pytest

from hivehub import __version__
from hivehub.cli import build_parser, hoist, main
from hivehub.cli.helptext import EXAMPLES, walk


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
    assert "(default 100)" in text or "(default: 100)" in text
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
