"""Ansible host patterns and ``--limit`` over an :class:`~fleetops.inventory.load.Inventory`.

Follows ansible-core 2.19's ``InventoryManager.get_hosts`` (checked against it by
``tests/test_ansible_oracle.py``):

* A pattern is split on ``,``; a pattern without ``,`` is one element when it reads as a
  host address (``fe80::1``, ``web[1:3]``, ``db:2222``), else it is split on ``:`` and
  whitespace outside ``[...]``.
* Elements are applied unions first, then ``&`` intersections, then ``!`` exclusions,
  whatever their written order; a pattern of only ``&``/``!`` elements starts from ``all``.
* An element is ``all``/``*``, a group, a host, a glob (``web*``, ``db?``, ``[ab]*``) or
  ``~regex`` (``re.match``), matched against group names (in the order groups were
  declared; a group gives its hosts in the group's own order, see
  :attr:`fleetops.inventory.load.Group.hosts`) and then host names (declaration order).
* A subscript after any non-regex element picks by position in that list:
  ``g[0]``, ``g[-1]``, ``web*[1:3]`` (inclusive), ``g[2:]``, ``g[1-3]`` (old spelling).
  A single index out of range empties the whole selection, with a warning (Ansible
  raises an error that its CLIs report as "No hosts matched").
* The result keeps that order (first occurrence wins) - it is the order hosts run in.
* ``localhost``, ``127.0.0.1`` and ``::1`` not in the inventory name Ansible's implicit
  local host (``ansible_connection=local``), which is never part of ``all``.

An element that matches nothing is, as in Ansible, a warning on stderr and ignored;
``strict=True`` or ``ANSIBLE_HOST_PATTERN_MISMATCH=error`` makes it an error, ``ignore``
silences it. ``--limit`` is another pattern (also evaluated from ``all``) whose hosts
the result is filtered by; ``@file`` in a limit reads one element per line (blank lines
and ``#`` comments skipped). Unlike Ansible, an empty ``@file`` limits to no host
rather than all (a retry file with nothing in it must not rerun everything).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from fleetops.errors import InputError
from fleetops.inventory.source import read_text

if TYPE_CHECKING:
    from fleetops.inventory.load import Host, Inventory

__all__ = ["Element", "elements", "read_limit_file", "select"]

LOCALHOST = ("127.0.0.1", "localhost", "::1")
_SUBSCRIPT = re.compile(r"^(?P<base>.+)\[(?:(?P<index>-?\d+)|(?P<start>\d+)(?P<sep>[:-])(?P<end>\d*))\]$")
_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w-]|{_RANGE})*(?<![_-])"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I)
_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$|^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_PIECES = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")

Warn = Callable[[str], None]


class Element(NamedTuple):
    """One pattern element and where it was written (for error messages)."""

    text: str
    source: str
    path: str | None = None
    line: int | None = None


def _stderr_warning(message: str) -> None:
    print(f"fleetops: warning: {message}", file=sys.stderr)


def select(
    inventory: Inventory,
    pattern: str = "all",
    limit: str | None = None,
    strict: bool = False,
    warn: Warn | None = None,
) -> list[Host]:
    """Hosts matching ``pattern`` and then ``limit``, in Ansible's execution order."""
    ctx = _Context(inventory, strict, warn or _stderr_warning)
    try:
        chosen = ctx.evaluate(elements(inventory, pattern, "pattern"))
        if limit is not None:
            items = elements(inventory, limit, "limit")
            keep = {id(h) for h in ctx.evaluate(items)} if items else set()
            chosen = [h for h in chosen if id(h) in keep]
    except _OutOfRange as exc:
        ctx.warn(f"{exc}: no host selected")
        return []
    return chosen


class _OutOfRange(Exception):
    """A single subscript past the end: Ansible drops the whole selection."""


def elements(inventory: Inventory, pattern: str, kind: str = "pattern") -> list[Element]:
    """Split a pattern into its elements, reading ``@file`` ones when ``kind`` is limit."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError(f"empty host {kind}")
    source = f"{kind} '{pattern}'"
    found: list[Element] = []
    files = 0
    for piece in split_pattern(pattern):
        if kind == "limit" and piece.startswith("@"):
            found.extend(read_limit_file(piece[1:]))
            files += 1
        else:
            found.append(Element(piece, source))
    if not found and not files:
        raise InputError(f"empty host {kind} '{pattern}'")
    return found


def split_pattern(pattern: str) -> list[str]:
    """Ansible's ``split_host_pattern``: ``,`` always; else ``:`` unless an address."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _is_address(pattern.strip()):
        parts = [pattern]
    else:
        parts = _PIECES.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _is_address(text: str) -> bool:
    match = _HOSTPORT.match(text)
    if match:
        text = match.group(1) or match.group(3) or ""
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(text))


def read_limit_file(path: str) -> list[Element]:
    """Elements of a retry/limit file: one per line, blanks and ``#`` comments skipped."""
    if not path:
        raise InputError("'@' in a limit must be followed by a file name")
    text = read_text(path, "limit file")
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            found.append(Element(line, "limit file", path, number))
    return found


def _fail(item: Element, message: str) -> InputError:
    if item.path is not None:
        return InputError(f"{message} in {item.source}", path=item.path, line=item.line)
    return InputError(f"{message} in {item.source}")


class _Context:
    """One evaluation: the inventory, the mismatch policy and a per-call match cache."""

    def __init__(self, inventory: Inventory, strict: bool, warn: Warn):
        self.inv = inventory
        policy = os.environ.get("ANSIBLE_HOST_PATTERN_MISMATCH", "warning").strip().lower()
        self.policy = "error" if strict else policy
        self.warn = warn
        self.cache: dict[str, list[Host]] = {}

    def evaluate(self, items: list[Element]) -> list[Host]:
        """Ansible's ``_evaluate_patterns`` after ``order_patterns``, deduplicated."""
        regular = [e for e in items if e.text[0] not in "&!"]
        ordered = (
            (regular or [Element("all", items[0].source if items else "")])
            + [e for e in items if e.text[0] == "&"]
            + [e for e in items if e.text[0] == "!"]
        )
        hosts: list[Host] = []
        for item in ordered:
            if item.text in self.inv.index:
                hosts.append(self.inv.host(item.text))
                continue
            that = self.match(item)
            if item.text[0] == "!":
                drop = {id(h) for h in that}
                hosts = [h for h in hosts if id(h) not in drop]
            elif item.text[0] == "&":
                keep = {id(h) for h in that}
                hosts = [h for h in hosts if id(h) in keep]
            else:
                present = {h.name for h in hosts}
                hosts.extend(h for h in that if h.name not in present)
        seen: set[int] = set()
        return [h for h in hosts if not (id(h) in seen or seen.add(id(h)))]

    def match(self, item: Element) -> list[Host]:
        term = item.text[1:].strip() if item.text[0] in "&!" else item.text
        if not term:
            raise _fail(item, f"empty element '{item.text}'")
        if term not in self.cache:
            self.cache[term] = self._match_one(term, item)
        return self.cache[term]

    def _match_one(self, term: str, item: Element) -> list[Host]:
        expr, subscript = term, None
        match = _SUBSCRIPT.match(term) if term[0] != "~" else None
        if match:
            expr = match["base"]
            if match["index"] is not None:
                subscript = (int(match["index"]), None)
            else:
                subscript = (int(match["start"]), int(match["end"]) if match["end"] else -1)
                if match["sep"] == "-" and self.policy != "ignore":
                    self.warn(f"'{term}': use [x:y] inclusive subscripts, as Ansible asks")
        hosts = self._enumerate(expr, item)
        if not hosts or subscript is None:
            return hosts
        start, end = subscript
        if end is not None:
            return hosts[start : (len(hosts) if end == -1 else end + 1)]
        if not -len(hosts) <= start < len(hosts):
            message = f"'{term}' is out of range ({expr} has {len(hosts)} hosts)"
            if self.policy == "error":
                raise _fail(item, message)
            raise _OutOfRange(f"{message} in {item.source}")
        return [hosts[start]]

    def _enumerate(self, expr: str, item: Element) -> list[Host]:
        """Ansible's ``_enumerate_matches``: matching groups' hosts, then matching hosts."""
        inv = self.inv
        rx = self._compile(expr, item)
        groups = [name for name in inv.groups if rx.match(name)]
        results: list[Host] = []
        for name in groups:
            results.extend(inv.host(h) for h in inv.groups[name].hosts)
        if not groups or expr[0] == "~" or any(c in expr for c in ".?*["):
            results.extend(inv.host(name) for name in inv.index if rx.match(name))
        if not results and expr in LOCALHOST:
            implicit = inv.implicit_localhost(expr)
            if implicit is not None:
                results.append(implicit)
        if not results and not groups and expr != "all":
            self._mismatch(f"'{expr}' matches no host or group", item)
        return results

    def _compile(self, expr: str, item: Element) -> re.Pattern[str]:
        if expr[0] != "~":
            return re.compile(fnmatch.translate(expr))
        try:
            return re.compile(expr[1:])
        except re.error as exc:
            raise _fail(item, f"bad regular expression '{expr}': {exc}") from None

    def _mismatch(self, message: str, item: Element) -> None:
        if self.policy == "error":
            raise _fail(item, message)
        if self.policy != "ignore":
            where = f"{item.path}:{item.line}: " if item.path else ""
            self.warn(f"{where}{message} in {item.source}, ignoring it")
