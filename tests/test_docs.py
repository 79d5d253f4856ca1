"""The docs match the code: the generated reference docs (docs/rest.md, events.md,
configuration.md, the transition tables in docs/scheduling.md) are current, every
path the docs name exists, and the imports between packages follow the table in
docs/architecture.md."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HINT = "run .venv/bin/python scripts/gen_docs.py"


def test_generated_docs_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{HINT}\n{proc.stdout}{proc.stderr}"


def test_every_route_is_documented() -> None:
    import hivehub.server.observability  # noqa: F401  (registers its routes)
    from hivehub.server.rest import ROUTES

    text = (DOCS / "rest.md").read_text(encoding="utf-8")
    missing = [f"{r.method} {r.path}" for r in ROUTES if f"### {r.method} {r.path}\n" not in text]
    assert not missing, f"routes missing from docs/rest.md: {missing}; {HINT}"


def test_every_event_type_is_documented() -> None:
    from hivehub.core.events import DATA_TYPES

    text = (DOCS / "events.md").read_text(encoding="utf-8")
    missing = [name for name in DATA_TYPES if f"### `{name}`\n" not in text]
    assert not missing, f"event types missing from docs/events.md: {missing}; {HINT}"


# ----------------------------------------------------------------- paths and layout named in the docs

#: a path in the repository named in prose: ``hivehub/core/state.py``, ``tests/server/``, ...
PATH_RE = re.compile(r"(?<![\w./-])((?:hivehub|tests|scripts|bench|clients)/[\w./-]*[\w/])")
#: paths the docs name that are made by running something (git-ignored)
GENERATED = {"bench/results/latest.json"}


def doc_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def test_every_path_named_in_the_docs_exists() -> None:
    missing = []
    for doc in doc_files():
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for m in PATH_RE.finditer(line):
                path = m.group(1).split("::")[0]
                if line[m.end() : m.end() + 1] in ("*", "<"):  # a pattern (test_<module>.py): its folder
                    path = path.rsplit("/", 1)[0]
                if path in GENERATED:
                    continue
                if not (ROOT / path).exists():
                    missing.append(f"{doc.relative_to(ROOT)}:{n}: {path}")
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def hivehub_imports(path: Path, package: str) -> set[str]:
    """The top-level ``hivehub`` packages (and modules) that ``path`` imports, every
    import counted: those inside functions and under ``TYPE_CHECKING`` too."""
    rel = path.relative_to(ROOT).with_suffix("").parts  # ("hivehub", "server", "app")
    here = list(rel[:-1])  # the package a relative import starts from (for __init__ too)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                names = [".".join([*base, node.module] if node.module else base)]
                if not node.module:
                    names = [".".join([*base, a.name]) for a in node.names]
            elif node.module:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "hivehub" and len(parts) > 1 and parts[1] != package:
                out.add(parts[1])
    return out


def allowed_imports() -> dict[str, set[str]]:
    """The "may import" column of the package table in docs/architecture.md."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Packages and what each may import", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`\w+`", cells[0]):
            out[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[1]))
            if cells[1] == "everything":
                out[cells[0].strip("`")] = {"*"}
    return out


def test_package_imports_follow_architecture() -> None:
    allowed = allowed_imports()
    pkg_root = ROOT / "hivehub"
    packages = sorted(p.name for p in pkg_root.iterdir() if (p / "__init__.py").exists())
    assert set(allowed) >= set(packages) - {"dashboard"}, (
        f"packages missing from the table in docs/architecture.md: {sorted(set(packages) - set(allowed))}"
    )
    bad = []
    for package in packages:
        rules = allowed.get(package, set())
        for path in sorted((pkg_root / package).rglob("*.py")):
            # the root package (the version) and top-level helper modules are not packages
            used = {p for p in hivehub_imports(path, package) if (pkg_root / p / "__init__.py").exists()}
            for target in sorted(used - rules):
                if "*" not in rules:
                    bad.append(f"{path.relative_to(ROOT)} imports hivehub.{target}")
    assert not bad, "imports that docs/architecture.md does not allow:\n" + "\n".join(bad)
