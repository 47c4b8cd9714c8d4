"""SSH user authentication the way ssh(1) does it.

Order (OpenSSH ``sshconnect2.c`` ``pubkey_prepare``, checked against ``ssh -v``'s
"Will attempt key" lines): certificates from ``CertificateFile``; agent keys equal to
an identity file's public key (agent order); the other agent keys (not with
``IdentitiesOnly``); the remaining identity files in order, each followed by its
``<file>-cert.pub`` (only when no ``CertificateFile`` is given). The identity files are
``IdentityFile`` or, when none is given, the default identities below. Then password /
keyboard-interactive authentication when a password is known.

An encrypted key file whose public key the agent holds is used through the agent and
never decrypted. Otherwise its passphrase comes from ``FLEETOPS_KEY_PASSPHRASE`` or is
asked once per key per run on the terminal. Secrets are never printed or logged.
"""

from __future__ import annotations

import copy
import getpass
import os
import pwd
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.message import Message

from fleetops.core.keyfiles import (
    CERT_SUFFIX,
    Agent,
    AgentIdentity,
    KeyUnavailable,
    blob_type,
    have_tty,
    key_from_cert,
    open_agent,
    read_private,
    read_pub_line,
    read_public,
)

# ssh(1) -i: the default identities, in the order OpenSSH 9 tries them.
DEFAULT_IDENTITIES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk",
                      "id_xmss", "id_dsa")
PASSPHRASE_ENV = "FLEETOPS_KEY_PASSPHRASE"


class AuthFailed(Exception):
    """No credential was accepted (the host ends ``unreachable`` with this reason)."""


@dataclass(slots=True)
class Identity:
    """One credential to offer: ``label`` names it in reasons (a path, or "agent: COMMENT").

    ``public`` is the blob offered (the certificate's when ``cert``); ``path`` the private
    key file, ``agent_key`` the agent key that signs instead of the file."""

    label: str
    public: bytes | None = None
    path: str | None = None
    cert: bytes | None = None
    agent_key: AgentIdentity | None = None
    user_provided: bool = True

    def plain(self) -> bytes | None:
        """The plain public key blob (a certificate's embedded key)."""
        if self.cert is not None:
            key = key_from_cert(self.cert)
            return None if key is None else key.asbytes()
        return self.public


class Keys:
    """Per-run credentials: parsed private keys and public blobs (each file read once),
    passphrases (asked once per key), and the run's SSH password. Thread-safe."""

    def __init__(self, password: str | None = None, home: str | None = None,
                 ask: bool = True) -> None:
        self.password = password
        self.home = home or pwd.getpwuid(os.getuid()).pw_dir
        self.ask = ask
        self._cache: dict[str, paramiko.PKey | KeyUnavailable] = {}
        self._public: dict[str, bytes | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._prompt = threading.Lock()

    def _path_lock(self, path: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(path, threading.Lock())

    def load(self, path: str) -> paramiko.PKey:
        """The private key in ``path`` (certificate not attached); KeyUnavailable."""
        with self._path_lock(path):
            key = self._cache.get(path)
            if key is None:
                try:
                    key = read_private(path, self._passphrase)
                except KeyUnavailable as exc:
                    key = exc
                self._cache[path] = key
        if isinstance(key, KeyUnavailable):
            raise key
        return key

    def public(self, path: str) -> bytes | None:
        """The public key blob of a key file without decrypting it: ``<path>.pub``, else
        the clear public part of an OpenSSH-format private key; None if unknown."""
        with self._lock:
            if path in self._public:
                return self._public[path]
        blob = read_public(path)
        with self._lock:
            self._public[path] = blob
        return blob

    def cert(self, path: str) -> bytes | None:
        """A user certificate blob from a ``-cert.pub``/CertificateFile, or None."""
        key = f"cert:{path}"
        with self._lock:
            if key in self._public:
                return self._public[key]
        blob = read_pub_line(path)
        if blob is not None and not blob_type(blob).endswith(CERT_SUFFIX):
            blob = None
        with self._lock:
            self._public[key] = blob
        return blob

    def _passphrase(self, path: str) -> str:
        env = os.environ.get(PASSPHRASE_ENV)
        if env is not None:
            return env
        if not self.ask or not have_tty():
            raise KeyUnavailable(f"{path}: encrypted, and no passphrase (no terminal to ask; "
                                 f"set {PASSPHRASE_ENV} or add the key to ssh-agent)")
        with self._prompt:
            return getpass.getpass(f"Enter passphrase for key '{path}': ")

    def identity_files(self, target) -> list[tuple[str, bool]]:
        """(path, user provided) of IdentityFile, or the default identities."""
        if target.key_files:
            return [(str(Path(p).expanduser()), True) for p in target.key_files]
        return [(os.path.join(self.home, ".ssh", name), False) for name in DEFAULT_IDENTITIES]


def plan(target, keys: Keys, agent: Agent | None) -> list[Identity]:
    """The identities to offer, in OpenSSH's order (see the module docstring)."""
    cert_files = [str(Path(p).expanduser()) for p in target.certificate_files]
    files: list[Identity] = []
    for path, provided in keys.identity_files(target):
        if not provided and not os.path.exists(path):
            continue
        files.append(Identity(path, keys.public(path), path, user_provided=provided))
        cert = None if cert_files else keys.cert(f"{path}-cert.pub")
        if cert is not None:
            files.append(Identity(path, cert, path, cert=cert, user_provided=provided))
    preferred = [Identity(p, c, None, cert=c) for p in cert_files
                 if (c := keys.cert(p)) is not None]
    others = []
    for key in agent.get_keys() if agent is not None else ():
        if key.inner_key is None:
            continue  # a key type Paramiko cannot use (security keys)
        match = next((f for f in files if f.public is not None and f.public == key.blob), None)
        if match is not None:
            files.remove(match)
            match.agent_key = key
            preferred.append(match)
        elif not target.identities_only:
            cert = key.blob if key.name.endswith(CERT_SUFFIX) else None
            others.append(Identity(f"agent: {key.comment or key.get_name()}", key.blob,
                                   cert=cert, agent_key=key))
    return preferred + others + files


def signing_key(ident: Identity, keys: Keys, idents: list[Identity]) -> paramiko.PKey:
    """The key object to authenticate with; KeyUnavailable if there is none."""
    if ident.agent_key is not None:
        return ident.agent_key
    if ident.cert is not None:
        plain = ident.plain()
        for other in idents:  # a certificate signs with its key: the agent's if it has it
            if other.agent_key is not None and other.public == plain and other.cert is None:
                return AgentIdentity(other.agent_key.agent, other.agent_key.blob,
                                     other.agent_key.comment, cert=ident.cert)
        path = ident.path or _private_for_cert(ident, idents)
        if path is None:
            raise KeyUnavailable(f"{ident.label}: no private key for this certificate")
        key = copy.copy(keys.load(path))
        key.load_certificate(Message(ident.cert))
        return key
    if ident.path is None:
        raise KeyUnavailable(f"{ident.label}: no private key")
    return keys.load(ident.path)


def _private_for_cert(ident: Identity, idents: list[Identity]) -> str | None:
    plain = ident.plain()
    return next((o.path for o in idents if o.path and o.cert is None and o.public == plain),
                None)


def authenticate(transport: paramiko.Transport, target, keys: Keys, deadline: float) -> None:
    """Authenticate as ``target.user``: keys in OpenSSH's order, then the password.

    Raises AuthFailed naming every method tried (key paths, agent keys, "password")
    and the server's allowed methods. Never includes a secret."""
    transport.auth_timeout = max(deadline - time.monotonic(), 0.1)
    agent, agent_problem = open_agent(target)
    tried: list[str] = [agent_problem] if agent_problem else []
    try:
        allowed = _publickey(transport, target, keys, agent, tried)
    finally:
        if agent is not None:
            agent.close()
    if allowed == []:
        return
    password = target.password if target.password is not None else keys.password
    if password is not None and transport.is_active() and (
            allowed is None or {"password", "keyboard-interactive"} & set(allowed)):
        allowed = _password(transport, target.user, password, tried)
        if allowed == []:
            return
    if allowed is None and transport.is_active():
        allowed = _allowed_methods(transport, target.user)
        if allowed == []:
            return
    text = _failure(target.user, tried, allowed, transport.is_active())
    if password is None and allowed and "password" in allowed:
        text += " (no password given: --ask-pass, FLEETOPS_PASSWORD or ansible_password)"
    raise AuthFailed(text)


def _publickey(transport, target, keys: Keys, agent, tried: list[str]) -> list[str] | None:
    """Offer each identity; [] when authenticated, else the allowed methods (or None)."""
    idents = plan(target, keys, agent)
    allowed = None
    for ident in idents:
        if not transport.is_active() or (allowed is not None and "publickey" not in allowed):
            break
        label = ident.label + (" (certificate)" if ident.cert is not None else "")
        if ident.agent_key is not None and ident.path:
            label += " (via agent)"
        try:
            key = signing_key(ident, keys, idents)
        except KeyUnavailable as exc:
            tried.append(str(exc))
            continue
        try:
            remaining = transport.auth_publickey(target.user, key)
        except paramiko.BadAuthenticationType as exc:
            tried.append(f"{label}: publickey not allowed")
            return list(exc.allowed_types)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            tried.append(f"{label}: {_short(exc)}")
            continue
        if not remaining:
            return []
        allowed = list(remaining)  # partial success (AuthenticationMethods)
    return allowed


def _password(transport, user: str, password: str, tried: list[str]) -> list[str] | None:
    try:
        remaining = transport.auth_password(user, password, fallback=True)
    except paramiko.BadAuthenticationType as exc:
        tried.append("password: not allowed")
        return list(exc.allowed_types)
    except (paramiko.SSHException, EOFError, OSError):
        tried.append("password: refused")
        return None
    return list(remaining or [])


def _allowed_methods(transport, user: str) -> list[str] | None:
    """Ask the server which methods it allows (the "none" method), or None."""
    try:
        transport.auth_none(user)
    except paramiko.BadAuthenticationType as exc:
        return list(exc.allowed_types)
    except (paramiko.SSHException, EOFError, OSError):
        return None
    return []


def _failure(user: str, tried: list[str], allowed: list[str] | None, alive: bool) -> str:
    detail = "; ".join(tried) or "no identity file, agent key or password to offer"
    text = f"authentication as {user!r} failed: tried {detail}"
    if allowed:
        text += f"; server allows: {','.join(allowed)}"
    elif not alive:
        text += "; the server closed the connection (too many authentication failures?)"
    return text


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return "refused" if text.startswith("Authentication failed") else text


