"""Ansible INI inventories: sections, inline vars, host ranges and ``host:port``.

Parsing only: the text is fed, line by line, into the builder that
``fleetops.inventory`` passes in, which owns groups, hosts and their checks.

Values follow Ansible's INI rules: an unquoted value is read as a Python literal
when it is one (``22`` -> int, ``True`` -> bool, ``[1,2]`` -> list), otherwise it
stays a string (so ``yes``/``true`` stay strings). Unlike Ansible, a quoted value
(``port="22"``) always stays a string. A ``#`` starts a comment anywhere outside
quotes on host lines; on ``key=value`` lines of a ``:vars`` section only when it
follows whitespace (``url=http://x/#frag`` keeps its fragment).
"""

from __future__ import annotations

import ast
import itertools
import re
import string
from typing import TYPE_CHECKING, Any

from fleetops.errors import InputError

if TYPE_CHECKING:
    from fleetops.inventory import _Builder

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_LOOKS_LIKE_SECTION = re.compile(r"^\[.*\]\s*(?:[#;].*)?$")
_GROUP_LINE = re.compile(r"^([^:\]\s#;]+)\s*(?:[#;].*)?$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"""(?:[^\s"'\\#]+|\\.|"(?:[^"\\]|\\.)*"|'[^']*')+""")
_BRACKETED_PORT = re.compile(r"^\[([^\[\]]+)\]:([0-9]+)$")
_HOST_PORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_VAR_COMMENT = re.compile(r"\s#.*$")
_LITERAL_START = frozenset("-+0123456789[{(")
_MAX_RANGE = 100_000


def parse_ini(text: str, path: str, builder: _Builder) -> None:
    """Feed an INI inventory's groups, hosts and vars into ``builder``."""
    group, state = "ungrouped", "hosts"
    vars_only: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        try:
            if line[0] == "[" and _LOOKS_LIKE_SECTION.match(line):
                group, state = _section(line)
                builder.group(group, lineno)
                if state == "vars":
                    vars_only.setdefault(group, lineno)
                else:
                    builder.declare(group)
            elif state == "hosts":
                _host_line(line, group, lineno, builder)
            elif state == "vars":
                key, value = parse_var_line(line)
                builder.set_group_var(group, key, value, lineno)
            else:
                child = _group_line(line)
                builder.group(child, lineno)
                builder.declare(child)
                builder.add_child(group, child, lineno)
        except ValueError as exc:
            raise InputError(str(exc), path=path, line=lineno) from None
    for name, lineno in vars_only.items():
        if not builder.declared(name):
            raise InputError(
                f"section [{name}:vars] sets variables for group '{name}', "
                "which is never declared as [" + name + "] or in a :children section",
                path=path,
                line=lineno,
            )


def _section(line: str) -> tuple[str, str]:
    match = _SECTION.match(line)
    if not match:
        raise ValueError(
            f"bad section header {line.split(']')[0]}]: expected [group], [group:vars] "
            "or [group:children]"
        )
    name, kind = match.group(1), match.group(2) or "hosts"
    if kind not in ("hosts", "vars", "children"):
        raise ValueError(
            f"section [{name}:{kind}] has unknown type '{kind}' (expected vars or children)"
        )
    return name, kind


def _group_line(line: str) -> str:
    match = _GROUP_LINE.match(line)
    if not match:
        raise ValueError(f"expected a group name in a :children section, got '{line}'")
    return match.group(1)


def _host_line(line: str, group: str, lineno: int, builder: _Builder) -> None:
    tokens = tokenize(line)
    names, port = expand_host_pattern(_unquote(tokens[0])[0])
    host_vars: dict[str, Any] = {}
    if port is not None:
        host_vars["ansible_port"] = port
    for token in tokens[1:]:
        key, sep, raw = token.partition("=")
        if not sep:
            raise ValueError(f"expected key=value host variable, got '{token}'")
        if not _VAR_NAME.match(key):
            raise ValueError(f"bad variable name '{key}' in '{token}'")
        text, quoted = _unquote(raw)
        host_vars[key] = text if quoted else literal(text)
    for name in names:
        builder.add_host(name, group, host_vars, lineno)


def tokenize(line: str) -> list[str]:
    """Split a host line like shlex with comments, keeping the quotes in each token."""
    if not any(c in line for c in "\"'\\"):
        return line.partition("#")[0].split()
    tokens: list[str] = []
    pos, end = 0, len(line)
    while pos < end:
        if line[pos].isspace():
            pos += 1
            continue
        if line[pos] == "#":
            break
        match = _TOKEN.match(line, pos)
        if not match:
            raise ValueError(f"unterminated quote or trailing backslash in '{line[pos:]}'")
        if match.end() < end and line[match.end()] in "\"'\\":
            raise ValueError(f"unterminated quote or trailing backslash in '{line[pos:]}'")
        tokens.append(match.group(0))
        pos = match.end()
    return tokens


def _unquote(raw: str) -> tuple[str, bool]:
    """Remove shell-style quotes and escapes; say whether there were any."""
    if not any(c in raw for c in "\"'\\"):
        return raw, False
    out: list[str] = []
    for part in re.findall(r"""[^"'\\]+|\\.|"(?:[^"\\]|\\.)*"|'[^']*'""", raw):
        if part[0] == "'":
            out.append(part[1:-1])
        elif part[0] == '"':
            out.append(re.sub(r'\\(["\\])', r"\1", part[1:-1]))
        elif part[0] == "\\":
            out.append(part[1])
        else:
            out.append(part)
    return "".join(out), True


def literal(text: str) -> Any:
    """Ansible's INI value reading: a Python literal when it parses, else the string."""
    if text in ("True", "False", "None") or (text and text[0] in _LITERAL_START):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return text
    return text


def parse_var_line(line: str) -> tuple[str, Any]:
    """One ``key=value`` line of a ``[group:vars]`` section."""
    key, sep, raw = line.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ValueError(f"expected key=value, got '{line}'")
    if not _VAR_NAME.match(key):
        raise ValueError(f"bad variable name '{key}' in '{line}'")
    if raw[:1] in ("'", '"'):
        tokens = tokenize(raw)
        if len(tokens) != 1:
            raise ValueError(f"unexpected text after the quoted value in '{line}'")
        return key, _unquote(tokens[0])[0]
    return key, literal(_VAR_COMMENT.sub("", raw).rstrip())


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
