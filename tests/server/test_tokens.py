"""hivehub.server.tokens: hashed tokens beside the log, the auth modes, identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivehub.server.tokens import ANONYMOUS, Identity, TokenStore, hash_secret, new_token


def opened(db: Path, **kw: object) -> TokenStore:
    s = TokenStore(str(db), **kw)  # type: ignore[arg-type]
    s.open()
    return s


def test_a_new_token_names_its_id_and_only_the_secrets_hash_is_stored(tmp_path: Path) -> None:
    token, tid, secret = new_token()
    assert token == f"hv_{tid}_{secret}"
    assert hash_secret(secret) != secret and len(hash_secret(secret)) == 64
    s = opened(tmp_path / "hive.db")
    token, tid = s.create("viewer", note="ci")
    assert [(r["id"], r["role"], r["note"], r["revoked_at"]) for r in s.list()] == [
        (tid, "viewer", "ci", None)
    ]
    assert token.split("_", 2)[2] not in (tmp_path / "hive.db").read_bytes().decode("latin-1")


def test_a_token_authenticates_as_its_role_until_revoked(tmp_path: Path) -> None:
    s = opened(tmp_path / "hive.db")
    token, tid = s.create("agent", agent_id="a1")
    s = opened(tmp_path / "hive.db")
    ident = s.authenticate(token)
    assert ident == Identity(tid, "agent", "a1") and s.valid(ident)
    assert s.authenticate(token[:-1] + "x") is None and s.authenticate("nonsense") is None
    assert s.revoke(token) and not s.revoke(tid)
    s = opened(tmp_path / "hive.db")
    assert s.authenticate(token) is None and not s.valid(ident)


def test_roles_and_bindings_are_checked_when_creating(tmp_path: Path) -> None:
    s = opened(tmp_path / "hive.db")
    with pytest.raises(ValueError, match="role"):
        s.create("root")
    with pytest.raises(ValueError, match="bound to an agent"):
        s.create("agent")
    with pytest.raises(ValueError, match="auth mode"):
        TokenStore(None, mode="sometimes")


def test_auth_auto_turns_on_with_the_first_token_and_anonymous_stops_being_valid(tmp_path: Path) -> None:
    s = opened(tmp_path / "hive.db")
    assert not s.enabled and s.valid(ANONYMOUS)
    s.create("viewer")
    s = opened(tmp_path / "hive.db")
    assert s.enabled and not s.valid(ANONYMOUS)
    assert TokenStore(None, mode="on").enabled and not TokenStore(None, mode="off").enabled


def test_the_env_admin_and_internal_secrets_need_no_table() -> None:
    s = TokenStore("memory", env_admin_token="env-secret")
    assert s.db_path is None and s.enabled
    assert s.authenticate("env-secret") == Identity("env-admin", "admin")
    internal = s.add_internal()
    assert s.has_internal and s.authenticate(internal) == Identity("internal", "admin")
    assert s.valid(Identity("internal", "admin"))
