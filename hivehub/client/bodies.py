"""Request bodies the client builds from friendly arguments (shared by the REST
client and the stream's ``create_task``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def capabilities_arg(caps: Any, key: str) -> list[dict[str, Any]] | None:
    """Accept ``{"nlp": 0.7}``, ``["nlp:0.7"]``, ``[("nlp", 0.7)]`` or the wire form
    ``[{"name": "nlp", key: 0.7}]``; return the wire form."""
    if caps is None:
        return None
    if isinstance(caps, Mapping):
        return [{"name": str(k), key: float(v)} for k, v in caps.items()]
    out: list[dict[str, Any]] = []
    for c in caps:
        if isinstance(c, Mapping):
            out.append(dict(c))
        elif isinstance(c, str):
            name, _, level = c.partition(":")
            out.append({"name": name, key: float(level)} if level else {"name": name})
        else:
            name, level = c
            out.append({"name": str(name), key: float(level)})
    return out


def task_spec(spec: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A ``TaskSpec`` body from a mapping and/or keywords; ``None`` values are left to the hub."""
    body = {**(spec or {}), **fields}
    if "required_capabilities" in body:
        body["required_capabilities"] = capabilities_arg(body["required_capabilities"], "min_proficiency")
    return {k: v for k, v in body.items() if v is not None}
