"""What each ops program's result must look like when it reaches the control machine.

A host is not trusted: its JSON document is checked on arrival (:func:`check_result`)
against the contract (``ok``/``changed`` real booleans, ``error`` a string or null,
``data`` an object) and its program's schema below (types, ranges, required keys,
list items; numbers are finite because :func:`fleetops.ship.run.parse_document` rejects
NaN/Infinity). A result that does not fit raises :class:`SchemaError` naming the
field, e.g. ``result.data.mounts[2].size_bytes: expected an integer, got "abc"``;
the host is then ``failed`` and the run goes on. Keys a schema does not name are
allowed (newer programs may add some) but must nest at most ``MAX_DEPTH`` deep.

The checker is a few small classes (stdlib only): ``Int``, ``Num``, ``Str``,
``Bool``, ``List``, ``Obj``, ``Anything``, ``Ip``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32
BIG = 2**63 - 1


class SchemaError(ValueError):
    """A value that does not fit; ``str()`` is ``path: message``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Spec:
    """Base: ``null`` allows None."""

    what = "a value"

    def __init__(self, null: bool = False) -> None:
        self.null = null

    def check(self, value: Any, path: str) -> None:
        if value is None:
            if not self.null:
                raise SchemaError(path, f"expected {self.what}, got null")
            return
        self._check(value, path)

    def _check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def fail(self, value: Any, path: str) -> SchemaError:
        return SchemaError(path, f"expected {self.what}, got {_shown(value)}")


class Anything(Spec):
    """Any JSON value nested at most ``MAX_DEPTH`` deep (fields no schema names)."""

    what = "a JSON value"

    def __init__(self) -> None:
        super().__init__(null=True)

    def _check(self, value: Any, path: str) -> None:
        stack = [(value, 0)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, dict | list):
                if depth >= MAX_DEPTH:
                    raise SchemaError(path, f"nested deeper than {MAX_DEPTH} levels")
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)


ANY = Anything()


class Bool(Spec):
    what = "a boolean"

    def _check(self, value: Any, path: str) -> None:
        if value is not True and value is not False:
            raise self.fail(value, path)


class Int(Spec):
    what = "an integer"

    def __init__(self, lo: int = 0, hi: int = BIG, null: bool = False) -> None:
        super().__init__(null)
        self.lo, self.hi = lo, hi

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not int:
            raise self.fail(value, path)
        if not self.lo <= value <= self.hi:
            raise SchemaError(path, f"expected {_range(self.lo, self.hi, value)}, got {value}")


class Num(Int):
    what = "a number"

    def _check(self, value: Any, path: str) -> None:
        if type(value) not in (int, float):
            raise self.fail(value, path)
        if not self.lo <= value <= self.hi:
            raise SchemaError(path, f"expected {_range(self.lo, self.hi, value)}, got {value:g}")


def _range(lo: float, hi: float, value: float) -> str:
    """The bound ``value`` broke: ``at least 0`` for -5, ``at most 2^63-1`` for 1e21."""
    if value > hi:
        return f"at most {hi:g}" if hi < BIG else "at most 2^63-1"
    return f"at least {lo:g}" if lo > -BIG else "at least -(2^63-1)"


class Str(Spec):
    what = "a string"

    def __init__(self, null: bool = False, choices: tuple[str, ...] | None = None,
                 pattern: str | None = None) -> None:
        super().__init__(null)
        self.choices = choices
        self.pattern = re.compile(pattern) if pattern else None

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not str:
            raise self.fail(value, path)
        if self.choices is not None and value not in self.choices:
            raise SchemaError(path, f"expected one of {', '.join(self.choices)}, "
                                    f"got {_shown(value)}")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise SchemaError(path, f"expected {self.pattern.pattern!r}, got {_shown(value)}")


class Ip(Str):
    what = "an IP address"

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not str:
            raise self.fail(value, path)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise self.fail(value, path) from None


class List(Spec):
    what = "a list"

    def __init__(self, item: Spec, null: bool = False) -> None:
        super().__init__(null)
        self.item = item

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not list:
            raise self.fail(value, path)
        check = self.item.check
        for index, item in enumerate(value):
            check(item, f"{path}[{index}]")


class Obj(Spec):
    """An object: named fields checked when present (``required`` ones must be),
    other fields allowed as :class:`Anything`."""

    what = "an object"

    def __init__(self, fields: Mapping[str, Spec], required: tuple[str, ...] = (),
                 null: bool = False) -> None:
        super().__init__(null)
        self.fields = dict(fields)
        self.required = required

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise self.fail(value, path)
        for key in self.required:
            if key not in value:
                raise SchemaError(f"{path}.{key}", "required field missing")
        fields = self.fields
        for key, item in value.items():
            fields.get(key, ANY).check(item, f"{path}.{key}")


def _o(required: tuple[str, ...] = (), null: bool = False, **fields: Spec) -> Obj:
    return Obj(fields, required, null)


S, S0, B0 = Str(), Str(null=True), Bool(null=True)
COUNT, COUNT0 = Int(), Int(null=True)
SECONDS0 = Num(0, 10**9, null=True)
# df's percentages are ceil(used * 100 / (used + avail)): never above 100, but below 0
# on a filesystem that reports more free blocks/inodes than it has (statvfs is unsigned,
# the differences are not).
PCT0 = Num(-BIG, 100, null=True)
SIGNED0 = Int(-BIG, BIG, null=True)
PID0 = Int(1, 2**31, null=True)
LEVELS = ("ok", "unknown", "warn", "crit")
MAC = Str(pattern=r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")

MOUNT = _o(("mountpoint",), mountpoint=S, device=S0, fstype=S0, size_bytes=COUNT0,
           used_bytes=SIGNED0, avail_bytes=COUNT0, use_pct=PCT0, inodes_total=COUNT0,
           inodes_used=SIGNED0, inodes_pct=PCT0, level=Str(null=True, choices=LEVELS),
           over=List(S, null=True), error=S0, dev=COUNT0)
DISKREPORT = _o(("mounts",), hostname=S0, generated=S0, mounts=List(MOUNT),
                over=List(S, null=True), worst_level=Str(null=True, choices=LEVELS),
                skipped=List(_o(mountpoint=S0, fstype=S0, reason=S0), null=True),
                saved_report=S0, source=Str(null=True, choices=("program", "df")))

CRON_ENTRY = _o(target=S0, path=S0, name=S0, managed_by=S0, foreign=B0, schedule=S0,
                user=S0, command=S0, disabled=B0, ignored=S0)
CRON = _o(target=S0, name=S0, path=S0, action=S0, diff=S0, backup=S0, user=S0,
          entries=List(CRON_ENTRY, null=True))

LIFECYCLE = _o(name=S0, state_dir=S0, running=B0, pid=PID0, stale_pid=PID0,
               uptime_s=SECONDS0, stopped_in_s=SECONDS0, mode=S0, already_running=B0,
               warning=S0, note=S0, args=List(S, null=True), lines=COUNT0,
               last_event=_o(null=True, msg=S0, result=S0),
               logs=_o(null=True, stdout=S0, stderr=S0),
               stdout=List(S, null=True), stderr=List(S, null=True))

IP = Ip()
SWEEP = _o(("alive", "no_reply"), backend=S0, mode=S0, targets=COUNT0,
           alive=List(_o(("ip",), ip=IP, rtt_ms=SECONDS0)), no_reply=List(IP),
           errors=List(_o(ip=IP, error=S0)), elapsed_s=SECONDS0,
           ports=List(Int(0, 65535)))
ARPSCAN = _o(("entries",), method=S0, targets=COUNT0,
             entries=List(_o(("ip", "mac"), ip=IP, mac=MAC)), no_reply=List(IP),
             not_on_link=List(IP), interfaces=List(S),
             elapsed_s=SECONDS0)

FILES = _o(path=S0, existed=B0, content_changed=B0, mode=S0, mode_before=S0, size=COUNT0,
           sha256=S0, check=B0, backup=S0, created_dir=S0, diff=S0)

SCHEMAS: dict[str, Spec] = {
    "diskreport": DISKREPORT, "cron": CRON, "watcher": LIFECYCLE, "dirsync": LIFECYCLE,
    "sweep": SWEEP, "arpscan": ARPSCAN, "files": FILES,
}



class _Shallow(Spec):
    """An object (or null) whose content another spec checks."""

    what = "an object"

    def _check(self, value: Any, path: str) -> None:
        if type(value) is not dict:
            raise self.fail(value, path)


CONTRACT = _o(("ok", "changed", "data", "error"), ok=Bool(), changed=Bool(), error=S0,
              data=_Shallow(null=True), program=S0)


def check_contract(doc: Any) -> None:
    """SchemaError unless ``doc`` has the contract's keys and types (data not looked into)."""
    CONTRACT.check(doc, "result")


def check_data(data: Any, program: str | None) -> None:
    """SchemaError unless ``data`` (a dict or None) fits ``program``'s schema (an
    unknown program: any JSON of bounded depth)."""
    if data is not None:
        SCHEMAS.get(program or "", ANY).check(data, "result.data")


def check_result(doc: Any, program: str | None) -> None:
    """Both checks: the contract, then the program's data."""
    check_contract(doc)
    check_data(doc["data"], program)
