"""Ansible connection variables beyond address/port/user/key: honoured or refused.

- ``ansible_ssh_args``, ``ansible_ssh_common_args``, ``ansible_ssh_extra_args``: split
  with shlex; ``-o Key=Value`` / ``-oKey=Value`` / ``-o "Key Value"``, ``-J hops``,
  ``-i file``, ``-p port``, ``-l user``, ``-F file`` are applied as ssh applies its
  command line (first value wins, before any config file); ``-C`` and ``-q`` are
  accepted and ignored; anything else is refused.
- password: ``fleetops_password``, ``ansible_password``, ``ansible_ssh_pass``,
  ``ansible_ssh_password``; become password: ``fleetops_become_password``,
  ``ansible_become_password``, ``ansible_become_pass``.
- ``ansible_become_method``: ``sudo`` only. ``ansible_become_exe`` and
  ``ansible_become_flags`` are refused.
- ``ansible_connection``: ``ssh``/``paramiko``/``smart`` -> ``ssh``, ``local``; other
  plugins are refused.
- ``ansible_host_key_checking`` / ``ansible_ssh_host_key_checking`` false ->
  ``-o StrictHostKeyChecking=no``; ``ansible_timeout`` / ``ansible_ssh_timeout`` ->
  ``-o ConnectTimeout=N``, placed where Ansible places them.
- ``fleetops_ssh_config``: like ``ssh -F``; ``fleetops_proxy_command``: like
  ``-o ProxyCommand=...``.

A bad value raises ValueError with a one-line reason (the caller adds var and file:line).
"""

from __future__ import annotations

import os
import shlex
from functools import lru_cache
from typing import Any

__all__ = ["SSH_ARG_VARS", "connection_vars", "parse_ssh_args"]

SSH_ARG_VARS = ("ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args")
_WITH_VALUE = {"o": None, "J": "ProxyJump", "i": "IdentityFile", "p": "Port", "l": "User",
               "F": None}
_IGNORED_FLAGS = ("-C", "-q")
_CONNECTIONS = {"ssh": "ssh", "paramiko": "ssh", "smart": "ssh", "paramiko_ssh": "ssh",
                "local": "local"}


@lru_cache(maxsize=256)
def parse_ssh_args(text: str) -> tuple[tuple[str, str], ...]:
    """ssh command-line words to ``(kind, value)`` in order: ``("o", "Key=Value")`` or
    ``("F", path)``. ValueError names an unsupported word."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot be split like a shell line: {exc}") from None
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word in _IGNORED_FLAGS:
            continue
        if len(word) < 2 or word[0] != "-" or word[1] not in _WITH_VALUE:
            raise ValueError(f"{word!r} is not supported by fleetops "
                             "(only -o, -J, -i, -p, -l, -F, -C, -q)")
        flag, value = word[1], word[2:]
        if not value:
            if i >= len(words):
                raise ValueError(f"{word} needs a value")
            value = words[i]
            i += 1
        if flag == "F":
            out.append(("F", os.path.expanduser(value)))
        elif flag == "o":
            out.append(("o", value))
        else:
            out.append(("o", f"{_WITH_VALUE[flag]}={_quote_value(value)}"))
    return tuple(out)


def _quote_value(value: str) -> str:
    """A value for a config line: one word even with spaces or quotes."""
    if value and not any(c in value for c in " \t'\"\\#"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value)


def _flag(value: Any) -> bool:
    text = str(value).strip().lower() if isinstance(value, str | int | bool) else None
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n"):
        return False
    raise ValueError(f"must be a boolean (yes/no/true/false), got {value!r}")


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValueError(f"must be a whole number of seconds, got {value!r}")
    return int(value)


def _first(values: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        if values.get(key) is not None:
            return key, values[key]
    return None


def connection_vars(values: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
    """The extra connection settings of merged host vars, or ``(var, problem)``."""
    out: dict[str, Any] = {"ssh_args": ()}
    simple = (
        ("password", ("fleetops_password", "ansible_password", "ansible_ssh_pass",
                      "ansible_ssh_password")),
        ("become_password", ("fleetops_become_password", "ansible_become_password",
                             "ansible_become_pass")),
        ("ssh_config", ("fleetops_ssh_config",)),
        ("proxy_command", ("fleetops_proxy_command",)),
    )
    for attr, keys in simple:
        found = _first(values, keys)
        if found is not None:
            try:
                out[attr] = _text(found[1])
            except ValueError as exc:
                return found[0], str(exc)
    for key in ("ansible_become_exe", "ansible_become_flags"):
        if values.get(key) is not None:
            return key, "is not supported by fleetops (it runs sudo with its own flags)"
    method = values.get("ansible_become_method")
    if method is not None and method != "sudo":
        return "ansible_become_method", f"{method!r} is not supported by fleetops (only sudo)"
    for attr, keys in (("host_key_checking", ("ansible_ssh_host_key_checking",
                                              "ansible_host_key_checking")),
                       ("timeout", ("ansible_ssh_timeout", "ansible_timeout"))):
        found = _first(values, keys)
        if found is not None:
            try:
                out[attr] = (_flag(found[1]) if attr == "host_key_checking"
                             else _seconds(found[1]))
            except ValueError as exc:
                return found[0], str(exc)
    connection = values.get("ansible_connection")
    if connection is not None:
        if not isinstance(connection, str) or connection not in _CONNECTIONS:
            return "ansible_connection", (f"{connection!r} is not supported by fleetops "
                                          "(ssh, paramiko, smart or local)")
        out["connection"] = _CONNECTIONS[connection]
    args: list[tuple[str, str, str]] = []
    for key in SSH_ARG_VARS:
        if values.get(key) is None:
            continue
        try:
            args += [(kind, value, key) for kind, value in parse_ssh_args(_text(values[key]))]
        except ValueError as exc:
            return key, str(exc)
    for kind, value, key in args:
        problem = _check_option(value) if kind == "o" else None
        if problem:
            return key, problem
    out["ssh_args"] = tuple(args)
    return out


def _check_option(text: str) -> str | None:
    """Why ``-o text`` is refused (bad syntax, unknown or refused keyword), or None."""
    from fleetops.config.parse import IGNORED, REFUSED, SPELLING, SUPPORTED, parse_line

    try:
        line = parse_line(text, "-o", 0)
    except ValueError as exc:
        return f"-o {text!r}: {getattr(exc, 'message', exc)}"
    if line is None:
        return f"-o {text!r}: empty option"
    kw = line.keyword
    if kw in ("host", "match", "include") or kw not in SUPPORTED | IGNORED.keys() | REFUSED.keys():
        return f"-o {text!r}: Bad configuration option: {kw}"
    harmless, why = REFUSED.get(kw, (None, ""))
    if harmless is not None and line.args[0].lower() not in harmless:
        return f"-o {SPELLING.get(kw, kw)} is not supported by fleetops ({why})"
    return None
