"""ProxyJump values as OpenSSH parses them (readconf.c ``parse_jump``, misc.c
``parse_user_host_port``, ``parse_ssh_uri``, ``hpdelim``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Hop", "format_jump", "parse_jump"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One jump host: ``user``/``port`` None when the spec leaves them to the hop's config."""

    host: str
    user: str | None = None
    port: int | None = None

    def spec(self) -> str:
        """``[user@]host[:port]`` with ``[...]`` around an IPv6 host, as ``ssh -G`` prints."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{host}{port}"


def port_value(text: str) -> int:
    """``a2port``: 1-65535; ValueError otherwise."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"Port must be a port number 1-65535, got {text!r}")
    return int(text)


def _user_host_port(text: str) -> Hop:
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not user:
            raise ValueError("empty user")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("unclosed [")
        host, rest = text[1:end], text[end + 1:]
        if rest and rest[0] not in ":/":
            raise ValueError("garbage after ]")
        port = rest[1:]
    else:
        cut = min((i for i in (text.find(":"), text.find("/")) if i >= 0), default=len(text))
        host, port = text[:cut], text[cut + 1:]
    if not host:
        raise ValueError("empty host")
    return Hop(host, user, port_value(port) if port else None)


def _hop(text: str) -> Hop:
    if text.lower().startswith("ssh://"):
        text = text[6:]
        if text.endswith("/"):
            text = text[:-1]
        if "/" in text.lstrip("["):
            raise ValueError("a path is not allowed")
    return _user_host_port(text)


def parse_jump(text: str) -> list[Hop] | None:
    """``ProxyJump`` / ``-J``: hops first hop first, None for ``none``; ValueError when
    a hop is malformed (ssh: ``Invalid ProxyJump``)."""
    text = text.partition("#")[0].rstrip()
    if text.lower() == "none":
        return None
    if not text:
        raise ValueError("empty ProxyJump")
    return [_hop(part) for part in text.split(",")]


def format_jump(hops: list[Hop], raw: str) -> str:
    """The value ``ssh -G`` prints: earlier hops as written, the last one normalised."""
    head, sep, _ = raw.partition("#")[0].rstrip().rpartition(",")
    return f"{head}{sep}{hops[-1].spec()}"
