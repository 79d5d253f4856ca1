"""Snapshots of the folded state: :class:`~hivehub.core.state.HiveState` to bytes and back.

A snapshot is every field of the hive at one sequence, so a hub starts from it
and folds only the events after it (``HubService._rebuild``). It is generic:
the fields and their types are read from ``HiveState.__init__`` itself (each
``self.name: Type = ...``; an unannotated field must start as an ``int``,
``float``, ``bool`` or ``str`` literal), so a field added later is included
with no change here. Every field is kept, the scheduler's indexes and the
volatile ones included (``apply`` writes those too: a fold from a snapshot must
equal a full replay in every field), except what is not state: the injected
id factory, rng and backoff, the message-id prefix, the configuration (checked
instead, below) and the scratch of one ``handle`` (:data:`NOT_STATE`); and one
heap is written compacted, without the entries that can no longer fire
(:data:`COMPACTED`).

Encoding is msgpack (msgspec) against a struct type built from those fields:
``deque`` (with its ``maxlen``) and ``Counter`` go through the hooks, and a
field typed by a struct base with subclasses (``alerts``: ``EventData``) keeps
each value's class name.

Versioning, checked by :func:`restore` before anything is decoded:

- :data:`FORMAT`, bumped by hand when the meaning of a field changes without
  its type changing (an applier folding differently);
- ``schema``: a hash of every field's name and type, structs expanded to
  their own fields, so it changes by itself when the state's shape does;
- ``config``: a hash of the :class:`~hivehub.core.config.HiveConfig` the state
  was folded with (``retain_finished`` and ``remember_evicted`` decide what
  ``apply`` evicts, ``learning.window`` the outcome windows, ...): a hub
  started with other settings must fold the log itself.

A mismatch, or bytes that do not decode, raises :class:`SnapshotRejected`;
the hub then tries an older snapshot or replays the whole log.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import hashlib
import inspect
import sys
import textwrap
import types
import typing
from collections import Counter, OrderedDict, deque
from typing import Any

import msgspec

from ..core import indexes
from ..core.hive import Hive
from ..core.readyqueue import ReadyEntry, ReadyQueue
from ..core.state import HiveState
from .base import Snapshot

__all__ = [
    "FORMAT",
    "NOT_STATE",
    "Snapshot",
    "SnapshotRejected",
    "StateCodec",
    "codec",
]

#: bump when a field keeps its type but changes its meaning (``schema`` catches the rest)
FORMAT = 1

#: attributes of a hive that are not state: the injected identity (id factory, rng
#: and the backoff drawn from it, the per-instance message-id prefix), the
#: configuration (the snapshot records its hash), and one ``handle``'s scratch
NOT_STATE = frozenset({"config", "_new_id", "_rng", "_backoff", "_msg_prefix", "_now", "_mono", "_facts"})

_LITERAL_TYPES = (bool, int, float, str)

#: fields written compacted: the value a snapshot holds, read from the hive. Only
#: the live entries of the task-deadline heap (``indexes.live_deadlines``): a
#: finished task's entries stay in it until they fall due (lazy deletion), and on a
#: busy hub those are most of it. A Tick skips each when it falls due, so a hive
#: without them decides the same (it may only tick fewer times).
COMPACTED: dict[str, Any] = {"_deadlines": indexes.live_deadlines}

#: the package whose classes the state holds: the core, which imports no adapter
_CORE = HiveState.__module__.rpartition(".")[0] + "."


class SnapshotRejected(Exception):
    """A stored snapshot that must not be used (other version, other settings, corrupt)."""


def head_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def config_digest(config: Any) -> str:
    return hashlib.blake2b(msgspec.msgpack.encode(config), digest_size=16).hexdigest()


# ---------------------------------------------------------------- the schema


def state_fields(cls: type[HiveState] = Hive) -> dict[str, Any]:
    """Every field the ``__init__``s of ``cls`` (and its bases up to ``HiveState``)
    assign on ``self``, with its type, in assignment order.

    Raises TypeError for a field whose type cannot be told (no annotation, and a
    first value that is not a literal ``int``, ``float``, ``bool`` or ``str``)."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, HiveState)) or "__init__" not in vars(klass):
            continue
        module = sys.modules[klass.__module__]
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass.__init__)))
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign):
                name = _self_attr(node.target)
                if name is not None and name not in NOT_STATE:
                    out[name] = eval(ast.unparse(node.annotation), vars(module))  # noqa: S307 (our own source)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    name = _self_attr(target)
                    if name is None or name in NOT_STATE or name in out:
                        continue
                    value = node.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, _LITERAL_TYPES):
                        out[name] = type(value.value)
                    else:
                        raise TypeError(
                            f"{klass.__name__}.{name} has no type: annotate it where __init__ assigns it"
                            " (self.name: Type = ...) so snapshots can keep it"
                        )
    return out


def _self_attr(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _describe(tp: Any, seen: set[type]) -> str:
    """A canonical text of a type, structs expanded to their fields (for the schema hash)."""
    origin = typing.get_origin(tp)
    if origin is not None:
        args = ", ".join(_describe(a, seen) for a in typing.get_args(tp))
        return f"{getattr(origin, '__qualname__', repr(origin))}[{args}]"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        name = f"{tp.__module__}.{tp.__qualname__}"
        if tp in seen:
            return name
        seen.add(tp)
        hints = typing.get_type_hints(tp)
        fields = ", ".join(f"{f}: {_describe(hints[f], seen)}" for f in tp.__struct_fields__)
        subs = ", ".join(sorted(_describe(s, seen) for s in _subclasses(tp)))
        return f"{name}({fields}){'{' + subs + '}' if subs else ''}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return f"{tp.__qualname__}<{','.join(str(m.value) for m in tp)}>"
    if isinstance(tp, type):
        return f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp)


def _subclasses(cls: type) -> list[type]:
    """The subclasses of ``cls`` the core defines: only those can be in the state (the
    core imports no adapter), and a subclass elsewhere (``protocol.messages.TaskRead``,
    a reply's shape) must not change the schema or the encoding with what a process
    happened to import before its codec was built."""
    out = []
    for sub in cls.__subclasses__():
        if sub.__module__.startswith(_CORE):
            out.append(sub)
        out.extend(_subclasses(sub))
    return out


def _polymorphic(tp: Any) -> bool:
    """``tp`` mentions a struct base whose values may be of its subclasses."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return bool(_subclasses(tp))
    return any(_polymorphic(a) for a in typing.get_args(tp))


# ---------------------------------------------------------------- polymorphic values


def _wire_type(tp: Any) -> Any:
    """The decode type of a polymorphic field: each struct base becomes (class name, raw)."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and _subclasses(tp):
        return tuple[str, msgspec.Raw]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is None or not args:
        return tp
    new = tuple(_wire_type(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return typing.Union[new]  # noqa: UP007 (built from a tuple)
    return origin[new]


def _wrap(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and _by_name(tp):
        return (type(value).__qualname__, value)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _wrap(value, inner[0]) if len(inner) == 1 else value
    if origin is dict or origin is Counter:
        return {k: _wrap(v, args[1]) for k, v in value.items()}
    if origin in (list, set, frozenset, deque) or (origin is tuple and args[-1:] == (Ellipsis,)):
        return [_wrap(v, args[0]) for v in value]
    if origin is tuple:
        return tuple(_wrap(v, a) for v, a in zip(value, args, strict=True))
    return value


def _unwrap(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and _by_name(tp):
        name, raw = value
        by_name = _by_name(tp)
        if name not in by_name:
            raise SnapshotRejected(f"unknown class {name} in a snapshot")
        return msgspec.msgpack.decode(raw, type=by_name[name], dec_hook=_dec_hook)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _unwrap(value, inner[0]) if len(inner) == 1 else value
    if origin is dict:
        return {k: _unwrap(v, args[1]) for k, v in value.items()}
    if origin is Counter:
        return Counter({k: _unwrap(v, args[1]) for k, v in value.items()})
    if origin is list:
        return [_unwrap(v, args[0]) for v in value]
    if origin in (set, frozenset):
        return origin(_unwrap(v, args[0]) for v in value)
    if origin is deque:
        return deque((_unwrap(v, args[0]) for v in value), maxlen=value.maxlen)
    if origin is tuple and args[-1:] == (Ellipsis,):
        return tuple(_unwrap(v, args[0]) for v in value)
    if origin is tuple:
        return tuple(_unwrap(v, a) for v, a in zip(value, args, strict=True))
    return value


_BY_NAME: dict[type, dict[str, type]] = {}


def _by_name(tp: type) -> dict[str, type]:
    """A polymorphic base and its core subclasses by class name (empty: not
    polymorphic); looked up once per value, so cached (the classes are all defined
    once the core is imported)."""
    m = _BY_NAME.get(tp)
    if m is None:
        subs = _subclasses(tp)
        m = _BY_NAME[tp] = {c.__qualname__: c for c in [tp, *subs]} if subs else {}
    return m


# ---------------------------------------------------------------- hooks


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, deque):
        return [obj.maxlen, list(obj)]
    if isinstance(obj, OrderedDict):
        return dict(obj)  # msgpack keeps the order of a map's keys
    if isinstance(obj, ReadyQueue):
        return [list(obj.run), obj.heap]  # both parts as they are: the heap's layout too
    raise NotImplementedError(f"a snapshot cannot hold a {type(obj).__name__}")


def _dec_hook(tp: Any, obj: Any) -> Any:
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if origin is deque:
        maxlen, items = obj
        return deque(msgspec.convert(items, list[args[0]] if args else list), maxlen=maxlen)  # type: ignore[valid-type]
    if origin is Counter:
        return Counter(msgspec.convert(obj, dict[args[0], int] if args else dict))  # type: ignore[valid-type]
    if origin is OrderedDict:
        return OrderedDict(msgspec.convert(obj, dict[args[0], args[1]] if args else dict))  # type: ignore[valid-type]
    if origin is ReadyQueue:
        run, heap = msgspec.convert(obj, tuple[list[ReadyEntry], list[ReadyEntry]])
        q = ReadyQueue()
        q.run.extend(run)
        q.heap = heap
        return q
    raise NotImplementedError(f"a snapshot cannot hold a {tp}")


# ---------------------------------------------------------------- the codec


@dataclasses.dataclass
class StateCodec:
    """The encoder and decoder for one hive class's fields (built once: :func:`codec`)."""

    fields: dict[str, Any]
    schema: str
    _struct: type[msgspec.Struct]
    _poly: dict[str, Any]
    _encoder: msgspec.msgpack.Encoder
    _decoder: msgspec.msgpack.Decoder[Any]

    @classmethod
    def build(cls, hive_cls: type[HiveState] = Hive) -> StateCodec:
        fields = state_fields(hive_cls)
        seen: set[type] = set()
        text = f"{FORMAT};" + ";".join(f"{n}: {_describe(t, seen)}" for n, t in fields.items())
        poly = {n: t for n, t in fields.items() if _polymorphic(t)}
        struct = msgspec.defstruct(
            "HiveSnapshotFields",
            [(n, _wire_type(t) if n in poly else t) for n, t in fields.items()],
            array_like=True,
        )
        return cls(
            fields=fields,
            schema=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
            _struct=struct,
            _poly=poly,
            _encoder=msgspec.msgpack.Encoder(enc_hook=_enc_hook),
            _decoder=msgspec.msgpack.Decoder(struct, dec_hook=_dec_hook),
        )

    def encode(self, hive: HiveState) -> bytes:
        """Every field of ``hive`` as msgpack (in the field order of the schema).

        Raises SnapshotRejected when the hive holds a field the schema does not
        know (assigned outside ``__init__``): a snapshot without it would be wrong."""
        state = vars(hive)
        extra = set(state) - set(self.fields) - NOT_STATE
        if extra:
            raise SnapshotRejected(f"fields outside the schema (assigned outside __init__?): {sorted(extra)}")
        values = []
        for n in self.fields:
            v = COMPACTED[n](hive) if n in COMPACTED else state[n]
            values.append(_wrap(v, self._poly[n]) if n in self._poly else v)
        return self._encoder.encode(values)

    def decode_into(self, body: bytes, hive: HiveState) -> None:
        """Set every field of ``hive`` from ``body``. Raises SnapshotRejected when the
        bytes do not decode against the schema (``hive`` is then unchanged)."""
        try:
            decoded = self._decoder.decode(body)
            values = {
                n: _unwrap(getattr(decoded, n), self._poly[n]) if n in self._poly else getattr(decoded, n)
                for n in self.fields
            }
        except SnapshotRejected:
            raise
        except Exception as exc:  # msgspec errors, a wrong shape inside: corrupt
            raise SnapshotRejected(f"the snapshot does not decode: {exc}") from exc
        vars(hive).update(values)

    def snapshot(self, hive: HiveState, head_body: bytes) -> Snapshot:
        """A snapshot of ``hive`` at its sequence, whose last event's body is ``head_body``."""
        return Snapshot(
            hive.sequence,
            FORMAT,
            self.schema,
            config_digest(hive.config),
            head_digest(head_body),
            self.encode(hive),
        )

    def check(self, snap: Snapshot, config: Any) -> None:
        """Raises SnapshotRejected, with the reason, when ``snap`` is not for this hub."""
        if snap.format != FORMAT:
            raise SnapshotRejected(f"snapshot format {snap.format}, this hub reads {FORMAT}")
        if snap.schema != self.schema:
            raise SnapshotRejected(f"snapshot schema {snap.schema}, this hub's state is {self.schema}")
        if snap.config != config_digest(config):
            raise SnapshotRejected("the snapshot was folded with other core settings (HiveConfig)")

    def restore(self, snap: Snapshot, hive: HiveState) -> None:
        """Check ``snap`` and load it into ``hive`` (a fresh one, config set).
        Raises SnapshotRejected."""
        self.check(snap, hive.config)
        self.decode_into(snap.body, hive)
        if hive.sequence != snap.sequence:  # (the caller drops ``hive`` on a rejection)
            raise SnapshotRejected(f"the snapshot says sequence {snap.sequence} but holds {hive.sequence}")


_CODECS: dict[type[HiveState], StateCodec] = {}


def codec(hive_cls: type[HiveState] = Hive) -> StateCodec:
    """The codec of ``hive_cls``, built on first use (parsing ``__init__`` takes ms)."""
    c = _CODECS.get(hive_cls)
    if c is None:
        c = _CODECS[hive_cls] = StateCodec.build(hive_cls)
    return c
