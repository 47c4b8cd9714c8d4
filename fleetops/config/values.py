"""Values of the ssh_config(5) directives fleetops resolves, checked as readconf.c does.

``convert(keyword, args, rest)`` runs once per line when a file is parsed (ssh checks
every line, whether or not its block applies) and returns the value the resolver stores:
str, int, bool, list, or for ProxyJump ``"none"``/``(hops, raw)``. ValueError carries
ssh's message for a bad value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fleetops.config.jump import parse_jump, port_value

__all__ = ["CONVERT", "convert", "port_value", "time_value"]

_STRICT = {"yes": "yes", "true": "yes", "no": "no", "false": "no", "off": "no",
           "ask": "ask", "accept-new": "accept-new"}
_FLAG = {"yes": True, "true": True, "no": False, "false": False}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def time_value(text: str) -> int:
    """``convtime``: ``90``, ``1m30s``, ``2h`` ... in seconds; ValueError otherwise."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid time value {text!r}")
    return sum(int(n) * _TIME_UNITS[u.lower()] for n, u in parts)


def _single(keyword: str, args: tuple[str, ...]) -> str:
    if not args or not args[0]:
        raise ValueError("Missing argument.")
    if len(args) > 1:
        raise ValueError(f"keyword {keyword} extra arguments at end of line")
    return args[0]


def _choice(table: dict[str, Any]) -> Callable[[str], Any]:
    def pick(arg: str) -> Any:
        if arg.lower() not in table:
            raise ValueError(f'unsupported option "{arg}".')
        return table[arg.lower()]
    return pick


def _timeout(arg: str) -> int | None:
    if arg == "none":
        return None
    try:
        return time_value(arg)
    except ValueError:
        raise ValueError("invalid time value.") from None


def _attempts(arg: str) -> int:
    if not arg.isdigit() or int(arg) < 1:
        raise ValueError(f"Invalid number of ConnectionAttempts: {arg!r}")
    return int(arg)


def _agent(arg: str) -> str:
    if arg.count("${") != len(re.findall(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", arg)):
        raise ValueError(f"Invalid environment expansion {arg}.")
    return arg


def _known(keyword: str, args: tuple[str, ...]) -> list[str]:
    if not args or any(not a for a in args):
        raise ValueError(f"keyword {keyword} empty argument")
    if len(args) > 1 and any(a.lower() == "none" for a in args):
        raise ValueError(f'keyword {keyword} "none" argument must appear alone.')
    return list(args)


def _jump(rest: str) -> Any:
    try:
        hops = parse_jump(rest)
    except ValueError:
        raise ValueError(f'Invalid ProxyJump "{rest}"') from None
    return "none" if hops is None else (hops, rest)


def _hostname(arg: str) -> str:
    """HostName expands only ``%h`` and ``%%`` (ssh.c); any other token is an error."""
    for m in re.finditer(r"%(.?)", arg.replace("%%", "")):
        if m.group(1) != "h":
            raise ValueError(f"percent_expand: unknown key %{m.group(1)}")
    return arg


_SINGLE: dict[str, Callable[[str], Any]] = {
    "hostname": _hostname,
    **dict.fromkeys(("user", "hostkeyalias", "ignoreunknown", "identityfile",
                     "identityfile2", "certificatefile"), str),
    "port": port_value,
    "identitiesonly": _choice(_FLAG),
    "hashknownhosts": _choice(_FLAG),
    "stricthostkeychecking": _choice(_STRICT),
    "connecttimeout": _timeout,
    "connectionattempts": _attempts,
    "identityagent": _agent,
}
CONVERT = frozenset({*_SINGLE, "userknownhostsfile", "globalknownhostsfile", "proxycommand",
                     "proxyjump"})


def _host_patterns(args: tuple[str, ...]) -> tuple[Any, Any]:
    """A ``Host`` line as (positive matcher, negated matcher): the block applies when no
    negated pattern matches and a positive one does (readconf.c, ``case oHost``)."""
    if any(not a for a in args):
        raise ValueError("keyword host empty argument")
    pos = [a for a in args if not a.startswith("!")]
    neg = [a[1:] for a in args if a.startswith("!")]
    return _matcher(pos), _matcher(neg)


def _matcher(patterns: list[str]) -> Any:
    if not patterns:
        return None
    body = "|".join("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                            for c in p) for p in patterns)
    return re.compile(f"(?:{body})", re.DOTALL).fullmatch


def convert(keyword: str, args: tuple[str, ...], rest: str) -> Any:
    """The checked value of one directive line (None for keywords without one)."""
    if keyword == "host":
        return _host_patterns(args)
    if keyword in _SINGLE:
        return _SINGLE[keyword](_single(keyword, args))
    if keyword in ("userknownhostsfile", "globalknownhostsfile"):
        return _known(keyword, args)
    if keyword == "proxyjump":
        return _jump(rest)
    if keyword == "proxycommand":
        return rest
    return None
