"""``hive serve --prices FILE`` (and ``HIVE_PRICES``): the price table read from
TOML or JSON into ``HiveConfig.prices``; a file that cannot be used stops the hub
with exit 2 and a message naming the file, the line and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivehub.cli import build_parser, main
from hivehub.cli.serve import build_config
from hivehub.core.model import ModelPrice
from hivehub.server.config import PricesError, load_prices

TOML = """\
[models."gpt-4o-mini"]
input_per_million = 0.15
output_per_million = 0.6

[models."*"]
input_per_million = 1
output_per_million = 2
"""
JSON = '{"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}'


def test_a_toml_table_is_read(tmp_path: Path) -> None:
    f = tmp_path / "prices.toml"
    f.write_text(TOML)
    assert load_prices(str(f)) == {
        "gpt-4o-mini": ModelPrice(0.15, 0.6),
        "*": ModelPrice(1.0, 2.0),
    }


def test_a_json_table_reaches_the_hive_config(tmp_path: Path) -> None:
    f = tmp_path / "prices.json"
    f.write_text(JSON)
    cfg = build_config(build_parser().parse_args(["serve", "--prices", str(f)]))
    assert cfg.hive.prices == {"gpt-4o-mini": ModelPrice(0.15, 0.6)}


def test_hive_prices_in_the_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "p.json"
    f.write_text(JSON)
    monkeypatch.setenv("HIVE_PRICES", str(f))
    cfg = build_config(build_parser().parse_args(["serve"]))
    assert "gpt-4o-mini" in cfg.hive.prices


def test_no_prices_is_an_empty_table() -> None:
    assert build_config(build_parser().parse_args(["serve"])).hive.prices == {}


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("p.toml", '[models."m"]\ninput_per_million = = 1\n', ["p.toml", "not valid TOML", "line 2"]),
        (
            "p.json",
            '{"models": {\n  "m": {"input_per_million": 1,}\n}}',
            ["p.json", "line 2", "not valid JSON"],
        ),
        (
            "p.json",
            '{"models": {\n  "m": {"input_per_million": -1, "output_per_million": 1}\n}}',
            ["p.json: line 2", "'m'", "input_per_million", ">= 0"],
        ),
        ("p.json", '{"models": {"m": {"input_per_million": 1}}}', ["output_per_million must be a number"]),
        (
            "p.json",
            '{"models": {"m": {"input_per_million": "1", "output_per_million": 1}}}',
            ["must be a number"],
        ),
        ("p.json", '{"m": {"input_per_million": 1, "output_per_million": 1}}', ['table "models"']),
        (
            "p.json",
            '{"models": {"m": {"input_per_million": 1, "output_per_million": 1, "cached": 1}}}',
            ["unknown field 'cached'"],
        ),
    ],
)
def test_a_bad_table_exits_2_naming_the_file_and_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, expect: list[str]
) -> None:
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(PricesError):
        load_prices(str(f))
    assert main(["serve", "--db", "memory", "--prices", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --prices: ")
    for part in expect:
        assert part in err, err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["serve", "--db", "memory", "--prices", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
