"""Ansible host patterns and ``--limit`` over an :class:`~fleetops.inventory.Inventory`.

A pattern is a list of elements separated by ``,`` (or ``:`` outside brackets):

* ``all`` / ``*``, a group name, a host name;
* a glob over group and host names: ``web*``, ``lab0[1-4]``, ``db?.lan``;
* ``~regex`` (``re.match`` against group and host names);
* ``group[i]``, ``group[i:j]`` / ``group[i-j]`` (inclusive), ``group[i:]``: hosts of a
  group by position, only when the part before ``[`` is a group name (else a glob).

Prefix ``&`` intersects, ``!`` excludes. As in Ansible, unions are applied first,
then intersections, then exclusions, whatever their written order; a pattern of
only ``&``/``!`` elements starts from ``all``. The result is in inventory order.

An element matching nothing is an error unless it names a known (possibly empty)
group. ``--limit`` uses the same syntax and is applied to the pattern's result;
``@file`` in a limit reads one element per line (blank lines and ``#`` comments
skipped); separate it from other elements with ``,`` (a path may contain ``:``).
A piece between commas that names a host or group, or looks like an IPv6 address,
is not split on ``:``. Unlike Ansible, an empty ``@file`` limits to no host rather than all.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import TYPE_CHECKING, NamedTuple

from fleetops.errors import InputError
from fleetops.inventory_yaml import read_text

if TYPE_CHECKING:
    from fleetops.inventory import Host, Inventory

_GLOB = frozenset("*?[")
_SUBSCRIPT = re.compile(r"^(?P<base>.+)\[(?:(?P<index>-?\d+)|(?P<start>\d+)[:-](?P<end>\d*))\]$")


class Element(NamedTuple):
    """One pattern element and where it was written (for error messages)."""

    text: str
    source: str
    path: str | None = None
    line: int | None = None


def select(inventory: Inventory, pattern: str = "all", limit: str | None = None) -> list[Host]:
    """Hosts matching ``pattern`` and then ``limit``, in inventory order."""
    chosen = _evaluate(inventory, elements(inventory, pattern, "pattern"))
    if limit is not None:
        chosen &= _evaluate(inventory, elements(inventory, limit, "limit"))
    return [inventory.hosts[i] for i in sorted(chosen)]


def elements(inventory: Inventory, pattern: str, kind: str = "pattern") -> list[Element]:
    """Split a pattern into its elements, reading ``@file`` ones when ``kind`` is limit."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError(f"empty host {kind}")
    source = f"{kind} '{pattern}'"
    found: list[Element] = []
    files = 0
    for piece in pattern.split(","):
        piece = piece.strip()
        if kind == "limit" and piece.startswith("@"):
            found.extend(read_limit_file(piece[1:]))
            files += 1
        elif _exact(inventory, piece):
            found.append(Element(piece, source))
        else:
            found.extend(Element(part, source) for part in _split_colons(piece) if part)
    if not found and not files:
        raise InputError(f"empty host {kind} '{pattern}'")
    return found


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


def _exact(inventory: Inventory, piece: str) -> bool:
    """A whole comma-separated piece naming a host or group (maybe ``fe80::1``)."""
    bare = piece[1:] if piece[:1] in ("!", "&") else piece
    if bare in inventory.index or bare in inventory.groups:
        return True
    try:
        return ipaddress.ip_address(bare).version == 6
    except ValueError:
        return False


def _split_colons(piece: str) -> list[str]:
    """Split on ``:`` outside ``[...]``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(piece):
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0:
            parts.append(piece[start:i].strip())
            start = i + 1
    parts.append(piece[start:].strip())
    return parts


def _evaluate(inventory: Inventory, items: list[Element]) -> set[int]:
    """Ansible's order: unions, then ``&`` intersections, then ``!`` exclusions."""
    if not items:
        return set()
    unions = [e for e in items if e.text[0] not in "&!"]
    result: set[int] = set() if unions else set(range(len(inventory.hosts)))
    for item in unions:
        result |= _match(inventory, item.text, item)
    for item in items:
        if item.text[0] == "&":
            result &= _match(inventory, item.text[1:].strip(), item)
    for item in items:
        if item.text[0] == "!":
            result -= _match(inventory, item.text[1:].strip(), item)
    return result


def _fail(item: Element, message: str) -> InputError:
    if item.path is not None:
        return InputError(f"{message} in {item.source}", path=item.path, line=item.line)
    return InputError(f"{message} in {item.source}")


def _match(inventory: Inventory, term: str, item: Element) -> set[int]:
    if not term:
        raise _fail(item, f"empty element '{item.text}'")
    index = inventory.index
    if term in ("all", "*"):
        return set(range(len(inventory.hosts)))
    if term[0] == "~":
        return _regex(inventory, term, item)
    subscript = _SUBSCRIPT.match(term)
    if subscript and subscript["base"] in inventory.groups:
        return _subscript(inventory, subscript, item)
    if _GLOB.intersection(term):
        return _glob(inventory, term, item)
    hits: set[int] = set()
    group = inventory.groups.get(term)
    if group is not None:
        hits.update(index[name] for name in group.hosts)
    if term in index:
        hits.add(index[term])
    elif group is None:
        raise _fail(item, f"unknown host or group '{term}'")
    return hits


def _names_matching(inventory: Inventory, rx: re.Pattern[str]) -> set[int]:
    index = inventory.index
    hits = {i for name, i in index.items() if rx.match(name)}
    for name, group in inventory.groups.items():
        if rx.match(name):
            hits.update(index[host] for host in group.hosts)
    return hits


def _matches_any_group(inventory: Inventory, rx: re.Pattern[str]) -> bool:
    return any(rx.match(name) for name in inventory.groups)


def _glob(inventory: Inventory, term: str, item: Element) -> set[int]:
    rx = re.compile(fnmatch.translate(term))
    hits = _names_matching(inventory, rx)
    if not hits and not _matches_any_group(inventory, rx):
        raise _fail(item, f"'{term}' matches no host or group")
    return hits


def _regex(inventory: Inventory, term: str, item: Element) -> set[int]:
    try:
        rx = re.compile(term[1:])
    except re.error as exc:
        raise _fail(item, f"bad regular expression '{term}': {exc}") from None
    hits = _names_matching(inventory, rx)
    if not hits and not _matches_any_group(inventory, rx):
        raise _fail(item, f"'{term}' matches no host or group")
    return hits


def _subscript(inventory: Inventory, match: re.Match[str], item: Element) -> set[int]:
    members = inventory.groups[match["base"]].hosts
    if match["index"] is not None:
        position = int(match["index"])
        if not -len(members) <= position < len(members):
            raise _fail(
                item,
                f"'{match.group(0)}' is out of range: group '{match['base']}' has "
                f"{len(members)} hosts",
            )
        chosen = [members[position]]
    else:
        start = int(match["start"])
        end = int(match["end"]) + 1 if match["end"] else len(members)
        chosen = list(members[start:end])
    return {inventory.index[name] for name in chosen}
