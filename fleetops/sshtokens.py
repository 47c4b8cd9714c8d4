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
        elif key in tokens:
            out.append(tokens[key])
        else:
            raise ValueError(f"unknown key %{key} in {text!r}")
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


def local_hostname() -> str:
    """``%l``: gethostname(), like ssh."""
    return socket.gethostname()


def connection_hash(thishost: str, host: str, port: int, user: str) -> str:
    """``%C``: SHA-1 hex of ``%l%h%p%r`` (``ssh_connection_hash``)."""
    return hashlib.sha1(f"{thishost}{host}{port}{user}".encode()).hexdigest()


def expand_proxy_command(command: str, tokens: Mapping[str, str]) -> str:
    """ProxyCommand tokens (``%h %k %n %p %r %%``) with every inserted value quoted for
    the shell context it lands in, so a value with spaces, quotes, ``;`` or ``$(...)``
    stays one literal word: bare -> ``shlex.quote``; inside '...' or "..." (usually a
    script for a nested ``sh -c``) -> the ``shlex.quote``'d value escaped for that
    quoting, so the nested shell also sees one literal word. A value made only of
    ``[A-Za-z0-9@%+=:,./_-]`` (any real host name, user or port) is inserted unchanged.

    The result is meant for ``/bin/sh -c 'exec CMD'`` (what ssh runs); ``shlex.split``
    of it gives the same words."""
    out: list[str] = []
    state = ""  # "", "'" or '"'
    i = 0
    while i < len(command):
        c = command[i]
        if c == "%" and i + 1 < len(command):
            key = command[i + 1]
            if key == "%":
                out.append("%")
            elif key in tokens:
                out.append(_quote_in(tokens[key], state))
            else:
                raise ValueError(f"unknown key %{key} in ProxyCommand")
            i += 2
            continue
        if c == "%":
            raise ValueError("invalid format: '%' at the end of ProxyCommand")
        if c == "\\" and state != "'" and i + 1 < len(command):
            if command[i + 1] == "%":
                raise ValueError("a backslash before a %-token in ProxyCommand")
            out.append(command[i:i + 2])
            i += 2
            continue
        if c in "'\"" and (not state or state == c):
            state = "" if state else c
        out.append(c)
        i += 1
    return "".join(out)


def _quote_in(value: str, state: str) -> str:
    quoted = shlex.quote(value)
    if state == "'":
        return quoted.replace("'", "'\\''")
    if state == '"':
        return re.sub(r'([\\"$`])', r"\\\1", quoted)
    return quoted
