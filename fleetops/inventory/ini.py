"""Ansible INI inventories: sections, inline vars, host ranges and ``host:port``.

Parsing only: the text is fed, line by line, into the builder that
``fleetops.inventory.load`` passes in, which owns groups, hosts and their checks.

Follows ansible-core 2.19's ``ini`` inventory plugin:

* A host line is split like a shell line with comments (``shlex.split(line,
  comments=True)``): quotes are removed and ``#`` starts a comment, even inside a word.
* A value (host line or ``:vars``) is read with :func:`ast.literal_eval` when that
  succeeds, else kept as text: ``22`` and ``"22"`` -> int, ``True`` -> bool,
  ``"['/dev/sda']"`` -> list, ``[]`` -> list, ``yes`` -> str. Tuples and sets become
  lists, complex numbers and ``...`` text, as in Ansible.
* A ``:vars`` value is the whole text after the first ``=``, stripped - a ``# note``
  after it is part of the text unless the value is a Python literal (``5 # n`` -> 5).
* ``[g:children]`` may name a group declared later; one never declared is an error,
  as is ``[g:vars]`` for a group never declared.
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
import string
import warnings
from typing import TYPE_CHECKING, Any

from fleetops.errors import InputError

if TYPE_CHECKING:
    from fleetops.inventory.builder import _Builder

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_LINE = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")  # Ansible's 'groupname' pattern
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BRACKETED_PORT = re.compile(r"^\[([^\[\]]+)\]:([0-9]+)$")
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_MAX_RANGE = 100_000
_MAX_LITERAL = 100_000  # characters given to ast.literal_eval
_BLANKS = re.compile(r"[ \t\r\n]+")
_WORDS = ("True", "False", "None")
_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_DOTTED = re.compile(r"^[0-9]+(?:\.[0-9]+){2,}$")


def parse_ini(text: str, path: str, builder: _Builder) -> None:
    """Feed an INI inventory's groups, hosts and vars into ``builder``."""
    group, state = "ungrouped", "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        try:
            section = _SECTION.match(line)
            if section:
                group, state = _section(section, line, lineno, builder)
            elif line.startswith("[") and line.endswith("]"):
                raise ValueError(
                    f"bad section header {line}: expected [group], [group:vars] or "
                    "[group:children], with no spaces"
                )
            elif state == "hosts":
                _host_line(line, group, lineno, builder)
            elif state == "vars":
                key, value = parse_var_line(line)
                builder.set_group_var(group, key, value, lineno)
            else:
                child = _group_line(line)
                if child in builder.groups:
                    builder.add_child(group, child, lineno)
                else:
                    builder.pend(child, group, lineno)
        except ValueError as exc:
            raise InputError(str(exc), path=path, line=lineno) from None


def _section(match: re.Match[str], line: str, lineno: int, builder: _Builder) -> tuple[str, str]:
    """A ``[name]``/``[name:kind]`` header: Ansible's group creation and pending rules."""
    name, kind = match.group(1), match.group(2) or "hosts"
    if kind not in ("hosts", "vars", "children"):
        raise ValueError(
            f"section [{name}:{kind}] has unknown type '{kind}' (expected vars or children)"
        )
    if name not in builder.groups:
        if kind == "vars" and name not in builder.pending:
            builder.pending[name] = (builder.path, lineno, "vars", [])
        builder.group(name, lineno)
    if name in builder.pending and kind != "vars":
        if builder.pending[name][2] == "children":
            builder.resolve_pending(name)
        else:
            del builder.pending[name]
    if kind != "vars":
        builder.declare(name)
    return name, kind


def _group_line(line: str) -> str:
    match = _GROUP_LINE.match(line)
    if not match:
        raise ValueError(f"expected a group name in a :children section, got '{line}'")
    return match.group(1)


def _host_line(line: str, group: str, lineno: int, builder: _Builder) -> None:
    tokens = tokenize(line)
    if not tokens:
        return
    if tokens[0].endswith(":") and not _HOST_PORT.match(tokens[0]):
        raise ValueError(f"bad host '{tokens[0]}': a ':' must be followed by a port number")
    names, port = expand_host_pattern(tokens[0])
    host_vars: dict[str, Any] = {}
    for token in tokens[1:]:
        key, sep, raw = token.partition("=")
        if not sep:
            raise ValueError(f"expected key=value host variable, got '{token}'")
        if not _VAR_NAME.match(key):
            raise ValueError(f"bad variable name '{key}' in '{token}'")
        host_vars[key] = literal(raw)
    for name in names:
        builder.add_host(name, group, host_vars, lineno, port=port)


def tokenize(line: str) -> list[str]:
    """A host line's words, as Ansible splits them (``shlex.split(line, comments=True)``;
    without quotes or backslashes that is: cut at ``#``, split on blanks)."""
    if not any(c in line for c in "\"'\\"):
        return _BLANKS.split(line.partition("#")[0].strip()) if line[0] != "#" else []
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise ValueError(f"cannot split host line like a shell line: {exc}") from None


def literal(text: str) -> Any:
    """Ansible's INI value reading: ``ast.literal_eval`` when it succeeds, else the text."""
    if len(text) > _MAX_LITERAL or not text:
        return text
    if text[0].isalpha() and text not in _WORDS and not any(c in text[:4] for c in "'\"("):
        return text  # a bare word (not True/False/None, r'..', b'..', set()): no literal
    if _INT.match(text):
        return int(text)
    if _DOTTED.match(text):
        return text  # an IPv4 address or version: no literal
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    """Ansible's ``_parse_recursive_coerce_types_and_tag``: only YAML-like types."""
    if isinstance(value, list | tuple | set | frozenset):
        return [_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if value is ... or isinstance(value, complex):
        return "..." if value is ... else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def parse_var_line(line: str) -> tuple[str, Any]:
    """One ``key=value`` line of a ``[group:vars]`` section (the whole rest is the value)."""
    key, sep, raw = line.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"expected key=value, got '{line}'")
    if not _VAR_NAME.match(key):
        raise ValueError(f"bad variable name '{key}' in '{line}'")
    return key, literal(raw)


def expand_host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """``web[01:03].lan:2222`` -> (["web01.lan", "web02.lan", "web03.lan"], 2222)."""
    port = None
    match = _BRACKETED_PORT.match(pattern) or _HOST_PORT.match(pattern)
    if match:
        pattern, port = match.group(1), int(match.group(2))
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port} in host '{pattern}:{port}'")
    if not pattern:
        raise ValueError("empty host name")
    if "=" in pattern:
        raise ValueError(f"expected a host name, got '{pattern}'")
    if pattern.count(":") == 1 and "[" not in pattern:
        raise ValueError(f"bad port in host '{pattern}': expected host:number")
    if "[" not in pattern and "]" not in pattern:
        return [pattern], port
    return expand_range(pattern), port


def expand_range(pattern: str) -> list[str]:
    """Expand every ``[start:end]`` / ``[start:end:step]`` range in a host name.

    The limit of :data:`_MAX_RANGE` hosts applies to the whole product of a name's
    ranges (``h[0:999][0:999]`` is a million hosts, refused before any is built).
    """
    pieces: list[list[str]] = []
    total, rest = 1, pattern
    while "[" in rest or "]" in rest:
        start = rest.find("[")
        close = rest.find("]", start + 1)
        if start < 0 or close < 0 or rest.find("]") < start:
            raise ValueError(f"bad host range in '{pattern}': unbalanced brackets")
        items = _range_items(rest[start + 1 : close], pattern)
        total *= len(items)
        if total > _MAX_RANGE:
            raise ValueError(f"bad host range in '{pattern}': more than {_MAX_RANGE} hosts")
        pieces += [[rest[:start]], items]
        rest = rest[close + 1 :]
    pieces.append([rest])
    return ["".join(parts) for parts in itertools.product(*pieces)]


def _range_items(body: str, pattern: str) -> list[str]:
    parts = body.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(
            f"bad host range [{body}] in '{pattern}': expected [start:end] or [start:end:step]"
        )
    beg, end = parts[0], parts[1]
    step_text = parts[2] if len(parts) == 3 else "1"
    if not end:
        raise ValueError(f"bad host range [{body}] in '{pattern}': missing end value")
    if not step_text.isdigit() or int(step_text) < 1:
        raise ValueError(f"bad host range [{body}] in '{pattern}': step must be a positive number")
    step = int(step_text)
    letters = string.ascii_letters
    if len(beg) == 1 and len(end) == 1 and beg in letters and end in letters:
        if letters.index(beg) > letters.index(end):
            raise ValueError(f"bad host range [{body}] in '{pattern}': start is after end")
        return list(letters[letters.index(beg) : letters.index(end) + 1 : step])
    return _numeric_items(beg or "0", end, step, body, pattern)


def _numeric_items(beg: str, end: str, step: int, body: str, pattern: str) -> list[str]:
    if not (beg.isascii() and beg.isdigit() and end.isascii() and end.isdigit()):
        raise ValueError(
            f"bad host range [{body}] in '{pattern}': expected numbers or single letters"
        )
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and len(end) != width:
        raise ValueError(
            f"bad host range [{body}] in '{pattern}': zero-padded start and end must "
            "have the same width"
        )
    first, last = int(beg), int(end)
    if first > last:
        raise ValueError(f"bad host range [{body}] in '{pattern}': start is after end")
    if (last - first) // step >= _MAX_RANGE:
        raise ValueError(f"bad host range [{body}] in '{pattern}': more than {_MAX_RANGE} hosts")
    return [str(n).zfill(width) for n in range(first, last + 1, step)]
