"""``hive token``: without ``--db`` it uses the database ``hive serve`` would (the same
``HIVE_DB``, the same default), and creating a token says that authentication is on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hivehub.server.tokens import TokenStore
from tests.hubproc import ROOT


def hive(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivehub", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_token_create_uses_hive_db_and_says_auth_is_on(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.db"
    out = hive(["token", "create", "--role", "viewer"], tmp_path, {"HIVE_DB": str(db)})
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("hv_")
    assert "authentication is now on" in out.stderr and str(db) in out.stderr
    store = TokenStore(str(db))
    store.open()
    assert store.authenticate(token) is not None
    listed = hive(["token", "list"], tmp_path, {"HIVE_DB": str(db)})
    assert "viewer" in listed.stdout


def test_token_create_without_hive_db_uses_serves_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HIVE_DB"}
    out = subprocess.run(
        [sys.executable, "-m", "hivehub", "token", "create", "--role", "operator"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data" / "hive.db").exists()  # hive serve's default, ./data/hive.db
