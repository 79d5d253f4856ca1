"""A subscriber that stops reading: it must be cut off at its buffer limit (1013 with
the sequence to resume from) while the other subscribers' p99 stays within 2x of
their baseline. Both runs in the same bench: the fan-out steady phase (100
subscribers, 1,000 events/s) without and with one extra /ws subscriber that never
reads (4 KiB receive buffer), on a hub with ``--subscriber-buffer 1000``."""

from __future__ import annotations

from typing import Any

from bench.common import ratio, workdir
from bench.fanout import measure


def run(mode: str) -> dict[str, Any]:
    import uvloop

    cfg = {
        # enough events (8 MB and more) to fill the kernel's socket buffers toward the
        # slow reader (up to 4 MiB of send buffer here, tcp_wmem), its transport
        # buffer and its queue, so that it must be cut off during the steady phase
        "smoke": {"conns": 4, "procs": 2, "rate": 3000, "seconds": 4.0, "warmup": 0.0, "burst": 100},
        "quick": {"conns": 100, "procs": 2, "rate": 1000, "seconds": 12.0, "warmup": 1.0, "burst": 1000},
    }.get(mode, {"conns": 100, "procs": 2, "rate": 1000, "seconds": 15.0, "warmup": 1.0, "burst": 1000})
    flags = ("--subscriber-buffer", "1000")
    with workdir("slowsub") as d:
        base = uvloop.run(measure("hub", cfg, d, hub_flags=flags))
        slow = uvloop.run(measure("hub", cfg, d, slow=True, hub_flags=flags))
    b99, s99 = base["steady"]["latency"]["p99_ms"], slow["steady"]["latency"]["p99_ms"]
    # cut off: the close reason was read, or (when the hub had already aborted the
    # stuck connection after its grace period, before this client read at the end)
    # the hub no longer counts it among its subscribers
    gone = slow.get("hub_subscribers_at_end") == cfg["conns"]
    cut = bool(slow.get("slow_cut_off")) or gone
    r = ratio(s99, b99)
    return {
        "config": cfg,
        "baseline_p99_ms": b99,
        "with_slow_p99_ms": s99,
        "p99_ratio": r,
        "slow_cut_off": cut,
        "close_reason_read": bool(slow.get("slow_cut_off")),
        "hub_subscribers_at_end": slow.get("hub_subscribers_at_end"),
        "slow_close_reason": slow.get("slow_close_reason"),
        "others_delivered_fraction": slow["steady"]["delivered_fraction"],
        "met": {"cut_off": cut, "p99_within_2x": bool(r is not None and r <= 2.0)},
    }
