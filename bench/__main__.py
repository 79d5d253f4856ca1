"""``python -m bench [--quick | --smoke] [--only NAME[,NAME...]] [--out FILE]``

Runs the benchmarks in order, prints one table, and writes every measured
figure, the machine it ran on and the baselines (measured in the same run) to
``bench/results/latest.json``. Nothing in the output is typed in: each number
comes from this run.

Benches: scheduler, retention, replay, fanout, slowsub, tasks, celery, dask, defaults, connections, replicas,
fanout_replicas, namespaces, crash, soak
(``tasks`` is the hub; ``celery`` and ``dask`` are its baselines; ``soak`` runs last:
10 minutes, ``HIVEBENCH_SOAK_SECONDS=3600 HIVEBENCH_SOAK_RATE=20`` for one hour).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCHES = [
    "scheduler",
    "retention",
    "replay",
    "fanout",
    "slowsub",
    "tasks",
    "celery",
    "dask",
    "defaults",
    "connections",
    "replicas",
    "fanout_replicas",
    "namespaces",
    "crash",
    "soak",
    "llm",
    "mcp",
    "a2a",
    "history",
]
RESULTS = Path(__file__).resolve().parent / "results"


def _runner(name: str) -> Callable[[str], dict[str, Any]]:
    if name == "scheduler":
        from bench import scheduler

        return scheduler.run
    if name == "retention":
        from bench import retention

        return retention.run
    if name == "replay":
        from bench import replay

        return replay.run
    if name == "fanout":
        from bench import fanout

        return fanout.run
    if name == "tasks":
        from bench import tasks

        return tasks.run_hub
    if name in ("celery", "dask"):
        from bench import baselines

        return lambda mode: baselines.run_in_subprocess(name, mode)
    if name == "defaults":
        from bench import defaults

        return defaults.run
    if name == "connections":
        from bench import connections

        return connections.run
    if name == "replicas":
        from bench import replicas

        return replicas.run
    if name == "fanout_replicas":
        from bench import fanout_replicas

        return fanout_replicas.run
    if name == "namespaces":
        from bench import namespaces

        return namespaces.run
    if name == "crash":
        from bench import crash

        return crash.run
    if name == "slowsub":
        from bench import slowsub

        return slowsub.run
    if name == "soak":
        from bench import soak

        return soak.run
    if name == "llm":
        from bench import llm

        return llm.run
    if name == "mcp":
        from bench import mcp

        return mcp.run
    if name == "a2a":
        from bench import a2a

        return a2a.run
    if name == "history":
        from bench import history

        return history.run
    raise KeyError(name)


def background_load(seconds: float, max_wait: float, quiet_pct: float = 30.0) -> dict[str, Any]:
    """CPU busy on the whole machine just before a bench starts (nothing of the bench
    runs then): other work on the machine competes with the bench. Waits up to
    ``max_wait`` seconds for a sample under ``quiet_pct`` (other people's test runs
    on a shared 2-core machine come and go); records what it saw either way."""
    import psutil

    t0 = time.monotonic()
    samples = []
    while True:
        busy = psutil.cpu_percent(interval=seconds)
        samples.append(busy)
        if busy < quiet_pct or time.monotonic() - t0 + seconds > max_wait:
            break
    return {
        "cpu_busy_pct": busy,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "sampled_s": seconds,
        "waited_s": round(time.monotonic() - t0, 1),
        "samples_pct": samples,
        "quiet": busy < quiet_pct,
    }


# ------------------------------------------------------------------ table


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float | int):
        if isinstance(v, float) and abs(v) < 100:
            s = f"{v:,.2f}"
        else:
            s = f"{v:,.0f}"
        return s + unit
    return str(v)


def ratio_or_none(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _ok(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def defaults_rows(b: dict[str, Any], row: Callable[..., None]) -> None:
    """The defaults row (``bench/defaults.py``): 4 ``hive agent`` processes as the CLI
    starts them, against the best of Celery and Dask measured in the same run."""
    d = b.get("defaults")
    if not d or "error" in d:
        return
    peers = {
        name: b[key]["tasks_per_s"]
        for key, name in (("celery", "Celery"), ("dask", "Dask"))
        if b.get(key) and "error" not in b[key] and b[key].get("tasks_per_s")
    }
    best = max(peers.items(), key=lambda kv: kv[1]) if peers else None
    tps = d.get("tasks_per_s")
    r = ratio_or_none(tps, best[1]) if best else None
    row(
        "defaults",
        f"{d['tasks']:,} no-op tasks, 4 `hive agent` (defaults): tasks/s",
        _fmt(tps),
        f"{_fmt(best[1])} ({best[0]})" if best else "-",
        _fmt(r),
        ">= 5x best peer; >= 5,000/s",
        bool(tps and tps >= 5000 and r is not None and r >= 5),
    )


def fanout_replicas_rows(b: dict[str, Any], row: Callable[..., None]) -> None:
    """The fan-out-over-replicas row (``bench/fanout_replicas.py``): the capacity of
    subscribers split over leader and follower against all of them on the leader."""
    fr = b.get("fanout_replicas")
    if not fr or "error" in fr:
        return
    c = fr["config"]
    one, two = fr["one"]["capacity"] or {}, fr["two"]["capacity"] or {}
    row(
        "fanout replicas",
        f"{c['rate']:,} ev/s, subs split over 2 replicas (1 core each) vs all on one: "
        f"deliveries/s at p99 <= {c['p99_bound_ms']:g} ms",
        _fmt(fr["two_deliveries_per_s"]),
        _fmt(fr["one_deliveries_per_s"]) + " (one replica)",
        _fmt(fr["ratio_two_vs_one"]),
        f">= {fr['target_ratio']:g}x at the same p99",
        fr["met"],
    )
    row(
        "fanout replicas",
        "at those steps: subscribers; p99 (two / one)",
        f"{_fmt(two.get('subscribers'))}; {_fmt(fr['two_p99_ms'], ' ms')}",
        f"{_fmt(one.get('subscribers'))}; {_fmt(fr['one_p99_ms'], ' ms')}",
    )
    pj = fr.get("projection_one_core_each") or {}
    lead, fol = pj.get("leader") or {}, pj.get("follower") or {}
    row(
        "fanout replicas",
        "replica CPU per delivery, follower / leader (fit over the steps)",
        _fmt(fol.get("cpu_us_per_delivery"), " us"),
        _fmt(lead.get("cpu_us_per_delivery"), " us"),
        _fmt(ratio_or_none(fol.get("cpu_us_per_delivery"), lead.get("cpu_us_per_delivery"))),
    )
    row(
        "fanout replicas",
        "projected, one core each with the clients elsewhere: deliveries/s (two / one)",
        _fmt(
            (fol.get("deliveries_per_s_per_core") or 0) + (lead.get("deliveries_per_s_per_core") or 0) or None
        ),
        _fmt(lead.get("deliveries_per_s_per_core")),
        _fmt(pj.get("ratio_two_vs_one")),
        f">= {fr['target_ratio']:g}x",
        None if pj.get("ratio_two_vs_one") is None else pj["ratio_two_vs_one"] >= fr["target_ratio"],
    )


def summary_rows(b: dict[str, Any]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []

    def row(
        bench: str,
        metric: str,
        hub: str,
        base: str = "-",
        ratio: str = "-",
        target: str = "-",
        met: bool | None = None,
    ) -> None:
        rows.append(
            {
                "bench": bench,
                "metric": metric,
                "hub": hub,
                "baseline": base,
                "ratio": ratio,
                "target": target,
                "met": _ok(met),
            }
        )

    f = b.get("fanout")
    if f and "error" not in f:
        h, s = f["hub"], f["bare"]
        row(
            "fan-out",
            f"steady {f['config']['rate']:,} ev/s x {f['config']['conns']} subs: deliveries/s",
            _fmt(f["deliveries_per_s"]),
            _fmt(f["baseline_deliveries_per_s"]) + " (bare aiohttp)",
            _fmt(f["ratio_vs_bare"]),
            ">= 100,000; ratio >= 0.8",
            f["met"]["deliveries_per_s"] and f["met"]["ratio_vs_bare"],
        )
        row(
            "fan-out",
            "steady send->receive p50 / p99",
            f"{_fmt(h['steady']['latency']['p50_ms'])} / {_fmt(h['steady']['latency']['p99_ms'])} ms",
            f"{_fmt(s['steady']['latency']['p50_ms'])} / {_fmt(s['steady']['latency']['p99_ms'])} ms",
            "-",
            "p99 <= 5 ms",
            f["met"]["p99_ms"],
        )
        row(
            "fan-out",
            f"burst of {f['config']['burst']:,} events: deliveries/s",
            _fmt(f["burst_deliveries_per_s"]),
            _fmt(f["baseline_burst_deliveries_per_s"]),
            _fmt(f["burst_ratio_vs_bare"]),
        )
        row(
            "fan-out",
            "server CPU per delivery (steady / burst)",
            f"{_fmt(h['steady']['server_cpu_us_per_delivery'])} / {_fmt(h['burst']['server_cpu_us_per_delivery'])} us",
            f"{_fmt(s['steady']['server_cpu_us_per_delivery'])} / {_fmt(s['burst']['server_cpu_us_per_delivery'])} us",
            _fmt(
                ratio_or_none(
                    s["steady"]["server_cpu_us_per_delivery"], h["steady"]["server_cpu_us_per_delivery"]
                )
            ),
        )
        hd = f.get("hub_deflate")
        if hd:
            row(
                "fan-out",
                "same, permessage-deflate subscribers (steady / burst); baseline: plain",
                f"{_fmt(hd['steady']['server_cpu_us_per_delivery'])} / {_fmt(hd['burst']['server_cpu_us_per_delivery'])} us",
                f"{_fmt(h['steady']['server_cpu_us_per_delivery'])} / {_fmt(h['burst']['server_cpu_us_per_delivery'])} us",
                _fmt(f["cpu_per_delivery_deflate_vs_plain"]),
                "<= 1.5x plain",
                f["met"]["cpu_per_delivery_deflate_vs_plain"],
            )
    defaults_rows(b, row)
    t = b.get("tasks")
    c = b.get("celery")
    dk = b.get("dask")
    if t and "error" not in t:
        cel = c.get("tasks_per_s") if c and "error" not in c else None
        r = round(t["tasks_per_s"] / cel, 2) if cel and t.get("tasks_per_s") else None
        row(
            "tasks e2e",
            f"{t['tasks']:,} no-op tasks, 4 agents: tasks/s",
            _fmt(t["tasks_per_s"]),
            target=">= 3,000",
            met=bool(t["tasks_per_s"] and t["tasks_per_s"] >= 3000),
        )
        row(
            "tasks e2e",
            "vs Celery 5 + Redis (4 prefork procs)",
            _fmt(t["tasks_per_s"]),
            _fmt(cel) + " (Celery)" if cel else "-",
            _fmt(r),
            ">= 2x Celery",
            bool(r and r >= 2),
        )
        dtp = dk.get("tasks_per_s") if dk and "error" not in dk else None
        if dtp:
            row(
                "tasks e2e",
                "vs Dask distributed (4 procs)",
                _fmt(t["tasks_per_s"]),
                _fmt(dtp) + " (Dask)",
                _fmt(round(t["tasks_per_s"] / dtp, 2)),
            )
        lat = t["latency"]
        cl = c.get("latency") if c and "error" not in c else None
        row(
            "tasks e2e",
            "submit->complete p50 / p99 (all queued at once)",
            f"{_fmt(lat['p50_ms'])} / {_fmt(lat['p99_ms'])} ms",
            f"{_fmt(cl['p50_ms'])} / {_fmt(cl['p99_ms'])} ms (Celery)" if cl else "-",
        )
        row("tasks e2e", "hub CPU per task (5 events each)", _fmt(t.get("hub_cpu_ms_per_task"), " ms"))
        row(
            "tasks e2e",
            "submission only: tasks/s accepted",
            _fmt(t["submit_per_s"]),
            _fmt(c.get("submit_per_s")) + " (Celery)" if c and "error" not in c else "-",
        )
    sch = b.get("scheduler")
    if sch and "error" not in sch:
        for rr in sch["rows"]:
            row(
                "scheduler",
                f"{rr['agents']:,} agents, {rr['queued']:,} queued: assignments/s",
                _fmt(rr["assignments_per_s"]),
                target=">= 30,000",
                met=bool(rr["assignments_per_s"] and rr["assignments_per_s"] >= 30000),
            )
        row(
            "scheduler",
            "slowdown, largest vs smallest size",
            _fmt(sch["slowdown_largest_vs_smallest"], "x"),
            target="<= 2x",
            met=sch["met"]["scaling"],
        )
    rt = b.get("retention")
    if rt and "error" not in rt:
        row(
            "retention",
            f"core heap per 1M finished tasks, all kept ({rt['kept']['tasks']:,} measured)",
            _fmt(rt["mib_per_million_finished_without_retention"], " MiB"),
        )
        row(
            "retention",
            f"same, retain_finished={rt['retained']['retain_finished']:,} (growth beyond it)",
            _fmt(rt["mib_per_million_finished_with_retention"], " MiB"),
            _fmt(rt["mib_per_million_finished_without_retention"], " MiB") + " (all kept)",
            _fmt(
                ratio_or_none(
                    rt["mib_per_million_finished_with_retention"],
                    rt["mib_per_million_finished_without_retention"],
                )
            ),
        )
        row(
            "retention",
            "of which the evicted-id index (id -> final status)",
            _fmt(rt["evicted_index_mib_per_million"], " MiB"),
        )
    cn = b.get("connections")
    if cn and "error" not in cn:
        for n, kib in cn["kib_per_connection"].items():
            row(
                "connections",
                f"hub RSS per idle /ws subscriber at {int(n):,}",
                _fmt(kib, " KiB"),
                target="<= 40 KiB",
                met=kib <= 40,
            )
        for n, kib in cn["kib_per_connection_deflate"].items():
            row(
                "connections",
                f"same, permessage-deflate (browser-like) at {int(n):,}",
                _fmt(kib, " KiB"),
                target="<= 40 KiB",
                met=kib <= 40,
            )
    rp = b.get("replay")
    if rp and "error" not in rp:
        row(
            "replay",
            f"since=0 over {rp['log']['events']:,} stored events: events/s",
            _fmt(rp["events_per_s"]),
            _fmt(rp["baseline_events_per_s"]) + " (bare aiohttp)",
            _fmt(rp["ratio_vs_bare"]),
            ">= 100,000",
            rp["met"]["events_per_s"],
        )
        row(
            "replay",
            "server CPU per replayed event",
            _fmt(rp["hub"].get("server_cpu_us_per_event"), " us"),
            _fmt(rp["bare"].get("server_cpu_us_per_event"), " us"),
            _fmt(
                ratio_or_none(
                    rp["bare"].get("server_cpu_us_per_event"), rp["hub"].get("server_cpu_us_per_event")
                )
            ),
        )
        sn = rp.get("snapshot") or {}
        row(
            "replay",
            f"hub start-up on {rp['log']['events']:,} events from the snapshot (vs folding the whole log)",
            _fmt(rp.get("hub_startup_snapshot_s"), " s"),
            _fmt(rp["hub_startup_s"], " s") + " (full replay)",
            _fmt(ratio_or_none(rp["hub_startup_s"], rp.get("hub_startup_snapshot_s"))),
            "< 2 s",
            rp.get("met", {}).get("hub_startup_snapshot_s"),
        )
        row(
            "replay",
            "hub start-up on an empty log (interpreter, imports, mounts: no fold)",
            _fmt(rp.get("hub_startup_empty_s"), " s"),
        )
        if sn.get("bytes"):
            row(
                "replay",
                "snapshot at that head: size, encode (event loop) + write (thread)",
                f"{sn['bytes'] / 2**20:.1f} MiB, {sn['encode_ms']} + {sn['write_ms']} ms",
            )
        if sn.get("longest_transaction_ms") is not None:
            row(
                "replay",
                "snapshot write: its pieces, and the longest transaction (an event commit waits at most that)",
                f"{sn['pieces']}, {sn['longest_transaction_ms']:.0f} ms",
            )
    rr = b.get("replicas")
    if rr and "rows" in rr:
        for r in rr["rows"]:
            row(
                "replicas",
                f"{r['replicas']} replica(s), PostgreSQL + Redis: tasks/s ({r['tasks']:,} no-op)",
                _fmt(r["tasks_per_s"]),
                "-",
                _fmt(r.get("ratio_vs_1")),
                "report honestly",
            )
            row(
                "replicas",
                f"{r['replicas']} replica(s): leader CPU per task",
                _fmt(r["leader_cpu_ms_per_task"], " ms"),
            )
    fanout_replicas_rows(b, row)
    ns = b.get("namespaces")
    if ns and "split" in ns:
        pin = ", each replica pinned to a core" if ns["split"].get("pinned") else ", replicas unpinned"
        row(
            "namespaces",
            f"2 namespaces led by 2 replicas vs 1 namespace on 1 replica, PostgreSQL + Redis: tasks/s"
            f" ({ns['tasks_per_namespace']:,} no-op per namespace{pin})",
            _fmt(ns["split"]["tasks_per_s"]),
            _fmt(ns["alone"]["tasks_per_s"]),
            _fmt(ns.get("ratio")),
            ">= 1.6x",
            ns["ratio"] >= ns["target"] if ns.get("ratio") is not None else None,
        )
    ss = b.get("slowsub")
    if ss and "with_slow_p99_ms" in ss:
        row(
            "slow sub",
            "a subscriber that stops reading: cut off with 1013 + since",
            "yes" if ss["slow_cut_off"] else "no",
            "-",
            "-",
            "cut off",
            bool(ss["slow_cut_off"]),
        )
        row(
            "slow sub",
            "the other 100: steady p99 with it / without it",
            _fmt(ss["with_slow_p99_ms"], " ms"),
            _fmt(ss["baseline_p99_ms"], " ms"),
            _fmt(ss["p99_ratio"]),
            "<= 2x baseline",
            ss["met"]["p99_within_2x"],
        )
    cr = b.get("crash")
    if cr and "tasks_accepted" in cr:
        row(
            "crash",
            f"kill -9 x{cr['kills']} under load: tasks accepted / finished / finished twice",
            f"{cr['tasks_accepted']:,} / {cr['tasks_finished']:,} / {cr['tasks_finished_twice']}",
            "-",
            "-",
            "all finish, once",
            cr["tasks_accepted"] == cr["tasks_finished"] and not cr["tasks_finished_twice"],
        )
        row(
            "crash",
            "events lost (log gaps + missed by resuming subscribers) / repeated",
            f"{cr['events_lost']} / {cr['subscriber_events_repeated'] + cr['log_duplicates']}",
            "-",
            "-",
            "0 / 0",
            cr["events_lost"] == 0 and cr["subscriber_events_repeated"] + cr["log_duplicates"] == 0,
        )
    so = b.get("soak")
    if so and "verdict" in so:
        c = so["config"]
        mins = f"{c['seconds'] / 60:g} min"
        row(
            "soak",
            f"{mins}, {c['rate']:g} tasks/s + hostile clients: hub RSS warm-up / max / end",
            f"{_fmt(so['rss_warmup_mib'])} / {_fmt(so['rss_max_mib'])} / {_fmt(so['rss_end_mib'])} MiB",
            "-",
            "-",
            f"max <= warm-up + {so['limits']['margin_mib']:g} MiB",
            so["rss_max_mib"] <= so["rss_warmup_mib"] + so["limits"]["margin_mib"],
        )
        sl = so["rss_slope_second_half_mib_per_min"]
        row(
            "soak",
            "hub RSS slope over the second half",
            _fmt(sl, " MiB/min"),
            "-",
            "-",
            f"< {so['limits']['slope_mib_per_min']:g} MiB/min",
            sl is not None and sl < so["limits"]["slope_mib_per_min"],
        )
        row(
            "soak",
            "tasks submitted / completed / unfinished at the end; hub CPU avg",
            f"{so['tasks_submitted']:,} / {so['tasks_completed'] or 0:,} / {so['tasks_unfinished']:,}; "
            f"{_fmt(so['hub_cpu_avg_pct'])} %",
        )
        per_kind = ", ".join(f"{k} {v['cut_offs']}" for k, v in so["hostile"].items())
        row(
            "soak",
            "hostile clients cut off by the hub (each reconnects)",
            f"{so['hostile_cut_offs']:,}",
            per_kind,
            "-",
            "-",
        )
        row("soak", "verdict", so["verdict"], "-", "-", "bounded", so["verdict"] == "bounded")
    hi = b.get("history")
    if hi and "error" not in hi:
        row(
            "history",
            f"{hi['config']['tasks']:,} tasks: first page of /api/history/tasks, plain / worst filter or search",
            f"{hi['first_page_ms']:.1f} / {hi['worst_first_page_ms']:.1f} ms",
            "-",
            "-",
            f"< {hi['config']['target_ms']:g} ms",
            hi["met"],
        )
    ll = b.get("llm")
    if ll and "error" not in ll:
        pct, cpu = ll["added_latency_pct"], ll["hub_cpu_vs_model_pct"]
        row(
            "llm",
            f"LLM task p50 via the hub vs direct ({ll['tasks']} tasks, "
            f"{ll['completion_tokens_per_task']:g} tokens each); per streamed token",
            f"{ll['hub_p50_ms']:.0f} ms; +{ll['hub_overhead_per_token_ms']:.2f} ms/token",
            f"{ll['direct_p50_ms']:.0f} ms",
            f"+{pct:.1f} %",
            "< 5 % added",
            pct < 5,
        )
        row(
            "llm",
            "hub CPU vs the model server's CPU over the hub tasks",
            f"{ll['hub_cpu_s']:.2f} s",
            f"{ll['model_cpu_s']:.2f} s",
            _fmt(cpu, " %"),
            "< 2 %",
            cpu is not None and cpu < 2,
        )
    mc = b.get("mcp")
    if mc and "error" not in mc:
        row(
            "mcp",
            f"one task via MCP submit_task + wait_for_task vs the SDK ({mc['tasks']} tasks): p50",
            f"{mc['mcp_p50_ms']:.2f} ms; +{mc['added_p50_ms']:.2f} ms",
            f"{mc['sdk_p50_ms']:.2f} ms (HiveClient)",
            f"{mc['ratio_p50']:.2f}x",
        )
    a2 = b.get("a2a")
    if a2 and "error" not in a2:
        row(
            "a2a",
            f"one task through hive a2a-bridge vs an SDK agent, p50 ({a2['tasks']} each; "
            f"the A2A agent alone: {a2['a2a_direct_p50_ms']:.1f} ms)",
            f"{a2['bridge_p50_ms']:.1f} ms (+{a2['added_ms']:.1f} ms)",
            f"{a2['sdk_p50_ms']:.1f} ms (SDK agent)",
            _fmt(a2["ratio_vs_sdk"], "x"),
        )
    for name, res in b.items():
        if isinstance(res, dict) and "error" in res:
            row(name, "FAILED", res["error"].splitlines()[-1][:80])
    return rows


def render(rows: list[dict[str, str]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col, just in (
        ("Bench", "left"),
        ("Metric", "left"),
        ("Hive Hub", "right"),
        ("Baseline (same run)", "right"),
        ("Ratio", "right"),
        ("Target", "left"),
        ("Met", "center"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["bench"], r["metric"], r["hub"], r["baseline"], r["ratio"], r["target"], r["met"])
    Console(width=180).print(table)


def markdown(rows: list[dict[str, str]]) -> str:
    out = [
        "| Bench | Metric | Hive Hub | Baseline (same run) | Ratio | Target | Met |",
        "|---|---|--:|--:|--:|---|:-:|",
    ]
    for r in rows:
        out.append(
            f"| {r['bench']} | {r['metric']} | {r['hub']} | {r['baseline']} | {r['ratio']} | {r['target']} | {r['met']} |"
        )
    return "\n".join(out)


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smaller sizes (about 2 minutes)")
    g.add_argument("--smoke", action="store_true", help="tiny sizes, only to check the benches work (tests)")
    ap.add_argument("--only", help="comma-separated bench names: " + ", ".join(BENCHES))
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    ap.add_argument(
        "--render",
        type=Path,
        metavar="FILE",
        help="only print the table (and its markdown) of an earlier results file",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=30.0,
        metavar="S",
        help="before each bench, wait up to S seconds for the machine to be quiet (default 30)",
    )
    a = ap.parse_args(argv)
    if a.render:
        prev = json.loads(a.render.read_text())
        rows = summary_rows(prev["benches"])
        render(rows, f"Hive Hub benchmarks ({prev['mode']}, {prev['generated_at']})")
        print(markdown(rows))
        return 0
    mode = "smoke" if a.smoke else "quick" if a.quick else "full"
    names = BENCHES
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHES]
        if unknown:
            ap.error(f"unknown bench(es): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.common import machine_info, raise_nofile

    raise_nofile()
    started = datetime.now(UTC)
    results: dict[str, Any] = {}
    failed = []
    for name in names:
        print(f"[bench] {name} ({mode}) ...", file=sys.stderr, flush=True)
        bg = background_load(0.2, 0.0) if mode == "smoke" else background_load(2.0, a.wait_quiet)
        t0 = time.monotonic()
        try:
            res = _runner(name)(mode)
        except Exception as exc:  # noqa: BLE001 - one bench failing must not hide the others
            res = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
            failed.append(name)
        res["wall_s"] = round(time.monotonic() - t0, 1)
        res["background_before"] = bg
        results[name] = res
        print(
            f"[bench] {name} done in {res['wall_s']} s"
            + (f" -- FAILED: {res['error']}" if name in failed else ""),
            file=sys.stderr,
            flush=True,
        )
    rows = summary_rows(results)
    doc: dict[str, Any] = {
        "generated_at": started.isoformat(timespec="seconds"),
        "mode": mode,
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "total_wall_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "benches": results,
        "table": rows,
        "table_markdown": markdown(rows),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    m = doc["machine"]
    render(
        rows,
        f"Hive Hub benchmarks ({mode}) -- {m['cpu_model']}, {m['logical_cores']} cores, Python {m['python']}",
    )
    print(f"results: {a.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
