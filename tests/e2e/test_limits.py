"""Bounded memory, CPU and connections against any single client (issue 11, items 6-10).

Every test runs the real hub as a subprocess and a hostile client against it over
real sockets; memory and CPU are the hub process's own (psutil). Waits are bounded
loops on a specific condition, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time
from collections.abc import Iterator
from typing import Any

import psutil
import websocket

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


# ----------------------------------------------------------------- helpers for /ws clients that never read


def _rss(hub: Hub) -> int:
    assert hub.proc is not None
    return int(psutil.Process(hub.proc.pid).memory_info().rss)


def _cpu(hub: Hub) -> float:
    assert hub.proc is not None
    t = psutil.Process(hub.proc.pid).cpu_times()
    return float(t.user + t.system)


def _non_reader(url: str) -> websocket.WebSocket:
    """A WebSocket (no compression) with a tiny receive window, that will not read."""
    return websocket.create_connection(
        url, timeout=5, sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)], skip_utf8_validation=True
    )


def _drain_until_closed(ws: websocket.WebSocket, timeout: float = 30.0) -> int | None:
    """Read (now) until the hub closes: the close code, or None if it just dropped us."""
    deadline = time.monotonic() + timeout
    raw = ws.sock  # (websocket-client forgets it on some errors without closing it)
    ws.settimeout(5)
    try:
        while time.monotonic() < deadline:
            try:
                op, frame = ws.recv_data_frame(True)
            except (websocket.WebSocketConnectionClosedException, OSError):
                return None
            if op == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
        raise AssertionError("the hub never closed the connection")
    finally:
        if raw is not None:
            raw.close()


def _subscribers(hub: Hub) -> int:
    return int(hub.get("/api/hive/status")["subscribers"])


def _is_cut(ws: websocket.WebSocket) -> None:
    """The hub cut the client off: 1013 if the close frame reached us, else a drop."""
    code = _drain_until_closed(ws)
    assert code in (1013, None), code


# ----------------------------------------------------------------- item 6: requests without reading replies


def test_ws_client_sending_requests_without_reading_replies_is_cut_off_and_hub_memory_stays_bounded(
    tmp_path: Any,
) -> None:
    hub = Hub(tmp_path / "hive.db", "--send-timeout", "2", "--rate-limit", "0").start()
    try:
        # some state, so that each get_status reply is a few KB
        hub.post(
            "/api/tasks/batch",
            {"tasks": [{"type": f"t{i}", "description": "d"} for i in range(200)]},
            expect=201,
        )
        base = _rss(hub)
        ws = _non_reader(hub.ws_url + "/ws")
        ws.settimeout(3)
        req = json.dumps({"type": "get_status", "data": {}, "message_id": "m"})
        peak, sent, t0 = base, 0, time.monotonic()
        # flood for at most 10 s; with the fix the hub stops reading and the send blocks
        while time.monotonic() - t0 < 10:
            try:
                for _ in range(200):
                    ws.send(req)
                sent += 200
            except (websocket.WebSocketTimeoutException, TimeoutError):
                break  # the hub stopped reading our requests
            except (websocket.WebSocketConnectionClosedException, OSError):
                break  # the hub cut us off
            peak = max(peak, _rss(hub))
        peak = max(peak, _rss(hub))
        _is_cut(ws)
        ws.close()
        assert peak - base < 100 * MiB, f"hub grew {(peak - base) / MiB:.0f} MiB after {sent} requests"
        assert _health(hub) == 200
    finally:
        hub.stop()


# ----------------------------------------------------------------- item 7: snapshots nobody reads


def test_non_reading_snapshot_clients_share_one_copy_of_the_state(tmp_path: Any) -> None:
    hub = Hub(
        tmp_path / "hive.db", "--send-timeout", "3", "--max-body", str(2 * MiB), "--max-frame", str(2 * MiB)
    ).start()
    socks: list[websocket.WebSocket] = []
    try:
        import os

        for _ in range(60):  # 60 pending tasks of ~1 MB incompressible input: a ~60 MB state
            hub.post(
                "/api/tasks",
                {"type": "big", "description": "d", "input": {"blob": os.urandom(384 * 1024).hex()}},
                expect=201,
            )
        base = _rss(hub)
        peak = base
        for _ in range(15):
            socks.append(_non_reader(hub.ws_url + "/ws?snapshot=1"))
            peak = max(peak, _rss(hub))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:  # sample while they are all connected
            peak = max(peak, _rss(hub))
        # one shared encoding (~60 MB) plus a fragment per socket: far less than a copy each
        assert peak - base < 250 * MiB, f"hub grew {(peak - base) / MiB:.0f} MiB for 15 snapshot sockets"
        # backed up past --send-timeout: all cut off (they leave the fan-out at once)
        wait_for(lambda: _subscribers(hub) == 0, timeout=20, interval=0.2, what="snapshot clients cut off")
        for ws in socks:
            _is_cut(ws)
        assert _health(hub) == 200
    finally:
        for ws in socks:
            ws.close()
        hub.stop()


# ----------------------------------------------------------------- item 9: replays nobody reads


def test_non_reading_replay_clients_are_cut_off_and_the_hub_goes_back_to_idle(tmp_path: Any) -> None:
    hub = Hub(tmp_path / "hive.db", "--send-timeout", "2").start()
    socks: list[websocket.WebSocket] = []
    try:
        batch = {"tasks": [{"type": "t", "description": "x" * 2000} for _ in range(400)]}
        for _ in range(25):  # ~10,000 task_created events of ~2.5 KB: a ~25 MB log
            hub.post("/api/tasks/batch", batch, expect=201)
        for _ in range(4):
            socks.append(_non_reader(hub.ws_url + "/ws?since=0"))
        wait_for(lambda: _subscribers(hub) == 0, timeout=20, interval=0.2, what="replay clients cut off")
        for ws in socks:
            _is_cut(ws)
        # cut off and gone: the hub is idle again (under 10 % of a core over 2 s)
        c0, t0 = _cpu(hub), time.monotonic()
        while time.monotonic() - t0 < 2:
            assert hub.proc is not None and hub.proc.poll() is None
            time.sleep(0.1)  # the measurement interval itself, not a wait for an event
        used = (_cpu(hub) - c0) / (time.monotonic() - t0)
        assert used < 0.10, f"hub used {used:.0%} of a core after the replay clients were cut off"
    finally:
        for ws in socks:
            ws.close()
        hub.stop()


# ----------------------------------------------------------------- item 8: an agent that does not read its replies


def test_agent_not_reading_its_error_replies_is_cut_off_and_hub_memory_stays_bounded(tmp_path: Any) -> None:
    hub = Hub(tmp_path / "hive.db", "--send-timeout", "2").start()
    try:
        ws = _non_reader(hub.ws_url + "/agents/ws")
        ws.send(
            json.dumps(
                {
                    "type": "register",
                    "data": {"name": "mute", "capabilities": [{"name": "c", "proficiency": 0.5}]},
                }
            )
        )
        base = _rss(hub)
        ws.settimeout(3)
        # each frame answers with an error that echoes a long message_id
        bad = json.dumps({"type": "no_such_message", "data": {}, "message_id": "m" * 2000})
        peak, sent, t0 = base, 0, time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                for _ in range(100):
                    ws.send(bad)
                sent += 100
            except (websocket.WebSocketTimeoutException, TimeoutError):
                break  # the hub stopped reading our frames
            except (websocket.WebSocketConnectionClosedException, OSError):
                break  # the hub cut us off
            peak = max(peak, _rss(hub))
        peak = max(peak, _rss(hub))
        assert peak - base < 100 * MiB, f"hub grew {(peak - base) / MiB:.0f} MiB after {sent} bad frames"
        code = _drain_until_closed(ws)
        assert code in (4013, None), code
        ws.close()
        wait_for(
            lambda: hub.get("/api/hive/status")["connected_agents"] == 0, timeout=15, what="the agent cut off"
        )
    finally:
        hub.stop()


# ----------------------------------------------------------------- a WebSocket that answers no ping


def test_a_websocket_that_answers_no_ping_is_dropped_even_with_a_full_socket(tmp_path: Any) -> None:
    # a big budget, so that the only rule that can end this connection is the ping's
    hub = Hub(
        tmp_path / "hive.db",
        "--ws-heartbeat",
        "1",
        "--client-buffer",
        str(256 * MiB),
        "--send-timeout",
        "600",
    ).start()
    try:
        ws = _non_reader(hub.ws_url + "/ws")
        port = ws.sock.getsockname()[1]
        batch = {"tasks": [{"type": "t", "description": "x" * 4000} for _ in range(200)]}
        for _ in range(15):  # ~12 MB of events toward a client that reads nothing and sends no pong
            hub.post("/api/tasks/batch", batch, expect=201)
        assert hub.proc is not None
        proc = psutil.Process(hub.proc.pid)

        def gone() -> bool:
            return not any(
                c.laddr.port == hub.port and c.raddr and c.raddr.port == port for c in proc.net_connections()
            )

        # no pong within the heartbeat: closed, and aborted once the close cannot flush
        wait_for(gone, timeout=30, interval=0.2, what="the hub to drop the connection")
        ws.sock.close()
    finally:
        hub.stop()


# ----------------------------------------------------------------- a cut-off peer is really let go


def _tcp_established(s: socket.socket) -> bool:
    return bool(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == 1)  # TCP_ESTABLISHED


def test_a_cut_off_subscriber_that_never_reads_is_reset_not_left_half_open(tmp_path: Any) -> None:
    """A plain close behind a zero window never completes: the kernel keeps the unsent
    bytes and the peer never learns it was cut off. The hub resets the connection
    once the grace period is over."""
    import base64
    import os

    hub = Hub(tmp_path / "hive.db", "--send-timeout", "2").start()
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", hub.port))
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        wait_for(lambda: _subscribers(hub) == 1, what="the subscriber")
        batch = {"tasks": [{"type": "t", "description": "x" * 2000} for _ in range(400)]}
        for _ in range(30):  # ~12,000 live events of ~2.5 KB: far over its 8 MiB budget
            hub.post("/api/tasks/batch", batch, expect=201)
        wait_for(lambda: _subscribers(hub) == 0, timeout=20, interval=0.2, what="the subscriber cut off")
        wait_for(lambda: not _tcp_established(s), timeout=30, interval=0.2, what="the connection reset")
    finally:
        s.close()
        hub.stop()
