"""ssh_config(5) files as OpenSSH 9.x reads them: lines, quoting, keyword tables, values.

Follows openssh-portable ``readconf.c`` (``process_config_line_depth``, ``strdelim``,
``argv_split``, ``convtime``, ``a2port``) and ``match.c`` (``match_pattern``,
``match_pattern_list``). Each file is parsed once per (path, mtime, size); a bad line
raises :class:`ConfigError` carrying ``file:line``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fleetops.config.values import convert
from fleetops.core.boundedread import CONFIG_LIMIT, read_bounded

__all__ = [
    "IGNORED", "REFUSED", "SPELLING", "SUPPORTED", "ConfigError", "Line", "ParsedFile", "Refused", "argv_split", "load_file",
    "match_pattern", "match_pattern_list", "parse_line", "strdelim_words",
]

WHITESPACE = " \t\r\n"

# Directives fleetops resolves into the Target (or uses to evaluate the files).
SUPPORTED = frozenset({
    "host", "match", "include", "ignoreunknown", "hostname", "port", "user", "identityfile",
    "identityfile2", "identitiesonly", "identityagent", "certificatefile",
    "userknownhostsfile", "globalknownhostsfile", "hostkeyalias", "stricthostkeychecking",
    "hashknownhosts", "connecttimeout", "connectionattempts", "proxycommand", "proxyjump",
})

# Directives accepted and ignored on purpose: they do not change where fleetops connects,
# which host key it accepts or which credentials it offers (or fleetops is stricter).
IGNORED = {
    **dict.fromkeys(("batchmode", "escapechar", "enableescapecommandline", "loglevel",
                     "logverbose", "syslogfacility", "visualhostkey", "requesttty",
                     "stdinnull", "forkafterauthentication", "localcommand",
                     "permitlocalcommand"), "interactive ssh only; fleetops is always batch"),
    **dict.fromkeys(("forwardagent", "forwardx11", "forwardx11trusted", "forwardx11timeout",
                     "xauthlocation", "exitonforwardfailure", "gatewayports", "localforward",
                     "remoteforward", "dynamicforward", "clearallforwardings",
                     "permitremoteopen", "streamlocalbindmask", "streamlocalbindunlink",
                     "tunnel", "tunneldevice"), "fleetops forwards nothing"),
    **dict.fromkeys(("serveraliveinterval", "serveralivecountmax", "tcpkeepalive",
                     "keepalive", "compression", "ipqos", "rekeylimit", "sendenv", "setenv",
                     "channeltimeout", "obscurekeystroketiming", "versionaddendum"),
                    "session tuning"),
    **dict.fromkeys(("ciphers", "macs", "kexalgorithms", "hostkeyalgorithms",
                     "casignaturealgorithms", "pubkeyacceptedalgorithms",
                     "pubkeyacceptedkeytypes", "hostbasedacceptedalgorithms",
                     "hostbasedkeytypes", "requiredrsasize", "fingerprinthash",
                     "warnweakcrypto"),
                    "algorithms are negotiated by paramiko"),
    **dict.fromkeys(("controlmaster", "controlpath", "controlpersist"),
                    "fleetops keeps its own connection per host"),
    **dict.fromkeys(("passwordauthentication", "kbdinteractiveauthentication",
                     "challengeresponseauthentication", "skeyauthentication",
                     "tisauthentication", "kbdinteractivedevices", "numberofpasswordprompts",
                     "pubkeyauthentication", "dsaauthentication", "preferredauthentications",
                     "gssapiauthentication", "gssapidelegatecredentials",
                     "hostbasedauthentication", "enablesshkeysign", "addkeystoagent",
                     "securitykeyprovider"),
                    "fleetops offers keys, agent and an inventory password only"),
    **dict.fromkeys(("checkhostip", "verifyhostkeydns", "nohostauthenticationforlocalhost",
                     "updatehostkeys"), "fleetops checks known_hosts only (stricter)"),
    **dict.fromkeys(("canonicaldomains", "canonicalizefallbacklocal", "canonicalizemaxdots",
                     "canonicalizepermittedcnames"), "used only with CanonicalizeHostname"),
    **dict.fromkeys(("protocol", "cipher", "fallbacktorsh", "globalknownhostsfile2",
                     "rhostsauthentication", "userknownhostsfile2", "useroaming", "usersh",
                     "useprivilegedport", "afstokenpassing", "kerberosauthentication",
                     "kerberostgtpassing", "rsaauthentication", "rhostsrsaauthentication",
                     "compressionlevel"), "deprecated or unsupported in OpenSSH too"),
}

# Directives that change where or how ssh connects and that fleetops does not implement:
# keyword -> (values that are harmless, why it is refused).
REFUSED: dict[str, tuple[frozenset[str], str]] = {
    "addressfamily": (frozenset({"any"}), "fleetops connects by any address family"),
    "bindaddress": (frozenset(), "no source address binding"),
    "bindinterface": (frozenset(), "no source interface binding"),
    "canonicalizehostname": (frozenset({"no", "false", "off"}), "no hostname canonicalisation"),
    "knownhostscommand": (frozenset({"none"}), "host keys come from known_hosts files only"),
    "revokedhostkeys": (frozenset({"none"}), "no revoked-keys file"),
    "pkcs11provider": (frozenset({"none"}), "no PKCS#11 keys"),
    "smartcarddevice": (frozenset({"none"}), "no PKCS#11 keys"),
    "proxyusefdpass": (frozenset({"no", "false"}), "no fd passing from a ProxyCommand"),
    "remotecommand": (frozenset({"none"}), "fleetops runs its own commands"),
    "sessiontype": (frozenset({"default"}), "fleetops runs commands"),
    "tag": (frozenset(), "no Match tagged"),
    "refuseconnection": (frozenset({"no", "false"}), "ssh would refuse this host too"),
}


# Keywords as ssh_config(5) spells them, for messages.
SPELLING = {k.lower(): k for k in (
    "AddressFamily", "BindAddress", "BindInterface", "CanonicalizeHostname",
    "KnownHostsCommand", "RevokedHostKeys", "PKCS11Provider", "SmartcardDevice",
    "ProxyUseFdpass", "RemoteCommand", "SessionType", "Tag", "RefuseConnection")}


class ConfigError(ValueError):
    """A bad line: ``str()`` is ``file:line: message``."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message)
        self.path, self.line, self.message = path, line, message


class Refused(ConfigError):
    """A valid directive (or Match criterion) fleetops does not implement, applying to
    this host: it stops this host only."""


@dataclass(frozen=True, slots=True)
class Line:
    """One directive: ``keyword`` lowercased, ``args`` split as ``argv_split`` does,
    ``rest`` the raw text after the keyword (ProxyCommand, ProxyJump, Match use it),
    ``value`` the checked value (see fleetops.config.values; a Match line's words)."""

    keyword: str
    args: tuple[str, ...]
    rest: str
    path: str
    lineno: int
    value: Any = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lineno}" if self.lineno else self.path

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.path, self.lineno, message)

    def refused(self, message: str) -> Refused:
        return Refused(self.path, self.lineno, message)


def argv_split(text: str) -> list[str]:
    """OpenSSH ``argv_split(s, .., terminate_on_comment=1)``: words, quotes removed.

    ``\\`` escapes a quote, a backslash, or (outside quotes) a space; ``#`` at the
    start of a word ends the line. Raises ValueError on an unclosed quote."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or
                                             (not quote and text[i + 1] == " ")):
                i += 1
                word.append(text[i])
            elif not quote and c in " \t":
                break
            elif not quote and c in "'\"":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise ValueError("invalid quotes")
        words.append("".join(word))
    return words


def _strdelim(text: str) -> tuple[str, str]:
    """OpenSSH ``strdelim``: the first word (ends at whitespace, ``"`` or one ``=``) and
    the rest after the separating whitespace/``=``."""
    m = re.search(r'[ \t\r\n"=]', text)
    if m is None:
        return text, ""
    word, rest = text[: m.start()], text[m.start():]
    if rest[0] == '"':
        end = rest.find('"', 1)
        if end < 0:
            raise ValueError("invalid quotes")
        return rest[1:end], rest[end + 1:].lstrip(WHITESPACE)
    equals = rest[0] == "="
    rest = rest[1:].lstrip(WHITESPACE)
    if not equals and rest.startswith("="):
        rest = rest[1:].lstrip(WHITESPACE)
    return word, rest


def strdelim_words(text: str) -> list[str]:
    """Words as repeated ``strdelim`` calls give them (Match criteria: ``host=a`` is two
    words). ValueError on an unclosed quote."""
    words = []
    rest = text.strip(WHITESPACE)
    while rest:
        word, rest = _strdelim(rest)
        words.append(word)
    return words


def parse_line(text: str, path: str, lineno: int) -> Line | None:
    """One config line to a :class:`Line`; None for blank and comment lines."""
    text = text.rstrip(WHITESPACE + "\f")
    stripped = text.lstrip(WHITESPACE)
    if not stripped or stripped.startswith("#"):
        return None
    try:
        keyword, rest = _strdelim(stripped)
        if not keyword:
            keyword, rest = _strdelim(rest)
    except ValueError:
        raise ConfigError(path, lineno, "invalid quotes") from None
    if not keyword or keyword.startswith("#"):
        return None
    keyword = keyword.lower()
    rest = rest.lstrip(WHITESPACE)
    if not rest:
        raise ConfigError(path, lineno, f'no argument after keyword "{keyword}"')
    try:
        args = tuple(argv_split(rest))
    except ValueError:
        raise ConfigError(path, lineno, "invalid quotes") from None
    try:
        value = tuple(strdelim_words(rest)) if keyword == "match" else convert(
            keyword, args, rest)
    except ValueError as exc:
        raise ConfigError(path, lineno, str(exc)) from None
    return Line(keyword, args, rest, path, lineno, value)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file's lines, and for each line the index of the next line that must be looked
    at when the current block does not apply (Host, Match, Include or an unknown keyword),
    so blocks that do not apply cost nothing."""

    lines: tuple[Line, ...]
    skip: tuple[int, ...]


_KNOWN = SUPPORTED | IGNORED.keys() | REFUSED.keys()
_BOUNDARY = frozenset({"host", "match", "include"})


@lru_cache(maxsize=64)
def _parse_cached(path: str, mtime_ns: int, size: int, ino: int) -> ParsedFile:
    try:
        text = read_bounded(path, CONFIG_LIMIT).decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read ssh config: {exc.strerror}") from None
    lines = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = parse_line(raw, path, lineno)
        if line is not None:
            lines.append(line)
    skip = [len(lines)] * len(lines)
    nxt = len(lines)
    for i in range(len(lines) - 1, -1, -1):
        skip[i] = nxt
        if lines[i].keyword in _BOUNDARY or lines[i].keyword not in _KNOWN:
            nxt = i
    return ParsedFile(tuple(lines), tuple(skip))


def load_file(path: str, check_perm: bool) -> ParsedFile | None:
    """Parsed ``path`` (cached by path, mtime, size); None when it does not exist.

    ``check_perm``: refuse a file not owned by root or the user, or group/world
    writable, as ssh does for the user config and included files."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read ssh config: {exc.strerror}") from None
    if check_perm and ((st.st_uid not in (0, os.getuid())) or st.st_mode & 0o022):
        raise ConfigError(path, None, "Bad owner or permissions")
    if stat.S_ISDIR(st.st_mode):
        return ParsedFile((), ())  # ssh reads a directory matched by an Include as empty
    return _parse_cached(path, st.st_mtime_ns, st.st_size, st.st_ino)


def match_pattern(text: str, pattern: str) -> bool:
    """``match.c:match_pattern``: ``*`` and ``?`` wildcards, case-sensitive."""
    if "*" not in pattern and "?" not in pattern:
        return text == pattern
    return _compiled(pattern)(text) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Callable[[str], re.Match[str] | None]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL).fullmatch


def match_pattern_list(text: str, patterns: str, lower: bool) -> int:
    """``match.c:match_pattern_list``: 1 positive match, -1 negated match, 0 none."""
    got = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        if negated:
            sub = sub[1:]
        if lower:
            sub = sub.lower()
        if match_pattern(text, sub):
            if negated:
                return -1
            got = 1
    return got
