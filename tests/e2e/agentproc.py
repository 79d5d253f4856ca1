"""Run real ``hive agent`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.hubproc import ROOT


class AgentProc:
    def __init__(
        self,
        hub_url: str,
        name: str,
        caps: list[str],
        handler: str,
        *,
        log_dir: Path,
        max_concurrent: int = 1,
        env: dict[str, str] | None = None,
        pull: bool = False,
        agent_id: str | None = None,
    ) -> None:
        args = [
            sys.executable,
            "-m",
            "hivehub",
            "agent",
            "--url",
            hub_url,
            "--name",
            name,
            "--max-concurrent",
            str(max_concurrent),
            "--handler",
            handler,
            "--log-level",
            "DEBUG",
        ]
        for c in caps:
            args += ["--capability", c]
        if pull:
            args.append("--pull")
        if agent_id:
            args += ["--id", agent_id]
        self.name = name
        self.log_path = log_dir / f"agent-{name}.log"
        self._log = open(self.log_path, "ab")
        # agent ids are kept per test, never in the home directory
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "HIVE_TEST_AGENT": name,
            "HIVE_AGENT_STATE_DIR": str(log_dir / "agent-state"),
            **(env or {}),
        }
        self.proc = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            if not self._log.closed:
                self._log.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")
