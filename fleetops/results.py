"""Per-host results, each program's typed data, and the aggregated run result.

Words (docs/architecture.md): a *program* runs on a host (``ops/``) and answers with
one JSON document whose ``data`` becomes a :class:`ProgramData`; an *action* is a
playbook step; a *task* is an invoke command. Each run ends with one
:class:`HostResult` per host, collected in a :class:`RunResult`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from fleetops.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE

Status = Literal["ok", "changed", "failed", "unreachable", "skipped"]
STATUSES: tuple[Status, ...] = ("ok", "changed", "failed", "unreachable", "skipped")
D = TypeVar("D", bound="ProgramData")
_PROGRAM_DATA: dict[str, type[ProgramData]] = {}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, float, bool, type(None)})
_set = object.__setattr__
_TYPED_KEYS = frozenset({"data", "truncated", "discarded_bytes", "uploaded_bytes", "diff",
                         "summary"})


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ProgramData(Mapping[str, Any]):
    """A program's ``data`` object, typed: built once from the checked document
    (:meth:`from_json`), never edited in place (frozen), written back byte-identical
    (:meth:`to_json`: the same keys in the same order, unknown keys kept).

    A subclass per program is a ``@dataclass(frozen=True, slots=True, kw_only=True,
    eq=False)`` whose fields are named exactly as the JSON keys, each defaulting to
    ``None`` (a key the document lacks stays absent in :meth:`to_json`);
    ``NESTED = {"entries": CronEntry}`` types the objects in a list (or one object) of
    that key. Register it with ``@program_data("cron")`` so
    :func:`fleetops.ship.run.classify` builds it; this base class itself is the
    untyped form (every key in ``_more``), used for a program with no class.

    Compatibility: a read-only ``Mapping`` of the JSON values (``data["path"]``,
    ``data.get("mounts")`` give what the document had: lists and dicts, never records),
    equal to a ``dict`` holding the same document. Built in code rather than from a
    document, every field is a key, in field order (``replace`` keeps the keys; use
    :meth:`evolve` to add one).
    """

    NESTED: ClassVar[dict[str, type[ProgramData]]] = {}
    _order: tuple[str, ...] = field(default=None, repr=False)  # type: ignore[assignment]
    _more: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self._order is None:  # built in code, not from a document
            object.__setattr__(self, "_order", (*self.field_names(), *self._more))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The typed keys, in declaration order (computed once per class)."""
        names = _FIELD_NAMES.get(cls)
        if names is None:
            fields = [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]
            if any(f.default is not None for f in fields):  # also a default_factory
                raise TypeError(f"{cls.__name__}: ProgramData fields must default to None")
            names = _FIELD_NAMES[cls] = tuple(f.name for f in fields)
        return names

    @classmethod
    def from_json(cls: type[D], doc: Mapping[str, Any]) -> D:
        """The typed form of a checked ``data`` object (values are not re-checked:
        :mod:`fleetops.ship.schemas` did that on arrival)."""
        known, nested = cls.field_names(), cls.NESTED
        more = {k: v for k, v in doc.items() if k not in known}
        # as __init__ would with every field given, minus its per-field overhead (the
        # disk report builds a record per mount of every host)
        record = object.__new__(cls)
        _set(record, "_order", tuple(doc))
        _set(record, "_more", more)
        get = doc.get
        for key in known:
            value = get(key)
            _set(record, key, cls._typed(key, value) if key in nested else value)
        return record

    @classmethod
    def _typed(cls, key: str, value: Any) -> Any:
        record = cls.NESTED.get(key)
        if record is None:
            return value
        if isinstance(value, list):
            return tuple(record.from_json(v) if isinstance(v, dict) else v for v in value)
        return record.from_json(value) if isinstance(value, dict) else value

    def to_json(self) -> dict[str, Any]:
        """The JSON object: the document's keys in its order (fresh lists and dicts)."""
        more, doc = self._more, {}
        for key in self._order:
            value = more[key] if key in more else getattr(self, key)
            doc[key] = value if type(value) in _SCALARS else _plain(value)
        return doc

    def evolve(self: D, **changes: Any) -> D:
        """A copy with ``changes``; a key the document lacked is added at the end."""
        order = self._order + tuple(k for k in changes if k not in self._order)
        return dataclasses.replace(self, _order=order, **changes)

    def without(self: D, *keys: str) -> D:
        """A copy without ``keys`` (typed ones become None and leave the document)."""
        typed = {k: None for k in keys if k in self.field_names()}
        more = {k: v for k, v in self._more.items() if k not in keys}
        order = tuple(k for k in self._order if k not in keys)
        return dataclasses.replace(self, _order=order, _more=more, **typed)

    def diff_text(self) -> str | None:
        """What the program changed as a diff (see :mod:`fleetops.ship.diffs`), None if
        it reports none; a program class that changes files overrides this."""
        return None

    def cast(self, cls: type[D]) -> D:
        """This document as ``cls`` (e.g. an untyped one as its program's class)."""
        return self if type(self) is cls else cls.from_json(self.to_json())

    # -- read-only Mapping of the JSON values --------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in self._more:
            return _plain(self._more[key])
        if key in self._order:
            return _plain(getattr(self, key))
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._order

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            mine = self.to_json()
            theirs = other.to_json() if isinstance(other, ProgramData) else dict(other)
            return mine == theirs and list(mine) == list(theirs)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def _plain(value: Any) -> Any:
    """JSON values out of typed ones: records -> dicts, tuples -> lists (copies)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, ProgramData):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def program_data(*programs: str):
    """Class decorator: ``programs``' data documents are built as this class."""
    def register(cls: type[D]) -> type[D]:
        for name in programs:
            _PROGRAM_DATA[name] = cls
        return cls
    return register


def data_class(program: str | None) -> type[ProgramData]:
    """The registered class of ``program``'s data (the untyped base if none)."""
    return _PROGRAM_DATA.get(program or "", ProgramData)


def build_data(program: str | None, doc: Mapping[str, Any] | None) -> ProgramData:
    """``program``'s checked ``data`` document (None: empty) as its typed class."""
    return data_class(program).from_json(doc or {})


@dataclass(slots=True)
class HostResult:
    """Exactly one per host and run.

    Its JSON entry (:meth:`to_json`), fixed field names in this order, each only when
    set: ``data`` (the program's :class:`ProgramData`), ``truncated`` (streams cut at
    ``--max-output``) and ``discarded_bytes``, ``uploaded_bytes`` (zipapp bytes sent),
    ``diff`` (unified, what a program changed), ``summary`` (one line), then the keys of
    ``extra`` (a compatibility path for callers that still add their own keys), then
    ``status, rc, stdout, stderr, duration, reason``."""

    name: str
    status: Status
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    data: ProgramData | None = None
    truncated: tuple[str, ...] | None = None
    discarded_bytes: Mapping[str, int] | None = None
    uploaded_bytes: int | None = None
    diff: str | None = None
    summary: str | None = None

    def __post_init__(self) -> None:
        """Compatibility: ``extra={"data": ..., "truncated": ...}`` sets the typed fields."""
        if not self.extra.keys() & _TYPED_KEYS:
            return
        extra = dict(self.extra)
        if "data" in extra:
            value = extra.pop("data")
            self.data = value if isinstance(value, ProgramData) else \
                ProgramData.from_json(value or {})
        if "truncated" in extra:
            self.truncated = tuple(extra.pop("truncated") or ())
            self.discarded_bytes = dict(extra.pop("discarded_bytes", None) or {})
        for key in ("uploaded_bytes", "diff", "summary"):
            if key in extra:
                setattr(self, key, extra.pop(key))
        self.extra = extra

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "unreachable")

    @property
    def data_json(self) -> dict[str, Any]:
        """The program's data as a JSON object (``{}`` when there is none)."""
        return {} if self.data is None else self.data.to_json()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.data is not None:
            doc["data"] = self.data.to_json()
        if self.truncated is not None:
            doc["truncated"] = list(self.truncated)
            doc["discarded_bytes"] = dict(self.discarded_bytes or {})
        for key in ("uploaded_bytes", "diff", "summary"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        doc.update(self.extra)
        doc.update(
            status=self.status,
            rc=self.rc,
            stdout=self.stdout,
            stderr=self.stderr,
            duration=round(self.duration, 3),
            reason=self.reason,
        )
        return doc


@dataclass(slots=True)
class RunResult:
    """All host results of one run, in inventory order."""

    hosts: dict[str, HostResult] = field(default_factory=dict)
    interrupted: bool = False
    elapsed: float = 0.0

    def add(self, result: HostResult) -> None:
        self.hosts[result.name] = result

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for result in self.hosts.values():
            counts[result.status] += 1
        return counts

    def names(self, *statuses: Status) -> list[str]:
        return [n for n, r in self.hosts.items() if r.status in statuses]

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        summary = self.summary
        if summary["failed"]:
            return EXIT_FAILED
        if summary["unreachable"]:
            return EXIT_UNREACHABLE
        return EXIT_OK

    def to_json(self, **top: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "hosts": {name: r.to_json() for name, r in self.hosts.items()},
            "summary": self.summary,
        }
        doc.update(top)
        return doc

    def dumps(self, **top: Any) -> str:
        """The run as strict JSON (RFC 8259: no NaN/Infinity; host text exact, escaped)."""
        return dumps_strict(self.to_json(**top), indent=2)

    def write_json(self, out: Any, **top: Any) -> None:
        """:meth:`dumps` written to ``out`` piece by piece: the document is never one
        string. With every host at ``--max-output`` of binary output, each byte becomes
        a 6-character ``\\udcNN`` escape: a whole-document string (and its encoded
        copy) took about 12x the captured bytes (9 hosts x 8 MiB: 914 MiB peak)."""
        encoder = json.JSONEncoder(allow_nan=False, default=str, indent=2)
        for chunk in encoder.iterencode(_finite(self.to_json(**top))):
            out.write(chunk)


def dumps_strict(doc: Any, **kwargs: Any) -> str:
    """``json.dumps`` with ``allow_nan=False``; a non-finite float that still got in
    (validated host data never has one) becomes ``null`` rather than losing the document."""
    try:
        return json.dumps(doc, allow_nan=False, default=str, **kwargs)
    except ValueError:
        return json.dumps(_finite(doc), allow_nan=False, default=str, **kwargs)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KiB' (binary units, for notes and reasons)."""
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} bytes"


def truncation(result: HostResult, discarded: dict[str, int]) -> HostResult:
    """Mark ``result`` as cut at ``--max-output``: JSON fields ``truncated`` (the
    streams, e.g. ``["stdout"]``) and ``discarded_bytes`` (stream -> bytes dropped),
    and a note in the reason."""
    streams = tuple(s for s in ("stdout", "stderr") if discarded.get(s))
    result.truncated = streams
    result.discarded_bytes = {s: discarded[s] for s in streams}
    note = "; ".join(f"{s} cut at --max-output, {human_bytes(discarded[s])} discarded"
                     for s in streams)
    result.reason = f"{result.reason}; {note}" if result.reason else note
    return result
