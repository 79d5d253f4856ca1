"""No module of the package grows past a size a reader can hold in mind (issue 12:
the largest module under about 600 lines; a module past it is split by
responsibility, see docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import hivehub

MAX_LINES = 650
PACKAGE = Path(hivehub.__file__).resolve().parent


def test_every_module_of_the_package_is_under_the_size_limit() -> None:
    sizes = {
        p.relative_to(PACKAGE.parent).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 50  # the walk found the package
    too_big = {path: n for path, n in sizes.items() if n >= MAX_LINES}
    assert not too_big, f"modules of {MAX_LINES} lines or more (split them by responsibility): {too_big}"
