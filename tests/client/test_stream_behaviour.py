"""EventStream behaviour a healthy hub does not show on cue, against a scripted
in-process fake (``fakehub.py``): stale connections, 1013 and 1008 closes,
overlapping replays, transient events and the token (the backoff policy itself:
tests/core/test_backoff_and_heartbeat.py)."""

from __future__ import annotations

import asyncio

import pytest

from hivehub.client import HiveClient, HubUnreachable, Unauthorized
from tests.client.fakehub import Conn, FakeHub, event


async def until(cond, timeout: float = 10.0) -> None:
    """Poll a condition of the client's own state (no event to await for it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_no_pong_means_reconnect_and_resume() -> None:
    async def silent(conn: Conn) -> None:
        await conn.send(event(1))
        await conn.ignore()  # pings are never answered

    async def healthy(conn: Conn) -> None:
        await conn.send(event(1))  # overlaps what was delivered: must be dropped
        await conn.send(event(2))
        await conn.serve_pings()

    async with FakeHub([silent, healthy]) as fake, HiveClient(fake.url) as c:
        s = c.stream(ping_interval=0.1, pong_timeout=0.2, heartbeat=None, backoff_base=0.01, backoff_cap=0.05)
        assert (await s.next(10))["sequence"] == 1
        assert (await s.next(10))["sequence"] == 2
        second = await fake.wait_conns(2)
        assert second.query["since"] == "1"  # resumed from the last delivered sequence
        assert any(m["type"] == "ping" for m in fake.conns[0].received)
        assert s.duplicates == 1 and s.last_sequence == 2 and s.reconnects == 1
        assert s.disconnects[0][1].startswith("no pong")
        await s.close()


async def test_1013_resumes_from_the_since_in_the_reason() -> None:
    async def cut(conn: Conn) -> None:
        await conn.send(event(3))
        await conn.close(1013, "slow consumer: resume with since=7")

    async def resumed(conn: Conn) -> None:
        await conn.send(
            {
                "type": "error",
                "data": {"code": "history_truncated", "message": "gone", "details": {}},
                "timestamp": "x",
                "message_id": None,
            }
        )
        await conn.send(event(None, "system_alert", level="critical"))  # transient: no sequence
        await conn.send(event(8))
        await conn.serve_pings()

    async with FakeHub([cut, resumed], published_sequence=2) as fake, HiveClient(fake.url) as c:
        async with c.stream(heartbeat=None, backoff_base=0.5) as s:
            assert (await s.next(10))["sequence"] == 3
            err = await s.next(10)
            assert err["type"] == "error" and err["data"]["code"] == "history_truncated"
            assert "sequence" not in (await s.next(10))
            assert (await s.next(10))["sequence"] == 8
            assert fake.conns[0].query["since"] == "2"  # "from now on" = the published sequence
            assert fake.conns[1].query["since"] == "7"
            assert s.disconnects[0] == (1013, "slow consumer: resume with since=7")
            assert s.last_sequence == 8


async def test_policy_close_is_a_typed_error_and_token_is_sent() -> None:
    async def refuse(conn: Conn) -> None:
        await conn.close(1008, "unauthorized: invalid or revoked token")

    async with FakeHub([refuse]) as fake, HiveClient(fake.url, token="s3cret") as c:
        s = c.stream(heartbeat=None, backoff_base=0.01)
        with pytest.raises(Unauthorized) as ei:
            await s.next(10)
        assert (ei.value.code, ei.value.status, ei.value.message) == (
            "unauthorized",
            401,
            "invalid or revoked token",
        )
        assert len(fake.conns) == 1  # not retried
        assert fake.conns[0].query["token"] == "s3cret"
        assert fake.rest_headers[0]["Authorization"] == "Bearer s3cret"
        await s.close()


async def test_requests_fail_fast_when_the_connection_drops() -> None:
    async def drop_on_request(conn: Conn) -> None:
        async for _ in conn.ws:
            await conn.close(1011, "boom")
            return

    async with FakeHub([drop_on_request]) as fake, HiveClient(fake.url) as c:
        s = c.stream(heartbeat=None, ping_interval=None, backoff_base=5)
        with pytest.raises(HubUnreachable):
            await s.request("get_status", timeout=10)
        await s.close()
        assert fake.conns


async def test_slow_local_consumer_is_not_a_dead_hub() -> None:
    """With the local queue full the reader stops reading; pings then go unanswered
    locally, which must not be taken for a dead connection."""

    async def flood(conn: Conn) -> None:
        for i in range(1, 6):
            await conn.send(event(i))
        await conn.serve_pings()

    async with FakeHub([flood]) as fake, HiveClient(fake.url) as c:
        async with c.stream(max_queue=1, ping_interval=0.05, pong_timeout=0.05, heartbeat=None) as s:
            await fake.wait_conns(1)
            # the reader is blocked on the full queue while we do not read; let several
            # liveness rounds come and go (each well past pong_timeout)
            await until(lambda: s.pings_skipped >= 4)
            got = [(await s.next(10))["sequence"] for _ in range(5)]
            assert got == [1, 2, 3, 4, 5]
            assert s.connects == 1 and not s.disconnects


async def test_close_survives_a_swallowed_cancellation() -> None:
    """asyncio.wait_for on Python 3.11 can swallow a cancel that races with its inner
    await finishing (CPython gh-86296). ``close()`` must still end the stream at once,
    not when the next liveness check (here 60 s away) happens to notice."""

    async with FakeHub([lambda conn: conn.serve_pings()]) as fake, HiveClient(fake.url) as c:
        s = c.stream(heartbeat=None, ping_interval=60)
        connect = s._connect

        async def connect_losing_a_cancel():  # type: ignore[no-untyped-def]
            ws = await connect()
            try:
                await asyncio.sleep(3600)  # still "finishing the handshake" when close() comes
            except asyncio.CancelledError:
                pass  # ...and the cancellation is lost
            return ws

        s._connect = connect_losing_a_cancel  # type: ignore[method-assign]
        s.start()
        await fake.wait_conns(1)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with asyncio.timeout(10):
            await s.close()
        assert loop.time() - t0 < 2, "close() waited for the stream's next liveness check"
        assert s.closed and not s.connected
