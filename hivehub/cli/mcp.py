"""``hive mcp`` (issue 14)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Wiring point, filled in by the command's own work (issue 14)."""
