"""Host-key checking as OpenSSH's ssh does it: strict by default, explicit accept-new.

Follows sshconnect.c ``check_host_key`` and sshconnect2.c ``order_hostkeyalgs``
(OpenSSH 9.2), over the files of :mod:`fleetops.core.knownhosts`:

- the lookup name is ``HostKeyAlias`` if set, else ``host`` (port 22) or ``[host]:port``;
  user files are searched before global ones, every matching line counts;
- a key equal to a known line is accepted; one marked ``@revoked`` (or a certificate whose
  CA is) is always refused; a different key where keys are known is refused: "HOST KEY
  CHANGED ... possible man-in-the-middle" when a key of the same type is known, "no known
  ... key of this type" when only other types are (OpenSSH calls both "changed");
- an unknown host is refused unless accept-new applies; then the key is appended to the
  first user file (hashed with ``HashKnownHosts``);
- with a port other than 22 and no alias, a host unknown under ``[host]:port`` is looked up
  again under plain ``host`` (OpenSSH "checking without port identifier");
- a host certificate is checked against ``@cert-authority`` lines (CA key, host type,
  principals against the alias or address, validity, no critical options); if that fails
  it is checked again as its plain key, as OpenSSH does.
Host-key algorithms are ordered so that known key types (and certificate types when a CA
line applies) are negotiated first: no false alarm when the server has several keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paramiko

from fleetops.core.hostcert import CERT_SUFFIX, CertError, HostCert, check_host, parse_cert
from fleetops.core.hostcert import verify_signature as verify_cert_signature
from fleetops.core.knownhosts import MARK_CA, MARK_NONE, MARK_REVOKED, Entry, HostFile, hash_name
from fleetops.safefile import UnsafePath, resolve

# OpenSSH 9.2 HostKeyAlgorithms default (myproposal.h KEX_DEFAULT_PK_ALG) less the
# security-key types Paramiko cannot verify.
DEFAULT_HOSTKEY_ALGORITHMS = (
    "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
    "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "rsa-sha2-512", "rsa-sha2-256",
)
ACCEPT_NEW, RELAXED = "accept-new", ("no", "off", "false")
OK, NEW, CHANGED, REVOKED = "ok", "new", "changed", "revoked"
_BAD_NAME_CHARS = set("@?*#[]|'\"\\")


class HostKeyError(Exception):
    """The server's key is refused: unknown (strict), changed, revoked, bad certificate."""


def lookup_name(address: str, port: int) -> str:
    """OpenSSH ``put_host_port``: ``host`` for port 22, else ``[host]:port``."""
    address = address.lower()
    return address if port == 22 else f"[{address}]:{port}"


def key_type_of_algorithm(alg: str) -> str:
    """The plain key type a host-key algorithm uses (``rsa-sha2-512-cert-v01@...`` ->
    ``ssh-rsa``)."""
    plain = alg.removesuffix(CERT_SUFFIX)
    return "ssh-rsa" if plain.startswith("rsa-sha2-") else plain


def fingerprint(blob: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The key a server proved it holds: plain type and blob, and its certificate if any."""

    key_type: str
    blob: bytes
    cert: HostCert | None = None

    @classmethod
    def from_paramiko(cls, key: paramiko.PKey) -> ServerKey:
        """Raises HostKeyError for a certificate that is malformed or not signed by its CA
        (OpenSSH fails the key exchange for those)."""
        blob = getattr(key, "public_blob", None)
        if blob is not None and blob.key_type.endswith(CERT_SUFFIX):
            try:
                cert = parse_cert(blob.key_blob)
                verify_cert_signature(cert)
            except CertError as exc:
                raise HostKeyError(f"bad host certificate: {exc}") from None
            return cls(cert.key_type, cert.key_blob, cert)
        return cls(key.get_name(), key.asbytes())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def describe(self, as_cert: bool) -> str:
        kind = f"{self.key_type} certificate" if as_cert else self.key_type
        return f"{kind} {self.fingerprint}"


@dataclass(slots=True)
class _Outcome:
    status: str
    found: Entry | None = None
    as_cert: bool = False
    cert_reason: str | None = None


class KnownHosts:
    """The known_hosts files of one run for one set of paths: user files first, then
    global ones. Files are parsed once (shared through ``files``); thread-safe."""

    def __init__(self, user_files: Sequence[str], global_files: Sequence[str] = (),
                 accept_new: bool = False, files: dict[str, HostFile] | None = None,
                 lock: threading.Lock | None = None) -> None:
        self.user_files = tuple(os.path.expanduser(p) for p in user_files)
        self.global_files = tuple(os.path.expanduser(p) for p in global_files)
        self.accept_new = accept_new
        self._lock = lock or threading.Lock()
        cache = {} if files is None else files
        self._files: list[HostFile] = []
        for path in dict.fromkeys(self.user_files + self.global_files):
            with self._lock:
                if path not in cache:
                    cache[path] = HostFile(path)
                self._files.append(cache[path])

    @property
    def path(self) -> str:
        return self.user_files[0] if self.user_files else "(no user known_hosts file)"

    @property
    def warnings(self) -> list[str]:
        """Malformed lines and unreadable files, ``path:line: message``, once each."""
        return [w for f in self._files for w in f.warnings]

    def entries(self, name: str) -> list[Entry]:
        """Lines matching ``name``: user files first, each file in line order."""
        return [e for f in self._files for e in f.match(name)]

    # --- algorithm negotiation -------------------------------------------------------
    def host_key_algorithms(self, target: Any, supported: Iterable[str]) -> tuple[str, ...]:
        """OpenSSH ``order_hostkeyalgs`` over its default list (filtered to ``supported``):
        the default order if a plain key of the first algorithm's type is known, else the
        algorithms of known key types first (all certificate algorithms if a CA line
        applies), the rest after, each group in default order."""
        supported = set(supported)
        algs = [a for a in DEFAULT_HOSTKEY_ALGORITHMS if a in supported]
        entries = self.entries(_name_for(target))
        known = {e.key_type for e in entries if e.marker == MARK_NONE}
        has_ca = any(e.marker == MARK_CA for e in entries)
        if not algs or _first_known_type(entries, key_type_of_algorithm(algs[0])):
            return tuple(algs)
        first = [a for a in algs if (a.endswith(CERT_SUFFIX) and has_ca)
                 or key_type_of_algorithm(a) in known]
        return tuple(first + [a for a in algs if a not in first])

    # --- the decision ----------------------------------------------------------------
    def verify(self, target: Any, key: paramiko.PKey | ServerKey) -> bool:
        """Accept ``key`` for ``target`` or raise HostKeyError (one line, the reason).

        ``target`` needs ``address``, ``port``, ``host_key_alias``,
        ``strict_host_key_checking``, ``hash_known_hosts`` (a ``fleetops.core.ssh.Target``).
        Returns True when the key was newly recorded (accept-new)."""
        server = key if isinstance(key, ServerKey) else ServerKey.from_paramiko(key)
        alias = getattr(target, "host_key_alias", None)
        name = _name_for(target)
        principal = alias or target.address.lower()
        fallback = target.address.lower() if alias is None and target.port != 22 else None
        outcome = self._check(name, server, server.cert is not None, principal, fallback)
        if outcome.status == OK:
            return False
        raise_for = {REVOKED: self._revoked, CHANGED: self._changed}.get(outcome.status)
        if raise_for is not None:
            raise_for(name, server, outcome)
        return self._new(target, name, server, outcome)

    def _check(self, name: str, key: ServerKey, as_cert: bool, principal: str,
               fallback: str | None) -> _Outcome:
        entries = self.entries(name)
        cert_reason = None
        while True:
            status, found = _status(entries, key, as_cert)
            if status == OK and as_cert:
                cert_reason = check_host(key.cert, principal)
                if cert_reason is None:
                    return _Outcome(OK, found, True)
                cert_reason = f"{cert_reason} (CA in {found.where})"
            elif status == NEW and fallback is not None:
                sub = self._check(fallback, key, as_cert, principal, None)
                if sub.status in (OK, REVOKED):
                    return sub
            if status in (OK, NEW) and as_cert:
                cert_reason = cert_reason or f"no @cert-authority line for {name} has its CA"
                as_cert = False  # OpenSSH: "No matching CA found. Retry with plain key"
                continue
            return _Outcome(status, found, as_cert, cert_reason)

    def _revoked(self, name: str, key: ServerKey, outcome: _Outcome) -> None:
        raise HostKeyError(
            f"REVOKED host key for {name} ({key.describe(key.cert is not None)}): marked "
            f"@revoked in {outcome.found.where}; refusing to connect")

    def _changed(self, name: str, key: ServerKey, outcome: _Outcome) -> None:
        entries = [e for e in self.entries(name) if e.marker == MARK_NONE]
        same = [e for e in entries if e.key_type == key.key_type]
        note = f" ({outcome.cert_reason})" if outcome.cert_reason else ""
        if same:
            raise HostKeyError(
                f"HOST KEY CHANGED for {name} ({key.describe(False)}){note}: refusing to "
                f"connect (possible man-in-the-middle); check and update {same[0].where}")
        known = ", ".join(sorted({f"{e.key_type} in {e.where}" for e in entries}))
        raise HostKeyError(
            f"no known {key.key_type} host key for {name} ({key.fingerprint}); only other "
            f"key types are known ({known}) and the server offered none of them{note}: "
            "refusing to connect (check the host, then add its key)")

    def _new(self, target: Any, name: str, key: ServerKey, outcome: _Outcome) -> bool:
        strict = (getattr(target, "strict_host_key_checking", None) or "yes").lower()
        note = f"; host certificate not accepted: {outcome.cert_reason}" \
            if outcome.cert_reason else ""
        where = ", ".join(self.user_files + self.global_files) or "no known_hosts file"
        unknown = f"unknown host key for {name} ({key.describe(False)}): not in {where}{note}"
        if not (self.accept_new or strict == ACCEPT_NEW):
            if strict in RELAXED:
                source = _source(target, "stricthostkeychecking")
                raise HostKeyError(
                    f"{unknown} (StrictHostKeyChecking={strict}{source} is not honoured: "
                    "fleetops never connects to a host it cannot verify; use --accept-new "
                    "to record new hosts)")
            raise HostKeyError(f"{unknown} (use --accept-new to record new hosts)")
        if not self.user_files:
            raise HostKeyError(f"{unknown} (no user known_hosts file to record it in)")
        if _BAD_NAME_CHARS & set(target.address):
            raise HostKeyError(f"{unknown} (will not record the invalid name {name!r})")
        try:
            self._append(name, key, bool(getattr(target, "hash_known_hosts", False)))
        except (OSError, UnsafePath) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise HostKeyError(f"{unknown} (not recorded in {self.user_files[0]}: "
                               f"{detail})") from None
        return True

    def _append(self, name: str, key: ServerKey, hashed: bool) -> None:
        """Append one line to the first user file (0600, O_APPEND: one write per line)."""
        path = self.user_files[0]
        host = hash_name(name) if hashed else name
        text = f"{host} {key.key_type} {base64.b64encode(key.blob).decode()}\n"
        with self._lock:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            # a symlink (dotfile managers link ~/.ssh/known_hosts) is followed as ssh
            # does, by fleetops.safefile's rule: only the user's or root's own link
            real, _info = resolve(path)
            fd = os.open(real, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    text = "\n" + text  # the file's last line had no newline
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        first = next(f for f in self._files if f.path == path)
        first.add(MARK_NONE, host, key.key_type, key.blob)


DEFAULT_USER_FILE = "~/.ssh/known_hosts"
DEFAULT_GLOBAL_FILES = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def known_hosts_files(target: Any, default: str = DEFAULT_USER_FILE
                      ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(user files, global files) to check ``target`` against, ``~`` expanded.

    User files: ``fleetops_known_hosts`` (``target.known_hosts``) when it is not one of
    ``target.user_known_hosts`` (the inventory wins over ssh_config), else every
    UserKnownHostsFile, else ``default`` (the run's ``--known-hosts``; OpenSSH's own
    default adds ``~/.ssh/known_hosts2``). Global files: GlobalKnownHostsFile. The value
    ``none`` means no file. A plain string is one user file with the default global files."""
    if isinstance(target, str):
        user, global_files = (target,), DEFAULT_GLOBAL_FILES
    else:
        user = tuple(getattr(target, "user_known_hosts", ()) or ())
        known = getattr(target, "known_hosts", None)
        if known and known not in user:
            user = (known,)
        if not user:
            user = (default, "~/.ssh/known_hosts2") if default == DEFAULT_USER_FILE \
                else (default,)
        global_files = tuple(getattr(target, "global_known_hosts", DEFAULT_GLOBAL_FILES))

    def clean(paths: tuple[str, ...]) -> tuple[str, ...]:
        paths = tuple(p for p in paths if p and p.lower() != "none")
        return tuple(dict.fromkeys(os.path.expanduser(p) for p in paths))

    return clean(user), clean(global_files)


def _name_for(target: Any) -> str:
    alias = getattr(target, "host_key_alias", None)
    return alias if alias else lookup_name(target.address, target.port)


def _source(target: Any, setting: str) -> str:
    source = getattr(target, "source", None) or {}
    where = source.get(setting) or source.get("strict_host_key_checking")
    return f" in {where}" if where else ""


def _first_known_type(entries: list[Entry], key_type: str) -> bool:
    """OpenSSH ``lookup_key_in_hostkeys_by_type``: the first plain line of that type, if
    its key is not also revoked."""
    first = next((e for e in entries if e.marker == MARK_NONE and e.key_type == key_type), None)
    return first is not None and not any(
        e.marker == MARK_REVOKED and e.blob == first.blob for e in entries)


def _status(entries: list[Entry], key: ServerKey, as_cert: bool) -> tuple[str, Entry | None]:
    """OpenSSH ``check_hostkeys_by_key_or_type`` for one key (or its certificate)."""
    status, found = NEW, None
    want = MARK_CA if as_cert else MARK_NONE
    for entry in entries:
        if entry.marker != want:
            continue
        if as_cert:
            if entry.blob == key.cert.ca_blob:
                status, found = OK, entry
                break
        elif entry.blob == key.blob:
            status, found = OK, entry
            break
        else:
            status, found = CHANGED, entry
    for entry in entries:
        if entry.marker == MARK_REVOKED and (
                entry.blob == key.blob or (as_cert and entry.blob == key.cert.ca_blob)):
            return REVOKED, entry
    return status, found


class HostKeyTransport(paramiko.Transport):
    """Paramiko's client offers certificate host-key algorithms only after every plain one
    (its ``preferred_keys`` appends a ``-cert-v01`` twin of each). When the algorithm list
    set on the security options already names certificate algorithms, offer it as is, so
    OpenSSH's order (certificates first) is what the server sees."""

    @property
    def preferred_keys(self):  # noqa: D102 - Paramiko's property
        keys = self._filter_algorithm("keys")
        if any(k.endswith(CERT_SUFFIX) for k in keys):
            return tuple(keys)
        return super().preferred_keys
