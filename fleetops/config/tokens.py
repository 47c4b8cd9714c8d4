"""ssh_config(5) TOKENS and ENVIRONMENT VARIABLES, and shell-safe ProxyCommand expansion.

Follows openssh-portable ``misc.c`` (``percent_expand``, ``percent_dollar_expand``,
``tilde_expand_filename``), ``ssh.c`` (``DEFAULT_CLIENT_PERCENT_EXPAND_ARGS``,
``ssh_connection_hash``) and ``sshconnect.c`` (``expand_proxy_command``). Errors are
ValueError with a one-line message.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import socket
from collections.abc import Mapping
from functools import lru_cache

__all__ = ["connection_hash", "dollar_expand", "expand_proxy_command", "percent_expand",
           "tilde_expand"]

_DOLLAR = re.compile(r"\$\{([^}]*)\}")


def percent_expand(text: str, tokens: Mapping[str, str]) -> str:
    """Replace ``%x`` by ``tokens['x']`` and ``%%`` by ``%``; an unknown ``%x`` or a
    trailing ``%`` is an error, as in OpenSSH."""
    if "%" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(text):
            raise ValueError(f"invalid format: '%' at the end of {text!r}")
        key = text[i + 1]
        if key == "%":
            out.append("%")
        else:
            try:
                out.append(tokens[key])
            except KeyError:
                raise ValueError(f"unknown key %{key} in {text!r}") from None
        i += 2
    return "".join(out)


def dollar_expand(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` by the environment variable (an unset one is an error)."""
    if "${" not in text:
        return text
    env = os.environ if environ is None else environ

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"invalid environment variable name ${{{name}}}")
        if name not in env:
            raise ValueError(f"environment variable ${{{name}}} is not set")
        return env[name]

    if text.count("${") != len(_DOLLAR.findall(text)):
        raise ValueError(f"unterminated ${{ in {text!r}")
    return _DOLLAR.sub(value, text)


def tilde_expand(path: str, home: str) -> str:
    """``~`` and ``~/x`` use ``home`` (the passwd entry's, as ssh does); ``~user/x``
    that user's home. A relative path stays relative."""
    if not path.startswith("~"):
        return path
    name, sep, tail = path[1:].partition("/")
    if name:
        try:
            base = pwd.getpwnam(name).pw_dir
        except KeyError:
            raise ValueError(f"no such user in {path!r}") from None
    else:
        base = home
    return base.rstrip("/") + "/" + tail if sep else base


@lru_cache(maxsize=1)
def local_hostname() -> str:
    """``%l``: gethostname(), like ssh (read once per process)."""
    return socket.gethostname()


def connection_hash(thishost: str, host: str, port: int, user: str) -> str:
    """``%C``: SHA-1 hex of ``%l%h%p%r`` (``ssh_connection_hash``)."""
    return hashlib.sha1(f"{thishost}{host}{port}{user}".encode()).hexdigest()


# shlex.quote's safe characters: a value made only of these means the same to any shell at
# any nesting level (sh -c '...', or a remote shell behind "ssh bastion nc %h %p").
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def expand_proxy_command(command: str, tokens: Mapping[str, str]) -> str:
    """ProxyCommand tokens ``%h %k %n %p %r %%`` (sshconnect.c ``expand_proxy_command``).

    Every inserted value must be made of ``[A-Za-z0-9_@%+=:,./-]`` (any real host name,
    address, user or port): such a value is the same word for every shell that may parse
    the command (``/bin/sh -c 'exec CMD'`` as ssh runs it, a nested ``sh -c '...'``, or the
    remote shell of ``ssh bastion nc %h %p``), where quoting for one level would not
    protect the next. Any other value (spaces, quotes, ``;``, ``$``, backquotes, control
    characters) is refused with ValueError, so an inventory value never runs anything."""

    return percent_expand(command, _Checked(tokens))


class _Checked(dict):
    """Tokens whose values are checked when (and only when) a ``%x`` uses them."""

    def __getitem__(self, key: str) -> str:
        value = super().__getitem__(key)
        if not _SHELL_SAFE.fullmatch(value):
            raise ValueError(f"ProxyCommand %{key} would insert {value!r}: characters a "
                             "shell interprets are refused")
        return shlex.quote(value)
