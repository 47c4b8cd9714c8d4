"""Key material as OpenSSH keeps it: private and public key files, user certificates,
and ssh-agent (with the certificate fix Paramiko lacks). Used by fleetops.core.auth.

Formats: ``openssh-key-v1`` private keys (PROTOCOL.key: the public key is stored in
clear, so an encrypted key's public part is known without its passphrase), one-line
``.pub`` and ``-cert.pub`` files (PROTOCOL.certkeys), the agent protocol
(draft-miller-ssh-agent) through Paramiko."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from pathlib import Path

import paramiko
from paramiko.agent import AgentKey, AgentSSH
from paramiko.message import Message
from paramiko.pkey import PublicBlob, UnknownKeyType

from fleetops.core.boundedread import KEY_FILE_LIMIT, read_bounded

CERT_SUFFIX = "-cert-v01@openssh.com"
AGENT_TIMEOUT = 5.0


class KeyUnavailable(Exception):
    """A private key cannot be used in this run (missing, bad passphrase, no terminal)."""


class AgentIdentity(AgentKey):
    """A key held by ssh-agent, optionally presented with a user certificate.

    Paramiko's AgentKey has no ``public_blob`` for certificates listed by the agent
    (``AttributeError: public_blob`` during auth); here it is set from the certificate
    blob (``PKey.load_certificate`` semantics). Signing requests name the blob exactly
    as the agent listed it."""

    def __init__(self, agent: AgentSSH, blob: bytes, comment: str = "",
                 cert: bytes | None = None) -> None:
        super().__init__(agent, blob, comment)
        listed_cert = self.name.endswith(CERT_SUFFIX)
        if listed_cert:
            self.inner_key = key_from_cert(blob)
        shown = cert if cert is not None else (blob if listed_cert else None)
        self.public_blob = None if shown is None else PublicBlob.from_message(Message(shown))

    def asbytes(self) -> bytes:
        return self.blob


class Agent(AgentSSH):
    """An ssh-agent connection to a given socket (Paramiko only reads SSH_AUTH_SOCK)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(AGENT_TIMEOUT)
        try:
            sock.connect(path)
            self._connect(sock)
        except BaseException:
            sock.close()
            raise
        self._keys = tuple(AgentIdentity(self, k.blob, k.comment) for k in self._keys)

    def close(self) -> None:
        self._close()


def agent_socket(target) -> str | None:
    """IdentityAgent (ssh_config(5)): a path, ``none``, ``SSH_AUTH_SOCK`` or ``$VAR``;
    unset means the SSH_AUTH_SOCK environment variable."""
    value = target.identity_agent
    if value is None or value == "SSH_AUTH_SOCK":
        return os.environ.get("SSH_AUTH_SOCK") or None
    if value.lower() == "none":
        return None
    if value.startswith("$"):
        return os.environ.get(value[1:].strip("{}")) or None
    return str(Path(value).expanduser())


def open_agent(target) -> tuple[Agent | None, str | None]:
    """(agent, None), or (None, reason) when a configured agent cannot be reached."""
    path = agent_socket(target)
    if path is None:
        return None, None
    try:
        return Agent(path), None
    except (OSError, paramiko.SSHException) as exc:
        return None, f"agent {path}: {getattr(exc, 'strerror', None) or exc}"


def read_private(path: str, passphrase) -> paramiko.PKey:
    """Parse a private key; ``passphrase(path)`` is called only for an encrypted one."""
    try:
        return _parse_private(path, None)
    except TypeError:  # cryptography: "password was not given but private key is encrypted"
        pass
    secret = passphrase(path)
    try:
        return _parse_private(path, secret.encode())
    except (TypeError, ValueError):
        raise KeyUnavailable(f"{path}: wrong passphrase") from None


def _parse_private(path: str, secret: bytes | None) -> paramiko.PKey:
    """Paramiko's own loader, without the certificate it attaches from ``-cert.pub``
    (certificates are separate identities, offered after the plain key like ssh)."""
    try:
        read_bounded(os.path.expanduser(path), KEY_FILE_LIMIT)  # no /dev/zero, FIFO, huge file
        key = paramiko.PKey.from_path(path, passphrase=secret)
    except OSError as exc:
        raise KeyUnavailable(f"{path}: {exc.strerror or exc}") from None
    except (paramiko.SSHException, UnknownKeyType) as exc:
        raise KeyUnavailable(f"{path}: not a usable private key ({exc})") from None
    except ValueError as exc:
        if secret is not None:
            raise
        raise KeyUnavailable(f"{path}: not a usable private key ({exc})") from None
    key.public_blob = None
    return key


def read_public(path: str) -> bytes | None:
    blob = read_pub_line(f"{path}.pub")
    if blob is not None:
        return blob
    try:
        text = read_bounded(path, KEY_FILE_LIMIT).decode()
    except (OSError, UnicodeDecodeError):
        return None
    return openssh_public(text)


def openssh_public(text: str) -> bytes | None:
    """The public key stored in clear in an ``openssh-key-v1`` private key file."""
    begin, end = "-----BEGIN OPENSSH PRIVATE KEY-----", "-----END OPENSSH PRIVATE KEY-----"
    if begin not in text or end not in text:
        return None
    body = text.split(begin, 1)[1].split(end, 1)[0]
    try:
        raw = base64.b64decode("".join(body.split()))
        magic = b"openssh-key-v1\0"
        if not raw.startswith(magic):
            return None
        msg = Message(raw[len(magic):])
        for _ in range(3):  # cipher name, kdf name, kdf options
            msg.get_binary()
        if msg.get_int() < 1:
            return None
        return msg.get_binary() or None
    except (ValueError, TypeError, IndexError, paramiko.SSHException):
        return None


def read_pub_line(path: str) -> bytes | None:
    """The blob of a one-line OpenSSH public key or certificate file, or None."""
    try:
        fields = read_bounded(path, KEY_FILE_LIMIT).decode().split()
        return base64.b64decode(fields[1], validate=True) if len(fields) >= 2 else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def blob_type(blob: bytes) -> str:
    with contextlib.suppress(Exception):
        return Message(blob).get_text()
    return ""


def key_from_cert(blob: bytes) -> paramiko.PKey | None:
    """The plain key inside a certificate blob (with ``public_blob`` = the certificate)."""
    plain = blob_type(blob).removesuffix(CERT_SUFFIX)
    for key_class in paramiko.key_classes:
        if plain in key_class.identifiers():
            with contextlib.suppress(Exception):
                return key_class(data=blob)
    return None


def have_tty() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True
