"""Resolve one destination through ssh_config(5) exactly as OpenSSH 9.x ``ssh`` does.

Order (ssh.c ``process_config_files``): command-line options (``-o``, ``-p``, ``-l``,
``-J``, ``-i``), then either the ``-F`` file alone, or ``~/.ssh/config`` followed by
``/etc/ssh/ssh_config``; for every option the first value obtained wins (IdentityFile
and CertificateFile accumulate). ``Host`` matches the destination as given, ``Match
host`` the HostName obtained so far. ``Include`` (globs; relative paths under ``~/.ssh``
for user files, ``/etc/ssh`` for the system file; depth limit 16) keeps its own Match
state. Supported, ignored-on-purpose and refused directives: see
:mod:`fleetops.config.parse`. ``Match exec``/``final`` and ``CanonicalizeHostname``
are refused; ``Match canonical`` is false (there is never a canonical pass).

All errors are :class:`ConfigError` (``file:line: message``).
"""

from __future__ import annotations

import glob
import os
import pwd
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fleetops.config.jump import Hop
from fleetops.config.parse import (
    IGNORED,
    REFUSED,
    SPELLING,
    ConfigError,
    Line,
    Refused,
    load_file,
    match_pattern_list,
    parse_line,
)
from fleetops.config.tokens import (
    connection_hash,
    dollar_expand,
    local_hostname,
    percent_expand,
    tilde_expand,
)
from fleetops.config.values import CONVERT

__all__ = ["SYSTEM_CONFIG", "ConfigError", "Hop", "Refused", "Resolved", "option_line",
           "resolve"]

SYSTEM_CONFIG = "/etc/ssh/ssh_config"
MAX_DEPTH = 16
DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk",
                      "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss",
                      "~/.ssh/id_dsa")
DEFAULT_USER_KNOWN = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# Match criteria of OpenSSH releases after 9.2 (refused for the host that reaches them).
_NEWER_MATCH = frozenset({"localnetwork", "version", "tagged", "command", "sessiontype"})


@dataclass(slots=True)
class Resolved:
    """What ssh would use for one destination. Paths are expanded (``~``, tokens,
    ``${ENV}``) except the ``*_raw`` lists, which are as written (``ssh -G`` prints those).
    ``where`` maps an option keyword to the ``file:line`` it came from."""

    host_arg: str
    hostname: str
    port: int
    user: str
    identity_files_raw: list[str]
    identity_files: list[str]
    identity_default: bool
    certificate_files_raw: list[str]
    certificate_files: list[str]
    user_known_hosts: list[str]
    global_known_hosts: list[str]
    host_key_alias: str | None
    strict_host_key_checking: str | None
    hash_known_hosts: bool
    identities_only: bool
    identity_agent: str | None
    connect_timeout: int | None
    connection_attempts: int | None
    proxy_command: str | None
    jump: list[Hop] | None
    jump_raw: str | None
    tokens: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)


def option_line(text: str, label: str) -> Line:
    """A command-line ``-o Key=Value`` as a Line whose ``where`` is ``label``."""
    line = parse_line(text, label, 0)
    if line is None:
        raise ConfigError(label, None, f"empty option {text!r}")
    if line.keyword in ("host", "match", "include"):
        raise ConfigError(label, None, f"{line.keyword} is not allowed as a command-line option")
    return line


class _Eval:
    """Evaluation state: OpenSSH's ``Options`` while reading the files."""

    def __init__(self, host_arg: str, local_user: str, home: str) -> None:
        self.host_arg, self.local_user, self.home = host_arg, local_user, home
        self.opts: dict[str, Any] = {}
        self.where: dict[str, str] = {}
        self.identity: list[tuple[str, str]] = []
        self.certificate: list[tuple[str, str]] = []
        self.active = True
        self.nevermatch = False

    # -- files ---------------------------------------------------------------------------

    def read(self, path: str, user_conf: bool, check_perm: bool, depth: int = 0) -> bool:
        if depth > MAX_DEPTH:
            raise ConfigError(path, None, "Too many recursive configuration includes")
        parsed = load_file(path, check_perm)
        if parsed is None:
            return False
        lines, skip, i = parsed.lines, parsed.skip, 0
        while i < len(lines):
            self.line(lines[i], user_conf, depth)
            i = i + 1 if self.active else skip[i]
        return True

    def line(self, line: Line, user_conf: bool = True, depth: int = 0) -> None:
        kw = line.keyword
        if not self.active and kw in _PASSIVE:
            return
        if kw == "host":
            self._host(line)
        elif kw == "match":
            active = self._match(line)
            self.active = False if self.nevermatch else active
        elif kw == "include":
            self._include(line, user_conf, depth)
        elif kw in _HANDLERS:
            _HANDLERS[kw](self, line)
        elif kw in IGNORED:
            return
        elif kw in REFUSED:
            self._refused(line)
        else:
            pattern = self.opts.get("ignoreunknown")
            if pattern is None or match_pattern_list(kw, pattern, True) != 1:
                raise line.error(f"Bad configuration option: {kw}")

    def _refused(self, line: Line) -> None:
        harmless, why = REFUSED[line.keyword]
        if self.active and line.args and line.args[0].lower() not in harmless:
            name = SPELLING.get(line.keyword, line.keyword)
            raise line.refused(f"{name} is not supported by fleetops ({why})")

    def _host(self, line: Line) -> None:
        positive, negated = line.value
        self.active = (not self.nevermatch and positive is not None
                       and positive(self.host_arg) is not None
                       and (negated is None or negated(self.host_arg) is None))

    def _match(self, line: Line) -> bool:
        hostname = self.opts.get("hostname")
        host = percent_expand(hostname, {"h": self.host_arg}) if hostname else self.host_arg
        host = host.lower()
        ruser = self.opts.get("user") or self.local_user
        args, i, result, attributes = line.value, 0, True, 0
        while i < len(args) and not args[i].startswith("#"):
            attrib = args[i]
            i += 1
            negate = attrib.startswith("!")
            name = (attrib[1:] if negate else attrib).lower()
            if name == "all":
                if attributes > 1 or (i < len(args) and not args[i].startswith("#")):
                    raise line.error(f"'{attrib}' cannot be combined with other Match "
                                     "attributes")
                return result and not negate
            attributes += 1
            if name == "final":
                raise line.refused("Match final is not supported by fleetops (no second pass)")
            if name == "canonical":
                result = result and negate  # never the canonical pass
                continue
            if i >= len(args) or args[i].startswith("#"):
                raise line.error(f"Missing Match criteria for {attrib}")
            arg = args[i]
            i += 1
            if name in ("host", "originalhost"):
                subject = host if name == "host" else self.host_arg.lower()
                hit = match_pattern_list(subject, arg, True) == 1
            elif name in ("user", "localuser"):
                subject = ruser if name == "user" else self.local_user
                hit = match_pattern_list(subject, arg, False) == 1
            elif name == "exec":
                if result and not self.nevermatch:
                    raise line.refused("Match exec is not supported by fleetops "
                                     "(it would run a command per host)")
                continue
            elif name in _NEWER_MATCH:
                raise line.refused(f"Match {name} is not supported by fleetops")
            else:
                raise line.error(f"Unsupported Match attribute {attrib}")
            if hit == negate:
                result = False
        if attributes == 0:
            raise line.error("One or more attributes required for Match")
        return result

    def _include(self, line: Line, user_conf: bool, depth: int) -> None:
        if line.lineno == 0:
            raise line.error("Include is not allowed as a command-line option")
        for arg in line.args:
            if not arg:
                raise line.error("keyword include empty argument")
            if arg.startswith("~") and not user_conf:
                raise line.error(f"bad include path {arg}.")
            if not arg.startswith(("/", "~")):
                arg = ("~/.ssh/" if user_conf else "/etc/ssh/") + arg
            if arg.startswith("~"):
                arg = tilde_expand(arg, os.environ.get("HOME") or self.home)
            outer_active, outer_never = self.active, self.nevermatch
            for path in _glob(arg):
                self.nevermatch = outer_never or not outer_active
                try:
                    self.read(path, user_conf, True, depth + 1)
                finally:
                    self.active, self.nevermatch = outer_active, outer_never

    # -- options -------------------------------------------------------------------------

    def set(self, key: str, value: Any, line: Line) -> None:
        if self.active and key not in self.opts:
            self.opts[key] = value
            self.where[key] = line.where


def _h_value(ev: _Eval, line: Line) -> None:
    ev.set(line.keyword, line.value, line)


def _h_files(ev: _Eval, line: Line) -> None:
    target = ev.identity if line.keyword.startswith("identityfile") else ev.certificate
    if ev.active and all(raw != line.value for raw, _ in target):
        target.append((line.value, line.where))


def _h_proxy_command(ev: _Eval, line: Line) -> None:
    jump = ev.opts.get("proxyjump")
    if jump is None or jump == "none":
        ev.set("proxycommand", line.value, line)


def _h_proxy_jump(ev: _Eval, line: Line) -> None:
    if "proxycommand" not in ev.opts:
        ev.set("proxyjump", line.value, line)


_HANDLERS = {
    **dict.fromkeys(CONVERT, _h_value),
    **dict.fromkeys(("identityfile", "identityfile2", "certificatefile"), _h_files),
    "proxycommand": _h_proxy_command,
    "proxyjump": _h_proxy_jump,
}


# Keywords with nothing to do in a block that does not apply (values were checked at parse).
_PASSIVE = frozenset({*_HANDLERS, *IGNORED, *REFUSED})


def _passwd() -> tuple[str, str, int]:
    return _passwd_of(os.getuid())


@lru_cache(maxsize=4)
def _passwd_of(uid: int) -> tuple[str, str, int]:
    entry = pwd.getpwuid(uid)
    return entry.pw_name, entry.pw_dir, entry.pw_uid


def _is_addr(host: str) -> bool:
    """ssh.c ``is_addr``: a name with ``%`` or ``:``, only digits and dots, or a numeric
    address getaddrinfo accepts (``0x7f.1`` too) is an address and keeps its case."""
    if "%" in host or ":" in host or not host.strip("0123456789."):
        return True
    if any(c.isspace() for c in host):
        return False  # glibc's exact inet_aton refuses trailing text
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def resolve(host_arg: str, command_line: Sequence[Line] = (), config: str | None = None,
            user_config: str | None = None, system_config: str = SYSTEM_CONFIG) -> Resolved:
    """What ``ssh [command_line] [-F config] host_arg`` would use.

    ``config`` is ``-F``: only that file (it must exist; ``none``: no file). Otherwise ``user_config``
    (default ``~/.ssh/config`` of the passwd entry, as ssh) then ``system_config``.
    Raises ConfigError (``file:line: message``)."""
    local_user, home, uid = _passwd()
    ev = _Eval(host_arg, local_user, home)
    for line in command_line:
        ev.line(line)
    if config is not None and config.lower() == "none":
        pass  # ssh -F none: no config files at all
    elif config is not None:
        if not ev.read(config, True, False):
            raise ConfigError(config, None, "ssh config file not found")
    else:
        ev.read(user_config or os.path.join(home, ".ssh/config"), True, True)
        ev.active, ev.nevermatch = True, False
        ev.read(system_config, False, False)
    return _finish(ev, uid)


def _glob(pattern: str) -> list[str]:
    """Sorted glob(3) matches; cached while the directory is unchanged (its mtime) when
    only the last path component has wildcards, as in ``Include conf.d/*.conf``."""
    directory, name = os.path.split(pattern)
    if glob.has_magic(directory) or not glob.has_magic(name):
        return sorted(glob.glob(pattern))
    try:
        mtime = os.stat(directory or ".").st_mtime_ns
    except OSError:
        return []
    return _glob_cached(pattern, mtime)


@lru_cache(maxsize=256)
def _glob_cached(pattern: str, mtime_ns: int) -> list[str]:
    return sorted(glob.glob(pattern))


class _Tokens(dict):
    """Token values; ``%C`` (a SHA-1) is computed only when a path uses it."""

    def __missing__(self, key: str) -> str:
        if key != "C":
            raise KeyError(key)
        value = self["C"] = connection_hash(self["l"], self["h"], int(self["p"]), self["r"])
        return value


def _default_identities(home: str) -> list[str]:
    return [tilde_expand(p, home) for p in DEFAULT_IDENTITIES]


def _finish(ev: _Eval, uid: int) -> Resolved:
    opts, home = ev.opts, ev.home
    hostname = opts.get("hostname")
    host = percent_expand(hostname, {"h": ev.host_arg}) if hostname else ev.host_arg
    if not _is_addr(host):
        host = host.lower()
    port = opts.get("port", 22)
    user = opts.get("user") or ev.local_user
    alias = opts["hostkeyalias"].lower() if "hostkeyalias" in opts else None
    thishost = local_hostname()
    tokens = _Tokens({
        "L": thishost.split(".")[0], "i": str(uid), "k": alias or ev.host_arg,
        "l": thishost, "n": ev.host_arg, "p": str(port), "d": home, "h": host, "r": user,
        "u": ev.local_user,
    })

    def expand(path: str, key: str) -> str:
        try:
            return dollar_expand(percent_expand(tilde_expand(path, home), tokens))
        except ValueError as exc:
            raise ConfigError(ev.where.get(key, "command-line"), None, f"{key}: {exc}") from None

    ids = [raw for raw, _ in ev.identity]
    default = not ids
    if ev.identity:
        ev.where["identityfile"] = ev.identity[0][1]
    certs = [raw for raw, _ in ev.certificate]
    if ev.certificate:
        ev.where["certificatefile"] = ev.certificate[0][1]
    user_known = opts.get("userknownhostsfile", list(DEFAULT_USER_KNOWN))
    global_known = opts.get("globalknownhostsfile", list(DEFAULT_GLOBAL_KNOWN))
    agent = opts.get("identityagent")
    jump = opts.get("proxyjump")
    jump_hops, jump_raw = (None, None) if jump in (None, "none") else jump
    if jump_hops:
        last = jump_hops[-1]
        if last.host == host and (last.port or 22) == port and (last.user or user) == user:
            raise ConfigError(ev.where["proxyjump"], None, f"jumphost loop via {last.host}")
    proxy = opts.get("proxycommand")
    return Resolved(
        host_arg=ev.host_arg, hostname=host, port=port, user=user,
        identity_files_raw=list(DEFAULT_IDENTITIES) if default else ids,
        identity_files=_default_identities(home) if default
        else [expand(p, "identityfile") for p in ids],
        identity_default=default, certificate_files_raw=certs,
        certificate_files=[expand(p, "certificatefile") for p in certs],
        user_known_hosts=[] if user_known[0].lower() == "none"
        else [tilde_expand(p, home) if p in DEFAULT_USER_KNOWN
              else expand(p, "userknownhostsfile") for p in user_known],
        global_known_hosts=[] if global_known[0].lower() == "none" else global_known,
        host_key_alias=alias, strict_host_key_checking=opts.get("stricthostkeychecking"),
        hash_known_hosts=opts.get("hashknownhosts", False),
        identities_only=opts.get("identitiesonly", False),
        identity_agent=None if agent is None else expand(agent, "identityagent"),
        connect_timeout=opts.get("connecttimeout"),
        connection_attempts=opts.get("connectionattempts"),
        proxy_command=None if proxy is None or proxy.lower() == "none" else proxy,
        jump=jump_hops, jump_raw=jump_raw,
        tokens=tokens, where=dict(ev.where),
    )
