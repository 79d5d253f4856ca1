"""``hive serve --namespace NAME`` (repeatable; ``HIVE_NAMESPACES``) and ``hive token
--namespace NAME``: the names reach the config, and a namespace's token is stored in
that namespace's database only."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivehub.cli import build_parser, main
from hivehub.cli.serve import build_config
from hivehub.server.tokens import TokenStore


def test_the_flag_is_repeatable_and_adds_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVE_NAMESPACES", raising=False)
    assert build_config(build_parser().parse_args(["serve"])).namespaces == []
    args = build_parser().parse_args(["serve", "--namespace", "a", "--namespace", "b-2"])
    assert build_config(args).namespaces == ["a", "b-2"]
    monkeypatch.setenv("HIVE_NAMESPACES", " a, b ,")
    assert build_config(build_parser().parse_args(["serve"])).namespaces == ["a", "b"]
    assert build_config(build_parser().parse_args(["serve", "--namespace", "c"])).namespaces == [
        "a",
        "b",
        "c",
    ]


@pytest.mark.parametrize("names", [["UPPER"], ["a", "a"], ["-a"]])
def test_a_bad_name_is_exit_2(names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = [f"--namespace={n}" for n in names]
    assert main(["serve", "--db", str(tmp_path / "h.db"), "--no-demo", *flags]) == 2
    assert "error: --namespace:" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was opened


def test_a_namespace_token_is_stored_in_the_namespaces_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hive.db"
    assert main(["token", "create", "--role", "viewer", "--db", str(db), "--namespace", "a"]) == 0
    token = capsys.readouterr().out.strip()
    own, default = TokenStore(str(tmp_path / "hive.ns-a.db")), TokenStore(str(db))
    own.open()
    default.open()
    assert own.authenticate(token) is not None
    assert default.authenticate(token) is None
