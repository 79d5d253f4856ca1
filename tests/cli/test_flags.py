"""Every numeric flag of every ``hive`` command refuses a bad number as a usage
error (argparse: exit 2 and a message naming the flag), before anything starts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from hivehub import argtypes
from hivehub.cli import build_parser, main
from hivehub.cli.agent import build_parser as agent_parser

#: argparse types that produce numbers; ``int`` and ``float`` themselves are listed so a
#: new flag declared with a bare ``type=int`` is caught (it accepts -5)
NUMERIC_TYPES = ("int", "float", "integer", "number")


def _parsers() -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    stack: list[tuple[list[str], argparse.ArgumentParser]] = [([], build_parser())]
    while stack:
        prefix, p = stack.pop()
        yield prefix, p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if name != "agent" or prefix:  # 'hive agent' has its own parser, below
                        stack.append(([*prefix, name], sub))
    yield ["agent"], agent_parser()


def numeric_flags() -> list[tuple[list[str], str]]:
    out = []
    for prefix, p in _parsers():
        for action in p._actions:
            name = getattr(action.type, "__name__", "")
            if action.option_strings and name in NUMERIC_TYPES:
                out.append((prefix, action.option_strings[-1]))
    return out


FLAGS = numeric_flags()


def test_the_numeric_flags_are_found() -> None:
    found = {f for _, f in FLAGS}
    assert {
        "--port",
        "--max-body",
        "--heartbeat-timeout",
        "--max-concurrent",
        "--grace",
        "--limit",
        "--timeout",
    } <= found
    assert len(FLAGS) >= 25, FLAGS


@pytest.mark.parametrize(("prefix", "flag"), FLAGS, ids=[" ".join([*p, f]) for p, f in FLAGS])
@pytest.mark.parametrize("bad", ["-5", "nan", "inf", "abc", "1e400"])
def test_bad_number_is_a_usage_error(
    prefix: list[str], flag: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the positional arguments and required options each command needs besides the flag
    required = {
        ("tasks", "submit"): ["--type", "x"],
        ("tasks", "show"): ["id"],
        ("tasks", "cancel"): ["id"],
        ("tasks", "retry"): ["id"],
        ("agents", "show"): ["id"],
        ("agents", "remove"): ["id"],
        ("tasks", "watch"): ["id"],
        ("quotas", "set"): ["pool"],
        ("budgets", "set"): ["alice"],
    }.get(tuple(prefix), [])
    with pytest.raises(SystemExit) as exc:
        main([*prefix, *required, f"{flag}={bad}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err, err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--port", "70000"),
        ("--port", "0"),
        ("--max-body", "-1"),
        ("--heartbeat-timeout", "-5"),
        ("--heartbeat-timeout", "0"),
        ("--cpu-threshold", "101"),
        ("--max-frame", "1.5"),
    ],
)
def test_serve_refuses_out_of_range_values(flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", f"{flag}={value}"])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_range_messages() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be >= 1 and <= 65535 \(got 70000\)"):
        argtypes.PORT("70000")
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be > 0 \(got -5\)"):
        argtypes.SECONDS("-5")
    assert (
        argtypes.PORT("3001") == 3001 and argtypes.SECONDS("0.5") == 0.5 and argtypes.NON_NEGATIVE("0") == 0
    )


def test_a_unicode_digit_is_no_priority() -> None:
    import argparse

    from hivehub.cli.tasks import _priority

    assert _priority("3") == 3 and _priority("High") == "high"
    with pytest.raises(argparse.ArgumentTypeError):
        _priority("\u00b2")  # "²".isdigit() is True, int("²") raises


def test_rate_limit_is_auto_or_a_number() -> None:
    parse = argtypes.AUTO_OR_NON_NEGATIVE
    assert parse("auto") is None and parse("AUTO") is None
    assert parse("0") == 0 and parse("250") == 250
    for bad in ("-1", "fast", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)
    serve = dict(
        (a.dest, a)
        for a in build_parser()._subparsers._group_actions[0].choices["serve"]._actions  # type: ignore[union-attr]
    )["rate_limit"]
    assert serve.default == "auto" and serve.type is parse
