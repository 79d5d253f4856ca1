"""The whole state of a :class:`Hive`, as plain data, for equality checks.

``full_state(hive)`` walks every attribute of the hive (and of the objects it
holds), so a field added later is compared without anyone remembering to list
it here. What it leaves out is named below, each with its reason:

- ``VOLATILE`` (``hivehub/core/state.py`` says why each is volatile):
  liveness is fed by heartbeats, which are deliberately not logged
  (``docs/architecture.md``, "Volatile by design"), so the last-heard-from
  times, the liveness heap and ``Agent.last_seen_at`` are not comparable
  between live and replay; ``_dirty`` says a scheduling pass is owed (a replay
  owes one); the coordinator's trigger and next due time restart with a hive
  that folds the log, as after a restart; ``_wake_at`` (when a blocking quota
  pool or budget day clears) is the scheduler's note to itself, like ``_dirty``.
- ``SCRATCH``: the readings and facts of the command being handled and the injected id
  factory, rng and backoff (identity, not state).

A heap is compared as the sorted list of its entries: its behaviour (what it
pops, in which order) depends only on that, not on the layout of the list,
which depends on the order entries were pushed and popped in. The maps of
``UNORDERED`` are compared without their order: no decision iterates them in
order (the scheduler compares their entries, which are totally ordered), and
when a due retry joins them depends on when a Tick drained it. The ready
heaps are compared by their current entries: a stale one (lazy deletion) is
garbage, and how many of those are left below a current top depends on when a
due retry was pushed on it. So is the task-deadline heap (``_deadlines``, by
``indexes.live_deadlines``): the entries of a task no longer held on that
attempt are skipped when they fall due, and a snapshot does not write them.

``full_state(hive, volatile=True)`` keeps the volatile fields: a rejected
command must not touch them either.
"""

from __future__ import annotations

import enum
import pickle
from collections import Counter, deque
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import msgspec

from hivehub.core.indexes import live_deadlines

VOLATILE = frozenset(
    {"_seen", "_liveness", "_live_armed", "_dirty", "_rebalance_trigger", "_next_rebalance_at", "_wake_at"}
)
SCRATCH = frozenset({"config", "_new_id", "_rng", "_backoff", "_msg_prefix", "_now", "_mono", "_facts"})
#: heaps (lists) and maps of heaps, compared as sorted entries
HEAPS = frozenset({"_delayed", "_deadlines", "_liveness", "_input_deadlines"})
HEAP_MAPS = frozenset({"_ready", "_free"})
UNORDERED = frozenset({"_ready", "_free", "_queued"})
#: fields of nested objects that are volatile (see the module docstring)
VOLATILE_FIELDS = frozenset({"last_seen_at"})


def plain(value: Any, *, volatile: bool = False) -> Any:
    """``value`` as comparable plain data (sets sorted, structs as dicts, order kept elsewhere)."""
    if value is None or isinstance(value, (bool, int, float, str, datetime, date, enum.Enum)):
        return value
    if isinstance(value, msgspec.Struct):
        return {
            "__type__": type(value).__name__,
            **{
                f: plain(getattr(value, f), volatile=volatile)
                for f in value.__struct_fields__
                if volatile or f not in VOLATILE_FIELDS
            },
        }
    if isinstance(value, Counter):
        return ("Counter", sorted((repr(k), v) for k, v in value.items()))
    if isinstance(value, dict):
        # insertion order is state too (eviction order, fairness): keep it
        return ("dict", [(plain(k), plain(v, volatile=volatile)) for k, v in value.items()])
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(repr(plain(v)) for v in value))
    if isinstance(value, deque):
        return ("deque", value.maxlen, [plain(v, volatile=volatile) for v in value])
    if isinstance(value, (list, tuple)):
        return [plain(v, volatile=volatile) for v in value]
    if hasattr(value, "__dict__") and not callable(value):
        return {"__type__": type(value).__name__, **full_state(value, volatile=volatile)}
    if callable(value):
        return ("callable", getattr(value, "__qualname__", repr(type(value))))
    raise TypeError(f"cannot compare a {type(value).__name__}")


def full_state(obj: Any, *, volatile: bool = False) -> dict[str, Any]:
    """Every attribute of ``obj`` as plain data, minus the scratch (and, unless
    ``volatile``, the volatile) fields."""
    skip = SCRATCH if volatile else SCRATCH | VOLATILE
    out = {}
    for k, v in sorted(vars(obj).items()):
        if k in skip:
            continue
        if k == "_deadlines" and hasattr(obj, "tasks"):
            v = live_deadlines(obj)
        elif k in HEAPS:
            v = sorted(v)
        elif k == "_ready":
            queued = obj._queued
            v = {key: sorted(e for e in heap if queued.get(e[2]) == e[1]) for key, heap in v.items()}
        elif k in HEAP_MAPS:
            v = {key: sorted(heap) for key, heap in v.items()}
        if k in UNORDERED:
            v = dict(sorted(v.items()))
        out[k] = plain(v, volatile=volatile)
    return out


def snapshot(obj: Any) -> bytes:
    """Every field of ``obj`` but the scratch, pickled: a cheap "before" for
    :func:`changes_since` (a state machine takes one before every command, and
    walking the whole state with :func:`full_state` each time made the property
    runs slow)."""
    return pickle.dumps({k: v for k, v in vars(obj).items() if k not in SCRATCH}, protocol=5)


def changes_since(obj: Any, before: bytes) -> list[str]:
    """The differences, volatile fields included, between ``obj`` now and its
    :func:`snapshot` ``before`` (none: equal). Equal bytes are equal states; other
    bytes are compared as :func:`full_state` does (a dict may have been reordered)."""
    now = snapshot(obj)
    if now == before:
        return []
    a = full_state(SimpleNamespace(**pickle.loads(before)), volatile=True)
    b = full_state(SimpleNamespace(**pickle.loads(now)), volatile=True)
    return differences(a, b)


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The top-level fields where two ``full_state`` results differ (for assertion messages)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k}: {_short(a.get(k))} != {_short(b.get(k))}")
    return out


def _short(v: Any) -> str:
    s = repr(v)
    return s if len(s) < 600 else s[:600] + "..."
