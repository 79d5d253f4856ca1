"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile.

``python -m bench.profile_report FILE [--top N] [--filter SUBSTR]``

Prints the functions with the most *self* samples and the most *inclusive*
samples (each function counted once per stack), as shares of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")


def _frame(f: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"; line numbers vary within a function
    m = re.match(r"^(.*) \((.*?):\d+\)$", f.strip())
    if not m:
        return f.strip()
    name, path = m.groups()
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{name} ({short})"


def summarise(path: Path, top: int = 25, substr: str | None = None) -> str:
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        stack, n = m.group(1), int(m.group(2))
        frames = [
            _frame(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        if substr and not any(substr in f for f in frames):
            continue
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    out = [f"{path.name}: {total} samples"]
    out.append("-- self --")
    for f, n in self_c.most_common(top):
        out.append(f"{100 * n / total:6.1f}%  {f}")
    out.append("-- inclusive --")
    for f, n in incl.most_common(top):
        out.append(f"{100 * n / total:6.1f}%  {f}")
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("file", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--filter")
    a = ap.parse_args()
    print(summarise(a.file, a.top, a.filter))
