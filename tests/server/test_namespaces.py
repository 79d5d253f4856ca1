"""The pure parts of ``server/namespaces.py``: names, and where each namespace keeps
its log and bus stream (the serving itself is tested against the real ``hive serve``
in ``tests/e2e/test_namespaces.py``)."""

from __future__ import annotations

import pytest

from hivehub.server.config import ServerConfig
from hivehub.server.namespaces import derive_bus, derive_config, derive_db, validate_name, validate_names
from hivehub.store.postgres import split_url


@pytest.mark.parametrize("name", ["a", "0", "team-1", "a" * 63, "x-y-z"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a_b", "a.b", "a/b", "a" * 64, "ü", "a b"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid namespace name"):
        validate_name(name)


def test_a_name_declared_twice_is_refused() -> None:
    assert validate_names(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="declared twice"):
        validate_names(["a", "b", "a"])


@pytest.mark.parametrize(
    ("db", "name", "derived"),
    [
        ("./data/hive.db", "a", "./data/hive.ns-a.db"),
        ("/var/lib/hive/hive.db", "team-1", "/var/lib/hive/hive.ns-team-1.db"),
        ("hive", "a", "hive.ns-a"),
        ("sqlite:///tmp/h.sqlite", "a", "sqlite:///tmp/h.ns-a.sqlite"),
        ("memory", "a", "memory"),
    ],
)
def test_a_sqlite_namespace_is_a_file_beside_the_default(db: str, name: str, derived: str) -> None:
    assert derive_db(db, name) == derived


def test_a_postgres_namespace_is_a_schema_of_its_own() -> None:
    url, schema = split_url(derive_db("postgresql://u@h:5432/hive", "team-1"))
    assert (url, schema) == ("postgresql://u@h:5432/hive", "ns_team_1")
    url, schema = split_url(derive_db("postgresql://u@h/hive?schema=prod&sslmode=disable", "a"))
    assert (url, schema) == ("postgresql://u@h/hive?sslmode=disable", "prod_ns_a")
    with pytest.raises(ValueError, match="over 63 bytes"):
        derive_db("postgresql://h/db?schema=" + "s" * 20, "n" * 60)


def test_an_explicit_bus_stream_gets_the_namespace() -> None:
    assert derive_bus("memory", "a") == "memory"
    assert derive_bus("redis://h:6379/0", "a") == "redis://h:6379/0"  # derived from its own cluster id
    assert derive_bus("redis://h:6379/0?stream=hive", "a") == "redis://h:6379/0?stream=hive-ns-a"
    assert (
        derive_bus("nats://h:4222?stream=S&subject=s.e", "a")
        == "nats://h:4222?stream=S-ns-a&subject=s.e-ns-a"
    )


def test_a_namespace_config_keeps_the_settings_but_not_the_per_process_parts() -> None:
    base = ServerConfig(db="d/hive.db", port=4000, namespaces=["a"], admin_token="t")
    derived = derive_config(base, "a")
    assert (derived.db, derived.namespace, derived.namespaces) == ("d/hive.ns-a.db", "a", [])
    assert (derived.demo_agents, derived.demo_workload, derived.heap_trim_interval) == (False, False, 0.0)
    assert derived.advertise == "http://127.0.0.1:4000/ns/a"
    assert (derived.port, derived.admin_token, derived.hive) == (base.port, "t", base.hive)
