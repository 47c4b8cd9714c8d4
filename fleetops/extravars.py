"""``-e/--extra-vars``: the highest-precedence variables of a playbook run, as Ansible reads them.

Each ``-e`` value is one of (ansible-core ``load_extra_vars``):

* ``@FILE``: a YAML (or JSON) file holding a mapping;
* ``{...}`` or ``[...]``: inline YAML/JSON that must be a mapping;
* ``key=value key2="two words"``: shell-like words, each ``key=value`` (values stay strings,
  as Ansible's ``parse_kv`` leaves them).

Several ``-e`` merge left to right, a later key replacing an earlier one at the top level
(Ansible's default ``hash_behaviour=replace``). Stricter than Ansible, documented: a word
without ``=`` (Ansible would keep it as ``_raw_params``) and a name that is not an
identifier are refused. Errors: a bad value is :class:`~fleetops.errors.OptionError`
(exit 5); a bad ``@FILE`` is :class:`~fleetops.errors.InputError` naming the file and line
(exit 4). Values may hold Jinja (``{{ inventory_hostname }}``): they are rendered per host.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

from fleetops.errors import InputError, OptionError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FLAG = "-e/--extra-vars"


def parse_kv(text: str) -> dict[str, str]:
    """``a=1 b="x y"`` -> ``{"a": "1", "b": "x y"}``; OptionError on a word without ``=``."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError as exc:
        raise OptionError(f"{FLAG}: {text!r}: {exc}") from None
    values: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise OptionError(f"{FLAG}: {word!r} is not key=value (use key=value words, "
                              f"a JSON/YAML mapping, or @file)")
        values[key] = value
    return values


def _load_yaml(text: str, path: str) -> Any:
    from fleetops.playbook import parse_yaml

    return parse_yaml(text, path)


def _from_file(name: str) -> Any:
    if not name:
        raise OptionError(f"{FLAG}: '@' needs a file name")
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read(16 * 1024 * 1024 + 1)
    except FileNotFoundError:
        raise InputError("extra vars file not found", name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the extra vars file: {exc}", name) from None
    if len(text) > 16 * 1024 * 1024:
        raise InputError("extra vars file is over 16 MiB", name)
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
    for key in data:
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
