"""Start the real ``hive serve`` as a subprocess on a free port, and stop it.

Tests wait for specific events or states (``wait_for``), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import TIME_SCALE

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout * TIME_SCALE
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


class Hub:
    """A running ``hive serve`` process."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        *extra: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        host: str | None = "127.0.0.1",
    ) -> None:
        self.db = str(db)
        #: None: no ``--host`` flag, the hub's default bind
        self.host = host
        self.port = port or free_port()
        self.extra = list(extra)
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        if log_dir is not None:
            self.log_path = log_dir / f"hub.{self.port}.log"
        else:
            self.log_path = Path(self.db).with_suffix(f".{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Hub:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        args = [sys.executable, "-m", "hivehub", "serve", "--port", str(self.port), "--db", self.db]
        if self.host is not None:
            args += ["--host", self.host]
        if "--demo" in self.extra:
            extra = [x for x in self.extra if x != "--demo"]
        else:
            extra = ["--no-demo", *self.extra]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args + extra, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(self._healthy, timeout, what=f"hub on port {self.port} to answer /health")
        except BaseException:
            self.stop()  # do not leave a half-started hub (or its log file) behind
            raise
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"hub exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return r.status in (200, 503)
        except urllib.error.HTTPError as e:
            return e.code == 503
        except OSError:
            return False

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not exit. Always closes the log file."""
        try:
            if self.proc is None:
                return None
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            return self.proc.returncode
        finally:
            log = getattr(self, "_log", None)
            if log is not None and not log.closed:
                log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    # --- tiny HTTP helpers (stdlib only, so tests exercise a foreign client) ---

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
                return r.status, (json.loads(payload) if payload else None)
        except urllib.error.HTTPError as e:
            # (closed here: an error response holds its socket until collected, which
            # pytest reports as an unraisable ResourceWarning in whichever test runs then)
            with e:
                payload = e.read()
            try:
                return e.code, json.loads(payload) if payload else None
            except ValueError:
                return e.code, payload.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (status, body)
        return body

    def post(self, path: str, body: Any = None, expect: int | None = None) -> Any:
        status, out = self.request("POST", path, body if body is not None else {})
        if expect is not None:
            assert status == expect, (status, out)
        return out

    def events(self, since: int = 0, types: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            q = f"/api/events?since={since}&limit=10000" + (f"&types={types}" if types else "")
            page = self.get(q)
            out += page["events"]
            if page["next_since"] == since:
                return out
            since = page["next_since"]
