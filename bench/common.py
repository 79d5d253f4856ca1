"""Shared helpers for the benchmarks: machine facts, hub subprocesses, histograms.

Every process a bench starts is started here (``Proc``) and stopped by the bench
that started it, by its own pid; every wait is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# ------------------------------------------------------------------ misc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(want: int = 1_000_000) -> int:
    """Raise this process's open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _preexec_nofile() -> None:  # runs in the child between fork and exec
    raise_nofile()


def wait_until(
    pred: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}" + (f" ({last})" if last else ""))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return float(sorted_values[k])


class Histogram:
    """Latency histogram (seconds in, milliseconds out) with log-spaced bins:
    mergeable across processes as plain lists, ~1% resolution from 1 us to 100 s."""

    BINS_PER_DECADE = 100
    LO = 1e-6

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.neg = 0  # receive before send: clock skew, counted apart

    def add(self, seconds: float) -> None:
        self.n += 1
        if seconds <= 0:
            self.neg += 1
            seconds = self.LO
        i = int(math.log10(max(seconds, self.LO) / self.LO) * self.BINS_PER_DECADE)
        self.counts[i] = self.counts.get(i, 0) + 1

    def merge(self, other: dict[str, Any]) -> None:
        for k, v in other["counts"].items():
            self.counts[int(k)] = self.counts.get(int(k), 0) + int(v)
        self.n += int(other["n"])
        self.neg += int(other.get("neg", 0))

    def to_json(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "n": self.n, "neg": self.neg}

    def quantile_ms(self, q: float) -> float | None:
        if not self.n:
            return None
        target = max(1, math.ceil(q / 100 * self.n))
        acc = 0
        for i in sorted(self.counts):
            acc += self.counts[i]
            if acc >= target:
                upper = self.LO * 10 ** ((i + 1) / self.BINS_PER_DECADE)
                return round(upper * 1000, 3)
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.n,
            "p50_ms": self.quantile_ms(50),
            "p90_ms": self.quantile_ms(90),
            "p99_ms": self.quantile_ms(99),
            "p999_ms": self.quantile_ms(99.9),
            "max_ms": self.quantile_ms(100),
        }


def latency_summary(values_s: list[float]) -> dict[str, Any]:
    v = sorted(values_s)
    out: dict[str, Any] = {"samples": len(v)}
    for name, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("max_ms", 100)):
        p = percentile(v, q)
        out[name] = round(p * 1000, 3) if p is not None else None
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 3)


# ------------------------------------------------------------------ processes


class Proc:
    """A child process with its output in a log file; stopped by its own pid."""

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        stdin: int | None = subprocess.DEVNULL,
        stdout_pipe: bool = False,
    ) -> None:
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=stdin,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            preexec_fn=_preexec_nofile,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(Exception):
                    f.close()
        self._log.close()
        return self.proc.returncode


class Hub:
    """``python -m hivehub serve`` on a free loopback port (no demo). ``prefix``: a
    command the hub runs under (``("taskset", "-c", "0")`` pins it to core 0)."""

    def __init__(self, db: str, workdir: Path, *extra: str, prefix: Sequence[str] = ()) -> None:
        self.db = db
        self.prefix = list(prefix)
        self.port = free_port()
        self.workdir = workdir
        self.extra = list(extra)
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> Hub:
        args = [
            *self.prefix,
            PY,
            "-m",
            "hivehub",
            "serve",
            "--no-demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            self.db,
            "--log-level",
            "WARNING",
            *self.extra,
        ]
        # HIVEBENCH_HUB_SRC: run the hub from another source tree (a patched copy
        # outside the repo, to measure a proposed change); default: this checkout
        src = os.environ.get("HIVEBENCH_HUB_SRC")
        env = {"PYTHONPATH": src} if src else None
        self.proc = Proc(args, self.workdir / f"hub-{self.port}.log", env=env, cwd=Path(src) if src else ROOT)
        wait_until(self._healthy, timeout, what=f"hub on port {self.port}")
        self.profiler: Proc | None = None
        prof_dir = os.environ.get("HIVEBENCH_PYSPY_DIR")
        if prof_dir and shutil.which(
            "py-spy", path=str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", "")
        ):
            # profile the hub for its whole life (idle samples excluded): collapsed stacks
            spy = shutil.which("py-spy", path=str(Path(PY).parent) + os.pathsep + os.environ.get("PATH", ""))
            out = Path(prof_dir) / f"hub-{os.environ.get('HIVEBENCH_PROFILE_TAG', 'run')}-{self.port}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            self.profiler = Proc(
                [
                    str(spy),
                    "record",
                    "-p",
                    str(self.pid),
                    "-o",
                    str(out),
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "--nonblocking",
                ],
                self.workdir / f"pyspy-{self.port}.log",
            )
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if not self.proc.alive():
            raise RuntimeError(f"hub exited with {self.proc.proc.returncode}: {self.proc.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return r.status in (200, 503)
        except urllib.error.HTTPError as e:
            return e.code == 503
        except OSError:
            return False

    def get(self, path: str, timeout: float = 30) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Any, timeout: float = 60) -> Any:
        req = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")

    def stop(self) -> None:
        prof = getattr(self, "profiler", None)
        if prof is not None:
            prof.stop(timeout=30, sig=signal.SIGINT)  # py-spy writes its output on SIGINT
            self.profiler = None
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


# hub flags every bench uses: no rate limit (the benches are one client sending a lot),
# no periodic status/resource events competing with the measured stream
HUB_BENCH_FLAGS = ("--rate-limit", "0", "--status-interval", "3600", "--resource-interval", "3600")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"hivebench-{prefix}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return None


def _cmd_version(args: list[str]) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def machine_info() -> dict[str, Any]:
    import sqlite3

    import psutil

    git = _cmd_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = None
    try:
        st = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "hivehub"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "redis_server": _cmd_version(["redis-server", "--version"]),
        "git_commit": git,
        "hivehub_tree_modified": dirty,
        "versions": {
            m: _version(m)
            for m in (
                "hivehub",
                "aiohttp",
                "msgspec",
                "uvloop",
                "psutil",
                "celery",
                "kombu",
                "redis",
                "dask",
                "distributed",
            )
        },
    }


def agents_online_cpu(hub: Any, procs: Sequence[Any], count: int) -> Callable[[], dict[str, float]]:
    """Wait until ``count`` agents are connected to ``hub``, then return a reader of the
    CPU seconds used so far by the hub, the agent processes and this bench client."""
    import psutil

    def online() -> bool:
        with urllib.request.urlopen(hub.url + "/api/hive/status", timeout=2) as r:
            return int(json.loads(r.read())["connected_agents"]) >= count

    wait_until(online, 60, what=f"{count} agents to register")
    watched = {
        "hub": [psutil.Process(hub.pid)],
        "agents": [psutil.Process(p.pid) for p in procs],
        "bench_client": [psutil.Process()],
    }

    def cpu() -> dict[str, float]:
        return {k: sum(p.cpu_times().user + p.cpu_times().system for p in ps) for k, ps in watched.items()}

    return cpu
