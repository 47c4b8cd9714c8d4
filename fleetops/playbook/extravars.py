"""``-e/--extra-vars``: the highest-precedence variables of a playbook run, as Ansible reads them.

Each ``-e`` value is one of (ansible-core ``load_extra_vars``):

* ``@FILE``: a YAML (or JSON) file holding a mapping;
* ``{...}`` or ``[...]``: inline YAML/JSON that must be a mapping;
* ``key=value key2="two words"``: shell-like words, each ``key=value`` (values stay strings,
  as Ansible's ``parse_kv`` leaves them).

Several ``-e`` merge left to right, a later key replacing an earlier one at the top level
(Ansible's default ``hash_behaviour=replace``). Stricter than Ansible, documented: a word
without ``=`` (Ansible would keep it as ``_raw_params``) and a name that is not an
identifier are refused, and so are ``ansible_*`` and fleetops' connection variables
(Ansible would connect with them; fleetops takes them from the inventory only). Errors: a bad value is :class:`~fleetops.errors.OptionError`
(exit 5); a bad ``@FILE`` is :class:`~fleetops.errors.InputError` naming the file and line
(exit 4). Values may hold Jinja (``{{ inventory_hostname }}``): they are rendered per host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fleetops.errors import InputError, OptionError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FLAG = "-e/--extra-vars"


_ESCAPES = re.compile(r"\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[\\'\"abfnrtv])")
_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n",
           "r": "\r", "t": "\t", "v": "\v"}


def _decode(match: re.Match[str]) -> str:
    code = match.group(1)
    return _SIMPLE[code] if code in _SIMPLE else chr(int(code[1:], 16))


def split_words(text: str) -> list[str]:
    """Ansible's ``split_args`` for one line: blanks split words, except inside quotes and
    Jinja blocks (``{{ }}``, ``{% %}``, ``{# #}``); quotes are kept for :func:`_unquote`."""
    words: list[str] = []
    current: list[str] = []
    quote, depth, i = "", 0, 0
    while i < len(text):
        ch, pair = text[i], text[i:i + 2]
        if quote:
            if ch == "\\" and i + 1 < len(text):
                current.append(pair)
                i += 2
                continue
            quote = "" if ch == quote else quote
        elif pair in ("{{", "{%", "{#"):
            depth += 1
            current.append(pair)
            i += 2
            continue
        elif pair in ("}}", "%}", "#}") and depth:
            depth -= 1
            current.append(pair)
            i += 2
            continue
        elif ch in "'\"" and not depth:
            quote = ch
        elif ch.isspace() and not depth:
            if current:
                words.append("".join(current))
                current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if quote:
        raise OptionError(f"{FLAG}: {text!r}: no closing quotation")
    if current:
        words.append("".join(current))
    return words


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0] and value[-2] != "\\":
        return value[1:-1]
    return value


def parse_kv(text: str) -> dict[str, str]:
    """``a=1 b="x y"`` -> ``{"a": "1", "b": "x y"}`` (ansible-core ``parse_kv``); OptionError
    on a word without ``=`` (Ansible would keep it as ``_raw_params``)."""
    values: dict[str, str] = {}
    for word in split_words(text):
        decoded = _ESCAPES.sub(_decode, word)
        pos = next((i for i, ch in enumerate(decoded) if ch == "=" and i > 0
                    and decoded[i - 1] != "\\"), None)
        if pos is None:
            raise OptionError(f"{FLAG}: {word!r} is not key=value (use key=value words, "
                              f"a JSON/YAML mapping, or @file)")
        values[decoded[:pos].strip()] = _unquote(decoded[pos + 1:].strip())
    return values


def _load_yaml(text: str, path: str) -> Any:
    from fleetops.playbook.yaml import parse_yaml

    return parse_yaml(text, path)


def _from_file(name: str) -> Any:
    if not name:
        raise OptionError(f"{FLAG}: '@' needs a file name")
    from fleetops.inventory.source import read_text

    # a regular file only: a FIFO would block the run forever, /dev/zero read 16 MiB
    text = read_text(name, "extra vars file")
    return _load_yaml(text, name)


def one(value: str) -> dict[str, Any]:
    """One ``-e`` value as a mapping (see the module doc)."""
    text = value.strip()
    if not text:
        return {}
    if text.startswith("@"):
        data, where = _from_file(text[1:]), text[1:]
    elif text[0] in "/.":
        raise OptionError(f"{FLAG}: prepend the file name {text!r} with '@'")
    elif text[0] in "[{":
        try:
            data = _load_yaml(text, "--extra-vars")
        except InputError as exc:
            raise OptionError(f"{FLAG}: {exc}") from None
        where = None
    else:
        data, where = parse_kv(text), None
    if not isinstance(data, dict):
        message = f"{value!r} could not be made into a mapping"
        if where:
            raise InputError(f"extra vars must be a mapping, not {type(data).__name__}", where)
        raise OptionError(f"{FLAG}: {message}")
    from fleetops.playbook.keys import CONNECTION_HINT, is_connection_var

    for key in data:
        if isinstance(key, str) and is_connection_var(key):
            raise OptionError(f"{FLAG}: {key!r}: {CONNECTION_HINT}")
        if not isinstance(key, str) or not _IDENT.match(key):
            message = f"variable name {key!r} is not an identifier"
            if where:
                raise InputError(message, where)
            raise OptionError(f"{FLAG}: {message}")
    return data


def parse_extra_vars(values: Iterable[str] | str | None) -> dict[str, Any]:
    """Every ``-e`` value merged left to right (a later key wins)."""
    if values is None:
        return {}
    if isinstance(values, str):
        values = [values]
    merged: dict[str, Any] = {}
    for value in values:
        merged.update(one(value))
    return merged
