"""Tokens on a PostgreSQL hub (issue 17): ``hive token create/list/revoke`` work
against the cluster's database, every replica takes a new token, and a
revocation reaches every replica (requests refused, its /ws streams closed)
within a second."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from hivehub.server.tokens import TokenStore
from tests.conftest import TIME_SCALE
from tests.e2e.clusterproc import Cluster
from tests.hubproc import ROOT, Hub, wait_for


def hive_token(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivehub", "token", *args, "--db", db],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, 3).start()
    try:
        yield c
    finally:
        c.stop()


def code_with(h: Hub, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return h.request("GET", "/api/hive/status", headers=headers)[0]


class Stream(threading.Thread):
    """A /ws subscriber holding a token; records when the hub closes it."""

    def __init__(self, h: Hub, token: str) -> None:
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(
            f"{h.ws_url}/ws", header=[f"Authorization: Bearer {token}"], timeout=5
        )
        self.closed_at: float | None = None
        self.close_code: int | None = None

    def run(self) -> None:
        while True:
            try:
                op, frame = self.ws.recv_data_frame(True)
            except (OSError, websocket.WebSocketException):
                break
            if op == websocket.ABNF.OPCODE_CLOSE:
                self.close_code = int.from_bytes(frame.data[:2], "big") if frame.data else None
                break
        self.closed_at = time.monotonic()
        self.ws.shutdown()


def test_tokens_on_postgresql_and_revocation_reaches_every_replica(three: Cluster) -> None:
    follower = three.followers()[0]  # elected, and every follower knows the leader
    out = hive_token("create", "--role", "operator", "--note", "ci", db=three.db)
    assert out.returncode == 0, out.stderr
    op = out.stdout.strip()
    assert op.startswith("hv_") and three.db in out.stderr
    admin = hive_token("create", "--role", "admin", db=three.db).stdout.strip()
    # every replica takes both tokens and (--auth auto) refuses anonymous requests once
    # it has read the table with the last one (until the first, auth is off: all pass)
    for h in three.hubs:
        wait_for(lambda h=h: code_with(h, admin) == 200 and code_with(h, None) == 401, 5, what="auth on")
        assert code_with(h, op) == 200
        assert code_with(h, "hv_000000000000_wrong") == 401
    listed = hive_token("list", db=three.db)
    assert listed.returncode == 0, listed.stderr
    tid = op.split("_")[1]
    assert f"{tid}  operator" in listed.stdout and "active" in listed.stdout and "ci" in listed.stdout
    # the operator writes through a follower (forwarded to the leader) ...
    code, _ = follower.request("POST", "/api/tasks", {"type": "x"}, headers={"Authorization": f"Bearer {op}"})
    assert code == 201
    # ... and watches every replica
    streams = [Stream(h, op) for h in three.hubs]
    for s in streams:
        s.start()
    # revoked as `hive token revoke` does it (the same call, in this process, so the
    # time is measured from the revocation's commit, not from a process start)
    assert TokenStore(three.db).revoke(tid)
    t_revoked = time.monotonic()
    # refused everywhere, and every stream of it closed (1008, policy), within a second
    for h in three.hubs:
        wait_for(lambda h=h: code_with(h, op) == 401, 1.0, interval=0.01, what="revocation on every replica")
    for s in streams:
        s.join(1.0 * TIME_SCALE)
        s.ws.shutdown()  # (close() leaves the socket open once the hub closed it)
        assert s.closed_at is not None and s.close_code == 1008
    took = max(s.closed_at or 0 for s in streams) - t_revoked
    print(f"revocation closed the token's streams on 3 replicas within {took:.3f}s")
    assert took < 1.0 * TIME_SCALE
    for h in three.hubs:
        assert code_with(h, admin) == 200
    listed = hive_token("list", db=three.db).stdout
    assert f"{tid}  operator" in listed and "revoked" in listed
    assert hive_token("revoke", tid, db=three.db).returncode == 2  # not active any more
    out = hive_token("revoke", admin, db=three.db)  # by the token itself
    assert out.returncode == 0 and out.stdout.strip() == "revoked", out.stderr
    for h in three.hubs:
        wait_for(lambda h=h: code_with(h, admin) == 401, 1.0, what="the admin token refused")
