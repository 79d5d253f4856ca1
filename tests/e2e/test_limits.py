"""Bounded memory, CPU and connections against any single client (issue 11, items 6-10).

Every test runs the real hub as a subprocess and a hostile client against it over
real sockets; memory and CPU are the hub process's own (psutil). Waits are bounded
loops on a specific condition, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.hubproc import Hub, wait_for

MiB = 1 << 20


@contextlib.contextmanager
def fd_limit(n: int) -> Iterator[None]:
    """Processes started inside inherit a soft RLIMIT_NOFILE of ``n``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _closed_by_peer(s: socket.socket) -> bool:
    """True once the hub closed ``s`` (EOF or reset); False while it is open."""
    s.setblocking(False)
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _health(hub: Hub, timeout: float = 3.0) -> int:
    import urllib.request

    with urllib.request.urlopen(hub.url + "/health", timeout=timeout) as r:
        return int(r.status)


# ----------------------------------------------------------------- item 10: idle and slowloris


def test_slowloris_is_closed_after_the_header_deadline_and_cannot_lock_out_other_clients(
    tmp_path: Any,
) -> None:
    hub = Hub(tmp_path / "hive.db", "--header-timeout", "6", "--max-connections-per-address", "100")
    with fd_limit(512):
        hub.start()
    socks: list[socket.socket] = []
    try:
        # 900 connections from one address (127.0.0.2), each sending a request line
        # and part of a header, never the blank line: more than the hub has descriptors
        for _ in range(900):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", hub.port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        # another client still gets in while they are all open
        assert _health(hub) == 200
        # the ones over the per-address cap were refused with 503 and closed
        refused, live = 0, []
        for s in socks:
            s.setblocking(False)
            try:
                data = s.recv(200)
            except BlockingIOError:
                live.append(s)
                continue
            if data:
                assert data.startswith(b"HTTP/1.1 503") and b"too_many_connections" in data, data
                refused += 1
            # (b"": one of the first ones, already past its header deadline)
        assert refused >= 500 and len(live) <= 100, (refused, len(live))
        # the trickling ones are cut at the header deadline, although they keep sending
        t0 = time.monotonic()

        def all_closed() -> bool:
            for s in live:
                with contextlib.suppress(OSError):
                    s.send(b"a")
            return all(_closed_by_peer(s) for s in live)

        wait_for(all_closed, timeout=15, interval=0.2, what="slowloris connections closed")
        assert time.monotonic() - t0 < 8
        assert _health(hub) == 200
    finally:
        for s in socks:
            s.close()
        hub.stop()


def test_a_connection_that_sends_nothing_is_closed_after_the_header_deadline(tmp_path: Any) -> None:
    hub = Hub(tmp_path / "hive.db", "--header-timeout", "1", "--keepalive-timeout", "1").start()
    try:
        idle = socket.create_connection(("127.0.0.1", hub.port))
        keep = socket.create_connection(("127.0.0.1", hub.port))
        keep.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        keep.settimeout(5)
        assert keep.recv(100).startswith(b"HTTP/1.1 200")
        # neither the silent one nor the idle keep-alive one stays open
        wait_for(
            lambda: _closed_by_peer(idle) and _closed_by_peer(keep),
            timeout=10,
            interval=0.1,
            what="idle connections closed",
        )
        idle.close()
        keep.close()
    finally:
        hub.stop()
