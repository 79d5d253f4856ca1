"""JSON limits and typed decoding, the same for REST bodies and WebSocket messages."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect

from ..core.errors import InvalidInput, PayloadTooLarge

#: the default nesting limit (``--max-json-depth``)
MAX_JSON_DEPTH = 64


def _depth_ok(obj: Any, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return False
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return True


def check_depth(obj: Any, max_depth: int) -> None:
    """The JSON nesting limit, the same for REST bodies and WebSocket messages.

    Raises:
        PayloadTooLarge: ``obj`` is nested deeper than ``max_depth``."""
    if not _depth_ok(obj, max_depth):
        raise PayloadTooLarge(f"JSON nested deeper than {max_depth} levels", max_depth=max_depth)


def convert_object(obj: Any, typ: Any, max_depth: int) -> Any:
    """Validate already-decoded JSON into ``typ`` (a REST body, a /ws command's data).

    Raises:
        PayloadTooLarge: too deep.
        InvalidInput: not an object.
        msgspec.ValidationError: not valid for ``typ`` (the error table maps it to 422)."""
    check_depth(obj, max_depth)
    if not isinstance(obj, dict):
        raise InvalidInput("request body must be a JSON object")
    try:
        return msgspec.convert(obj, typ)
    except msgspec.ValidationError:
        # JSON Schema (and so the OpenAPI document) counts 1.0 as an integer; msgspec
        # does not. Only on a failure, integral floats where the schema wants an integer
        # become ints and the body is validated again (free-form fields are left alone).
        fixed = _integral(obj, type_info(typ))
        if fixed is obj:
            raise
        return msgspec.convert(fixed, typ)


def decode_body(raw: bytes, typ: Any, max_depth: int) -> Any:
    """Decode and validate a JSON body into ``typ``; an empty body means ``{}``."""
    return convert_object(msgspec.json.decode(raw) if raw.strip() else {}, typ, max_depth)


_TYPE_INFO: dict[Any, Any] = {}


def type_info(typ: Any) -> Any:
    """``msgspec.inspect.type_info``, computed once per type."""
    info = _TYPE_INFO.get(typ)
    if info is None:
        info = _TYPE_INFO[typ] = msgspec.inspect.type_info(typ)
    return info


def _integral(obj: Any, t: Any) -> Any:
    """``obj`` with integral floats at integer positions of type ``t`` made ints;
    the same object when nothing changed (copies only what it changes)."""
    mi = msgspec.inspect
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(obj, float):
        wants_int = isinstance(t, mi.IntType) or (
            isinstance(t, mi.UnionType)
            and any(isinstance(_unwrap(x), mi.IntType) for x in t.types)
            and not any(isinstance(_unwrap(x), mi.FloatType) for x in t.types)
        )
        return int(obj) if wants_int and obj.is_integer() else obj
    if isinstance(t, mi.UnionType):
        for x in t.types:
            x = _unwrap(x)
            if isinstance(x, (mi.StructType, mi.ListType, mi.DictType)):
                out = _integral(obj, x)
                if out is not obj:
                    return out
        return obj
    if isinstance(t, mi.StructType) and isinstance(obj, dict):
        changed = {}
        for f in t.fields:
            if f.encode_name in obj:
                v = obj[f.encode_name]
                nv = _integral(v, f.type)
                if nv is not v:
                    changed[f.encode_name] = nv
        return {**obj, **changed} if changed else obj
    if isinstance(t, mi.ListType) and isinstance(obj, list):
        items = [_integral(v, t.item_type) for v in obj]
        return items if any(a is not b for a, b in zip(items, obj, strict=True)) else obj
    if isinstance(t, mi.DictType) and isinstance(obj, dict):
        vals = {k: _integral(v, t.value_type) for k, v in obj.items()}
        return vals if any(vals[k] is not obj[k] for k in obj) else obj
    return obj


def _unwrap(t: Any) -> Any:
    while isinstance(t, msgspec.inspect.Metadata):
        t = t.type
    return t
