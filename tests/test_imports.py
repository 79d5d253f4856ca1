"""No import circle anywhere in the package: every module can be read (and
imported) knowing only the modules below it. Checked on the source, counting
every import (those under ``TYPE_CHECKING`` and inside functions included), so a
circle that Python happens to tolerate at run time is still caught.

The layering each package keeps is drawn in docs/architecture.md; this test is
the part of it a machine can check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hivehub

ROOT = Path(hivehub.__file__).parent


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (at ``path``) imports.

    ``from pkg import x`` depends on ``pkg.x`` when that is a module, else on
    ``pkg`` (``x`` is one of its names)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return (out & known) - {name}


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    mods = modules(root)
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


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


def test_the_package_has_no_import_circle() -> None:
    assert find_cycle(graph()) is None


def test_the_cycle_check_is_not_vacuous() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .low import X\n")
    (pkg / "sub" / "low.py").write_text("X = 1\n")
    (pkg / "top.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .sub import low\n"
        "def f():\n    import pkg.mid\n"
        "from pkg.sub import X\n"
    )
    (pkg / "mid.py").write_text("from . import top\n")
    g = graph(pkg)
    assert g["pkg.top"] == {"pkg.sub.low", "pkg.mid", "pkg.sub"}
    assert g["pkg.sub"] == {"pkg.sub.low"}
    assert find_cycle(g) == ["pkg.mid", "pkg.top", "pkg.mid"]


def test_it_reads_the_real_package() -> None:
    g = graph()
    # a relative import, an absolute one, a package's __init__
    assert "hivehub.core.projection" in g["hivehub.core.hive"]
    assert "hivehub.server.hub" in g["hivehub.server.app"]
    assert "hivehub.store" in g["hivehub.server.app"]
