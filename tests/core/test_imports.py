"""The core's import graph has no circle, and the composed ``Hive`` stands on
its parts. The graph and the cycle check are the package-wide ones
(``tests/test_imports.py``: every import, those under ``TYPE_CHECKING`` and
inside functions included), restricted here to ``hivehub.core``."""

from __future__ import annotations

from pathlib import Path

import hivehub.core
from tests.test_imports import find_cycle
from tests.test_imports import graph as package_graph

CORE = Path(hivehub.core.__file__).parent
PACKAGE = "hivehub.core"


def graph() -> dict[str, set[str]]:
    """The core's modules (by name, without the package) and the core modules each imports."""
    prefix = PACKAGE + "."

    def short(m: str) -> str:
        return m.removeprefix(prefix)

    g = package_graph()
    return {
        short(m): {short(d) for d in deps if d.startswith(prefix)}
        for m, deps in g.items()
        if m.startswith(prefix)
    }


def test_the_core_has_no_import_circle() -> None:
    assert find_cycle(graph()) is None


def test_the_cycle_check_is_not_vacuous() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # it sees the core's real edges (a relative import, a package import)
    g = graph()
    assert {"projection", "context"} <= g["hive"] and "events" in g["projection"]


def test_no_core_module_is_over_600_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in CORE.glob("*.py")}
    assert max(sizes.values()) < 600, sizes


def test_the_composed_hive_stands_on_the_parts_not_the_other_way() -> None:
    g = graph()
    assert not any("hive" in deps for m, deps in g.items() if m != "hive")
