"""The pieces of the LLM end-to-end tests: a byte-counting TCP proxy in front of the
real llama.cpp server (it measures at the model side: what was forwarded, when the
agent closed the stream, and it can answer one request with a provider 429), a /ws
event tap, and real ``hive agent --llm-base-url`` processes.

The proxy forwards bytes unchanged; nothing of the model is mocked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websocket

from tests.hubproc import ROOT, Hub, wait_for

MODEL = "smollm2"
#: USD per million tokens for the test's price file
PRICE_IN, PRICE_OUT = 0.5, 2.0


def write_prices(path: Path) -> Path:
    path.write_text(
        json.dumps({"models": {MODEL: {"input_per_million": PRICE_IN, "output_per_million": PRICE_OUT}}})
    )
    return path


@dataclass
class Stream:
    """One client connection through the proxy (keep-alive: possibly several requests)."""

    opened: float
    #: (monotonic time, bytes) forwarded from the model server to the client
    forwarded: list[tuple[float, bytes]] = field(default_factory=list)
    #: when the client (the agent) closed its side
    client_closed: float | None = None
    #: bytes the model server still sent after the client closed (never forwarded)
    dropped_after_close: int = 0

    def sse_lines(self) -> list[dict[str, Any]]:
        raw = b"".join(b for _, b in self.forwarded).decode(errors="replace")
        out = []
        for line in raw.splitlines():
            i = line.find("data: {")
            if i >= 0:
                try:
                    out.append(json.loads(line[i + 6 :]))
                except ValueError:
                    pass  # a line split by HTTP chunking: not counted
        return out

    def content_chunks(self) -> list[str]:
        texts = []
        for d in self.sse_lines():
            for c in d.get("choices") or ():
                text = (c.get("delta") or {}).get("content")
                if text:
                    texts.append(text)
        return texts


class ModelProxy:
    """A TCP proxy (its own thread and event loop) in front of the model server."""

    def __init__(self, upstream_base: str, retry_after: float = 2.0) -> None:
        u = urlsplit(upstream_base)
        self.up_host, self.up_port = u.hostname or "127.0.0.1", int(u.port or 80)
        self.retry_after = retry_after
        self.streams: list[Stream] = []
        #: answer this many next connections' first request with 429 + Retry-After
        self.reject_next = 0
        self.rejected = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _reject(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode().split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        await reader.readexactly(length)
        body = json.dumps({"error": {"message": "rate limited (simulated provider)"}}).encode()
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            + f"Retry-After: {self.retry_after:g}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            reject = self.reject_next > 0
            if reject:
                self.reject_next -= 1
                self.rejected += 1
        if reject:
            await self._reject(reader, writer)
            return
        s = Stream(time.monotonic())
        with self._lock:
            self.streams.append(s)
        up_r, up_w = await asyncio.open_connection(self.up_host, self.up_port)

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                up_w.write(data)
                await up_w.drain()
            s.client_closed = time.monotonic()
            up_w.close()

        async def server_to_client() -> None:
            while data := await up_r.read(65536):
                if s.client_closed is not None:
                    s.dropped_after_close += len(data)
                    continue
                s.forwarded.append((time.monotonic(), data))
                writer.write(data)
                try:
                    await writer.drain()
                except ConnectionError:
                    break
            writer.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (ConnectionError, OSError):
            pass

    def snapshot(self) -> list[Stream]:
        with self._lock:
            return list(self.streams)


class EventTap:
    """Every message of the hub's /ws, with the monotonic time it arrived."""

    def __init__(self, hub: Hub) -> None:
        self.ws = websocket.create_connection(f"{hub.ws_url}/ws", timeout=30)
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                raw = self.ws.recv()
            except Exception:  # noqa: BLE001 - the socket closed: the tap ends
                return
            if raw:
                self.messages.append((time.monotonic(), json.loads(raw)))

    def of(self, type_: str, task_id: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        return [
            (t, m)
            for t, m in list(self.messages)
            if m["type"] == type_ and (task_id is None or m["data"].get("task_id") == task_id)
        ]

    def wait(self, type_: str, task_id: str | None = None, timeout: float = 30.0) -> tuple[float, dict]:
        got = wait_for(lambda: self.of(type_, task_id), timeout, what=f"{type_} for {task_id}")
        return got[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        self._stop = True
        self.ws.close()
        self._thread.join(5)


class LLMAgentProc:
    """A real ``hive agent --llm-base-url`` process."""

    def __init__(
        self, hub: Hub, name: str, base_url: str, log_dir: Path, caps: list[str], *extra: str
    ) -> None:
        args = [sys.executable, "-m", "hivehub", "agent", "--url", hub.ws_url, "--name", name]
        args += ["--llm-base-url", base_url, "--llm-model", MODEL, "--no-state", *extra]
        for c in caps:
            args += ["--capability", c]
        self.log_path = log_dir / f"agent-{name}.log"
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.name = name

    def wait_online(self, hub: Hub, timeout: float = 20.0) -> str:
        def online() -> str | None:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text()[-2000:])
            for a in hub.get("/api/agents?limit=1000")["agents"]:
                if a["name"] == self.name and a["status"] in ("idle", "active"):
                    return str(a["id"])
            return None

        return wait_for(online, timeout, what=f"agent {self.name} online")  # type: ignore[no-any-return]

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
            self._log.close()
