"""The core's import graph has no circle: every module can be read (and imported)
knowing only the modules below it. Checked on the source (every import, those
under ``TYPE_CHECKING`` and inside functions included), so a circle that Python
happens to tolerate at run time is still caught."""

from __future__ import annotations

import ast
from pathlib import Path

import hivehub.core

CORE = Path(hivehub.core.__file__).parent
PACKAGE = "hivehub.core"


def core_imports(path: Path) -> set[str]:
    """The core modules that ``path`` imports (by module name, without the package)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x / from .x import y
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
                out.add(node.module.removeprefix(PACKAGE + ".").split(".")[0])
            elif node.level == 0 and node.module == PACKAGE:
                out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    out.add(alias.name.removeprefix(PACKAGE + ".").split(".")[0])
    return out


def graph() -> dict[str, set[str]]:
    modules = {p.stem for p in CORE.glob("*.py") if p.stem != "__init__"}
    return {m: core_imports(CORE / f"{m}.py") & modules for m in modules}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``g`` as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


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
