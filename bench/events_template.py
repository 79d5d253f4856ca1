"""The marker the fan-out bench puts in task descriptions, and a real
``task_created`` envelope to stamp it into (for the bare server).

Marker: ``bench:P:NNNNNNNNN:TTTTTTTTTT.TTTTTT`` -- phase letter, event number,
send time (``time.time()``, same clock in every process on the machine). Fixed
width, so a receiver finds it with one ``bytes.find`` and slices.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

MARK = b"bench:"
PLACEHOLDER = "bench:x:000000000:0000000000.000000"


def marker(phase: str, i: int, t: float) -> str:
    return f"bench:{phase[:1]}:{i:09d}:{t:017.6f}"


@lru_cache(maxsize=1)
def template() -> tuple[bytes, bytes]:
    """(prefix, suffix) of a real ``task_created`` envelope around the marker,
    produced by the core and ``encode_event`` exactly as the hub produces it."""
    from hivehub.core import commands as C
    from hivehub.core.events import encode_event
    from hivehub.core.hive import Hive

    hive = Hive()
    events = hive.handle(
        C.SubmitTask(id="bench-request", spec=C.TaskSpec(description=PLACEHOLDER, type="bench")),
        datetime.now(UTC),
    )
    body = encode_event(events[0])
    i = body.index(PLACEHOLDER.encode())
    return body[:i], body[i + len(PLACEHOLDER) :]


def stamp(tpl: tuple[bytes, bytes], phase: str, i: int, t: float) -> bytes:
    return tpl[0] + marker(phase, i, t).encode() + tpl[1]


def parse(payload: bytes) -> tuple[str, int, float] | None:
    """(phase, number, send time) from a payload carrying a marker, else None."""
    j = payload.find(MARK)
    if j < 0:
        return None
    try:
        return chr(payload[j + 6]), int(payload[j + 8 : j + 17]), float(payload[j + 18 : j + 35])
    except (ValueError, IndexError):
        return None
