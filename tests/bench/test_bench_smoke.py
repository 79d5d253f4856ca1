"""Keep the benchmarks working: each bench runs in its tiny ``--smoke`` size.

No timing assertion anywhere (this machine's speed is not under test): only that
each bench runs to the end, delivers what it sent, and produces numbers. The
benches run as ``python -m bench --smoke`` in a subprocess, exactly as
``make bench`` runs them, writing to a temporary results file.

The Celery and Dask baselines have their own tests, which install nothing and
run only when those packages import here (``pip install -r bench/requirements.txt``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, only: str, timeout: float = 110) -> dict[str, Any]:
    out = tmp_path / "results.json"
    cp = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", only, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.exists(), f"no results written (exit {cp.returncode}):\n{cp.stderr[-4000:]}"
    doc = json.loads(out.read_text())
    errors = {k: v.get("error") for k, v in doc["benches"].items() if "error" in v}
    assert cp.returncode == 0 and not errors, f"{errors}\n{cp.stderr[-4000:]}"
    return doc


def positive(x: Any) -> bool:
    return isinstance(x, int | float) and x > 0


def test_scheduler_smoke(tmp_path: Path) -> None:
    doc = run_bench(tmp_path, "scheduler")
    m = doc["machine"]
    assert m["cpu_model"] and positive(m["logical_cores"]) and m["python"] and m["versions"]["aiohttp"]
    assert doc["mode"] == "smoke" and doc["table"] and "| Bench |" in doc["table_markdown"]
    sch = doc["benches"]["scheduler"]
    assert sch["rows"] and all(positive(r["assignments_per_s"]) and r["assignments"] > 0 for r in sch["rows"])
    assert positive(sch["slowdown_largest_vs_smallest"])


def test_retention_smoke(tmp_path: Path) -> None:
    rt = run_bench(tmp_path, "retention")["benches"]["retention"]
    kept, retained = rt["kept"], rt["retained"]
    assert kept["evicted"] == 0 and kept["in_memory_tasks"] == kept["tasks"] > 0
    assert retained["in_memory_tasks"] == retained["retain_finished"] > 0
    assert retained["evicted"] == retained["tasks"] - retained["retain_finished"] > 0
    assert positive(rt["mib_per_million_finished_without_retention"])
    assert positive(rt["mib_per_million_finished_with_retention"]) and positive(
        rt["evicted_index_mib_per_million"]
    )


def test_replay_smoke(tmp_path: Path) -> None:
    rp = run_bench(tmp_path, "replay")["benches"]["replay"]
    assert rp["hub"]["received"] == rp["hub"]["expected"] > 0 and not rp["hub"]["timed_out"]
    assert rp["hub"]["last_sequence"] == rp["hub"]["expected"]
    # the snapshot written at the stop, in pieces (store/sqlite_snapshots.py), and used
    assert rp["snapshot"]["pieces"] >= 1 and rp["snapshot"]["longest_transaction_ms"] > 0
    assert rp["snapshot"]["started_from"] == rp["snapshot"]["sequence"]
    assert (
        positive(rp["events_per_s"])
        and positive(rp["baseline_events_per_s"])
        and positive(rp["ratio_vs_bare"])
    )


def test_fanout_smoke(tmp_path: Path) -> None:
    fo = run_bench(tmp_path, "fanout")["benches"]["fanout"]
    for side in ("hub", "bare", "hub_deflate"):
        for phase in ("steady", "burst"):
            ph = fo[side][phase]
            assert ph["deliveries"] == ph["expected_deliveries"] > 0, (side, phase, ph)
            assert positive(ph["deliveries_per_s"]) and positive(ph["latency"]["p99_ms"])
    assert positive(fo["ratio_vs_bare"]) and positive(fo["client_capacity_deliveries_per_s"])
    assert positive(fo["cpu_per_delivery_deflate_vs_plain"])


def test_tasks_smoke(tmp_path: Path) -> None:
    t = run_bench(tmp_path, "tasks")["benches"]["tasks"]
    assert (
        t["completed"] == t["tasks"] > 0 and positive(t["tasks_per_s"]) and positive(t["latency"]["p99_ms"])
    )


def test_defaults_smoke(tmp_path: Path) -> None:
    """The defaults row: 4 ``hive agent`` processes as the CLI starts them (one slot each,
    the SDK's prefetch) complete every task, and the agents' own counts add up to it."""
    t = run_bench(tmp_path, "defaults")["benches"]["defaults"]
    assert t["completed"] == t["tasks"] > 0 and positive(t["tasks_per_s"])
    assert len(t["agents"]) == 4 and all(
        a["max_concurrent_tasks"] == 1 and a["prefetch"] for a in t["agents"]
    )
    assert sum(a["completed"] for a in t["agents"]) == t["tasks"]


def test_connections_smoke(tmp_path: Path) -> None:
    cn = run_bench(tmp_path, "connections")["benches"]["connections"]
    assert cn["plain"] and all(r["subscribers_seen_by_hub"] == r["connections"] for r in cn["plain"])
    assert cn["deflate"] and all(isinstance(v, float | int) for v in cn["kib_per_connection"].values())


def test_celery_baseline_smoke(tmp_path: Path) -> None:
    pytest.importorskip("celery")
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        pytest.skip("the Celery baseline starts a private redis-server, which is not installed here")
    c = run_bench(tmp_path, "celery")["benches"]["celery"]
    assert (
        c["completed"] == c["tasks"] > 0 and positive(c["tasks_per_s"]) and positive(c["latency"]["p50_ms"])
    )


def test_dask_baseline_smoke(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    d = run_bench(tmp_path, "dask")["benches"]["dask"]
    assert d["completed"] == d["tasks"] > 0 and positive(d["tasks_per_s"])


def test_replicas_smoke(tmp_path: Path) -> None:
    r = run_bench(tmp_path, "replicas", timeout=170)["benches"]["replicas"]
    assert [row["replicas"] for row in r["rows"]] == [1, 2, 3]
    assert all(row["completed"] == row["tasks"] > 0 and positive(row["tasks_per_s"]) for row in r["rows"])


def test_fanout_replicas_smoke(tmp_path: Path) -> None:
    fr = run_bench(tmp_path, "fanout_replicas", timeout=120)["benches"]["fanout_replicas"]
    assert fr["affinity"] == {"leader": [0], "follower": [1]}
    for setup, on in (("one", {"leader"}), ("two", {"leader", "follower"})):
        steps = fr[setup]["steps"]
        assert steps and all(s["deliveries"] == s["expected_deliveries"] > 0 for s in steps), steps
        assert all(positive(s["deliveries_per_s"]) and positive(s["p99_ms"]) for s in steps)
        assert set(steps[0]["probe_p99_ms_by_replica"]) == on
        held = steps[-1]["subscribers_by_replica"]
        assert sum(held.values()) == steps[-1]["subscribers"] and (held["follower"] > 0) == (setup == "two")
    assert positive(fr["ratio_two_vs_one"])


def test_namespaces_smoke(tmp_path: Path) -> None:
    r = run_bench(tmp_path, "namespaces", timeout=120)["benches"]["namespaces"]
    assert "error" not in r, r.get("traceback")
    assert r["alone"]["replicas"] == 1 and r["split"]["replicas"] == 2
    assert r["alone"]["tasks"] == 300 and r["split"]["tasks"] == 600 and r["ratio"] > 0
    assert set(r["split"]["cpu_ms_per_task"]) >= {"replica0", "replica1", "agents", "postgres"}


def test_crash_smoke(tmp_path: Path) -> None:
    c = run_bench(tmp_path, "crash", timeout=170)["benches"]["crash"]
    assert c["tasks_accepted"] > 0 and c["kills"] == 1
    # the figures the bench reports: every accepted task ends once, nothing is lost
    assert c["tasks_finished"] == c["tasks_accepted"] and c["tasks_finished_twice"] == 0
    assert c["events_lost"] == 0 and c["log_duplicates"] == 0


def test_slowsub_smoke(tmp_path: Path) -> None:
    r = run_bench(tmp_path, "slowsub", timeout=170)["benches"]["slowsub"]
    assert r["slow_cut_off"]
    if r["close_reason_read"]:
        assert "resume with since=" in r["slow_close_reason"]
    assert r["others_delivered_fraction"] == 1.0  # the others got every event
    assert positive(r["baseline_p99_ms"]) and positive(r["with_slow_p99_ms"])


def test_soak_smoke(tmp_path: Path) -> None:
    """The soak runs (20 s, every hostile kind connected) and produces its numbers;
    whether memory stayed bounded is for ``make bench`` to report, not for a test."""
    from bench.soak import KINDS

    s = run_bench(tmp_path, "soak", timeout=170)["benches"]["soak"]
    assert len(s["samples"]) >= 5 and all(positive(x["rss_mib"]) for x in s["samples"])
    assert positive(s["rss_warmup_mib"]) and positive(s["rss_max_mib"]) and positive(s["rss_end_mib"])
    assert isinstance(s["rss_slope_second_half_mib_per_min"], float | int)
    assert s["verdict"] in ("bounded", "NOT bounded")
    assert s["tasks_submitted"] > 0 and s["tasks_completed"] > 0 and not s["submit_errors"]
    assert s["completed_seen_by_subscriber"] > 0 and s["reader_latency"]["samples"] > 0
    assert sorted(s["hostile"]) == sorted(KINDS)
    assert all(h["connects"] >= 1 for h in s["hostile"].values()), s["hostile"]
    assert s["hostile"]["unknown_token"]["responses"] and isinstance(s["hostile_cut_offs"], int)
    assert not s["job_errors"]
    assert any(r["bench"] == "soak" and r["metric"] == "verdict" for r in run_table(tmp_path))


def run_table(tmp_path: Path) -> list[dict[str, str]]:
    return list(json.loads((tmp_path / "results.json").read_text())["table"])


def test_llm_smoke(tmp_path: Path) -> None:
    # the real model server (the llm extra), a hub and one LLM agent: 3 tasks each way
    r = run_bench(tmp_path, "llm")["benches"]["llm"]
    assert r["tasks"] == 3 and r["completion_tokens_per_task"] > 0
    assert r["direct_p50_ms"] > 0 and r["hub_p50_ms"] > 0 and r["model_cpu_s"] > 0


def test_mcp_smoke(tmp_path: Path) -> None:
    # a hub, a no-op agent, the mcp package's client: tasks through MCP and through the SDK
    r = run_bench(tmp_path, "mcp")["benches"]["mcp"]
    assert r["tasks"] > 0 and r["sdk"]["samples"] == r["mcp"]["samples"] == r["tasks"]
    assert positive(r["sdk_p50_ms"]) and positive(r["mcp_p50_ms"]) and positive(r["ratio_p50"])
    assert any(row["bench"] == "mcp" for row in run_table(tmp_path))


def test_a2a_smoke(tmp_path: Path) -> None:
    # a real A2A agent, the hub, hive a2a-bridge and one SDK agent: 5 tasks each way
    r = run_bench(tmp_path, "a2a")["benches"]["a2a"]
    assert r["tasks"] == 5 and positive(r["bridge_p50_ms"]) and positive(r["sdk_p50_ms"])
    assert positive(r["a2a_direct_p50_ms"]) and positive(r["ratio_vs_sdk"])
    assert any(row["bench"] == "a2a" for row in run_table(tmp_path))


def test_history_smoke(tmp_path: Path) -> None:
    # a log of 5,000 tasks built through the store API, served by the real hub
    doc = run_bench(tmp_path, "history")
    h = doc["benches"]["history"]
    assert h["build"]["tasks"] == 5_000 and h["build"]["events"] > 10_000
    pages = h["pages"]
    assert pages["first page"]["tasks"] == 50 and pages["first page"]["total"] == 5_000
    assert pages["status=failed"]["total"] == 500 and pages["second page (cursor)"]["tasks"] == 50
    assert 0 < pages["q=primes up to 7"]["total"] < 5_000
    assert all(positive(p["median_ms"]) for p in pages.values())
    assert h["series_24h"]["buckets"] == 288 and h["series_24h"]["created_in_window"] > 0
    assert any(r["bench"] == "history" for r in doc["table"])
