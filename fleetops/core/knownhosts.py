"""known_hosts files read as sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" defines them.

A line is ``[@cert-authority|@revoked] PATTERNS KEYTYPE BASE64 [COMMENT]``. PATTERNS is a
comma list of names with ``*`` and ``?`` wildcards and ``!`` negation (any negated match
rejects the line), or one hashed name ``|1|base64(salt)|base64(HMAC-SHA1(salt, name))``.
Names are compared lower-cased; a port other than 22 is part of the name (``[host]:port``),
so ``[10.0.0.?]:2222`` is an ordinary pattern. Matching follows OpenSSH's hostfile.c
(``hostkeys_foreach_file``, ``match_maybe_hashed``) and match.c (``match_pattern_list``).

A malformed line (unknown marker, missing or unknown key type, bad base64, a key blob whose
type differs from the line's, a bad hash) is skipped and recorded once in
``HostFile.warnings`` as ``path:line: message``; it never fails the file. Parsing does no
cryptography: key blobs are checked for shape only and compared as bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any

from fleetops.core.boundedread import KNOWN_HOSTS_LIMIT, read_bounded

MARK_NONE, MARK_CA, MARK_REVOKED = "", "@cert-authority", "@revoked"
HASH_MAGIC = "|1|"
# Key type names a known_hosts line may carry -> the type string inside the key blob.
KEY_TYPES = {
    "ssh-ed25519": "ssh-ed25519",
    "ssh-rsa": "ssh-rsa", "rsa-sha2-256": "ssh-rsa", "rsa-sha2-512": "ssh-rsa",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521",
    "ssh-dss": "ssh-dss",
    "sk-ssh-ed25519@openssh.com": "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com",
}
# Fields after the type string in a plain public key blob: "s" string, "m" mpint.
_BLOB_FIELDS = {
    "ssh-ed25519": "s", "ssh-rsa": "mm", "ssh-dss": "mmmm",
    "ecdsa-sha2-nistp256": "ss", "ecdsa-sha2-nistp384": "ss", "ecdsa-sha2-nistp521": "ss",
    "sk-ssh-ed25519@openssh.com": "ss", "sk-ecdsa-sha2-nistp256@openssh.com": "sss",
}


class BlobError(ValueError):
    """A key blob that is not a well-formed SSH public key."""


def read_string(data: bytes, pos: int) -> tuple[bytes, int]:
    """One SSH ``string`` (RFC 4251 5) at ``pos``: (value, position after it)."""
    if pos + 4 > len(data):
        raise BlobError("truncated")
    (size,) = struct.unpack_from(">I", data, pos)
    end = pos + 4 + size
    if end > len(data):
        raise BlobError("truncated")
    return data[pos + 4:end], end


def blob_type(blob: bytes) -> str:
    """The key type string a public key blob starts with; BlobError if the blob is bad."""
    name, pos = read_string(blob, 0)
    key_type = name.decode("ascii", "replace")
    fields = _BLOB_FIELDS.get(key_type)
    if fields is None:
        raise BlobError(f"unknown key type {key_type!r} in key blob")
    for _ in fields:
        _, pos = read_string(blob, pos)
    if pos != len(blob):
        raise BlobError("trailing bytes after the key")
    if key_type.startswith("ecdsa-") and read_string(blob, read_string(blob, 0)[1])[0] \
            != key_type.rsplit("-", 1)[1].encode():
        raise BlobError("ECDSA curve does not match the key type")
    return key_type


@dataclass(frozen=True, slots=True)
class Entry:
    """One usable known_hosts line. ``blob`` is the plain public key blob."""

    path: str
    line: int
    marker: str          # MARK_NONE, MARK_CA or MARK_REVOKED
    hosts: str           # the host field as written (patterns, or a hashed name)
    key_type: str        # the type inside the blob: "ssh-ed25519", "ssh-rsa", ...
    blob: bytes

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def hash_name(name: str, salt: bytes | None = None) -> str:
    """``|1|salt|hmac`` for ``name`` (``ssh-keygen -H``; a random 20-byte salt if None)."""
    salt = os.urandom(20) if salt is None else salt
    digest = hmac.digest(salt, name.encode(), "sha1")
    return f"{HASH_MAGIC}{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def _b64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _parse_hashed(hosts: str) -> tuple[bytes, bytes]:
    parts = hosts[len(HASH_MAGIC):].split("|")
    if not hosts.startswith(HASH_MAGIC) or len(parts) != 2:
        raise ValueError("bad hashed host name")
    try:
        salt, digest = _b64(parts[0]), _b64(parts[1])
    except (binascii.Error, ValueError):
        raise ValueError("bad hashed host name (base64)") from None
    if len(salt) != 20 or len(digest) != 20:
        raise ValueError("bad hashed host name (salt or hash length)")
    return salt, digest


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """match.c ``match_pattern``: ``*`` any run, ``?`` one character, the rest literal."""
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def parse_line(text: str) -> tuple[str, str, str, bytes] | None:
    """(marker, hosts, key type, blob) of one line; None for blank/comment lines.

    Raises ValueError with the reason for a malformed line (hostfile.c rules)."""
    text = text.strip(" \t\r\n")
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    marker = MARK_NONE
    if fields[0].startswith("@"):
        if fields[0] not in (MARK_CA, MARK_REVOKED):
            raise ValueError(f"invalid marker {fields[0][:32]!r}")
        marker = fields.pop(0)
        if fields and fields[0].startswith("@"):
            raise ValueError("only one marker is allowed")
    if len(fields) < 3 or fields[1].startswith("#"):
        raise ValueError("no key after the host patterns")
    hosts, type_name, encoded = fields[0], fields[1], fields[2]
    inner = KEY_TYPES.get(type_name)
    if inner is None:
        raise ValueError(f"unknown key type {type_name[:40]!r}")
    try:
        blob = _b64(encoded)
        found = blob_type(blob)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad {type_name} key: {exc or 'bad base64'}") from None
    if found != inner:
        raise ValueError(f"key type {type_name} does not match its key ({found})")
    if hosts.startswith("|"):
        _parse_hashed(hosts)
    return marker, hosts, found, blob


class HostFile:
    """One known_hosts file, parsed once; lookups are read-only and thread-safe.

    Lines with only literal names are indexed by name; hashed lines are checked by one
    HMAC each; wildcard or negated lines by regex. ``add`` records a line appended
    during this run so later lookups see it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.warnings: list[str] = []
        self._exact: dict[str, list[Entry]] = {}
        self._hashed: list[tuple[Entry, Any, Any, bytes]] = []   # entry, ipad, opad, mac
        self._cache: dict[str, list[Entry]] = {}
        self._patterns: list[tuple[Entry, list[tuple[bool, re.Pattern[str]]]]] = []
        self._lock = threading.Lock()
        texts = self._read()
        self.lines = len(texts) - (1 if texts and texts[-1] == "" else 0)
        for number, text in enumerate(texts, 1):
            try:
                parsed = parse_line(text)
            except ValueError as exc:
                self.warnings.append(f"{path}:{number}: {exc}; line skipped")
                continue
            if parsed is not None:
                self._index(Entry(path, number, *parsed))

    def _read(self) -> list[str]:
        try:
            data = read_bounded(os.path.expanduser(self.path), KNOWN_HOSTS_LIMIT)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.warnings.append(f"{self.path}: cannot read known_hosts: "
                                 f"{exc.strerror or exc}; file skipped")
            return []
        return data.decode("utf-8", "replace").split("\n")

    def _index(self, entry: Entry) -> None:
        if entry.hosts.startswith("|"):
            salt, digest = _parse_hashed(entry.hosts)
            # HMAC-SHA1 with the key's pads hashed once: a lookup costs two block hashes.
            key = salt.ljust(64, b"\0")
            inner = hashlib.sha1(bytes(b ^ 0x36 for b in key))
            outer = hashlib.sha1(bytes(b ^ 0x5C for b in key))
            self._hashed.append((entry, inner, outer, digest))
            return
        subs = [s.lower() for s in entry.hosts.split(",")]
        if any(s.startswith("!") or "*" in s or "?" in s for s in subs):
            compiled = [(s.startswith("!"), _pattern_regex(s.removeprefix("!"))) for s in subs]
            self._patterns.append((entry, compiled))
            return
        for name in dict.fromkeys(subs):
            self._exact.setdefault(name, []).append(entry)

    def add(self, marker: str, hosts: str, key_type: str, blob: bytes) -> None:
        """Make a line appended to the file during this run visible to lookups."""
        with self._lock:
            self.lines += 1
            self._index(Entry(self.path, self.lines, marker, hosts, key_type, blob))
            self._cache.clear()

    def match(self, name: str) -> list[Entry]:
        """Entries whose host field matches ``name`` (``host`` or ``[host]:port``)."""
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None:
                return cached
            lower = name.lower()
            found = list(self._exact.get(lower, ()))
            hashed, patterns = list(self._hashed), list(self._patterns)
        raw = name.encode()
        for entry, inner, outer, digest in hashed:
            mac = inner.copy()
            mac.update(raw)
            check = outer.copy()
            check.update(mac.digest())
            if check.digest() == digest:
                found.append(entry)
        for entry, compiled in patterns:
            verdict = False
            for negated, regex in compiled:
                if regex.fullmatch(lower):
                    if negated:
                        verdict = False
                        break
                    verdict = True
            if verdict:
                found.append(entry)
        found.sort(key=lambda e: e.line)
        with self._lock:
            self._cache[name] = found
        return found
