"""OpenSSH host certificates (PROTOCOL.certkeys): parse, check the CA signature, check
the certificate against the name connected to, as OpenSSH's sshkey.c does.

A certificate blob is ``string type, string nonce, <key fields>, uint64 serial,
uint32 type (1 user, 2 host), string key_id, string principals, uint64 valid_after,
uint64 valid_before, string critical_options, string extensions, string reserved,
string signature_key, string signature``; the signature covers everything before it.
Signatures are verified with Paramiko's key classes (``cryptography``/PyNaCl underneath).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import paramiko

from fleetops.core.knownhosts import BlobError, blob_type, read_string

CERT_SUFFIX = "-cert-v01@openssh.com"
CERT_TYPE_USER, CERT_TYPE_HOST = 1, 2
# OpenSSH's CASignatureAlgorithms default (myproposal.h SSH_ALLOWED_CA_SIGALGS): no ssh-rsa.
ALLOWED_CA_SIGALGS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                      "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
                      "sk-ecdsa-sha2-nistp256@openssh.com", "rsa-sha2-512", "rsa-sha2-256")
_KEY_FIELDS = {"ssh-ed25519": "s", "ssh-rsa": "mm", "ssh-dss": "mmmm",
               "ecdsa-sha2-nistp256": "ss", "ecdsa-sha2-nistp384": "ss",
               "ecdsa-sha2-nistp521": "ss"}


class CertError(ValueError):
    """A certificate that cannot be parsed or whose CA signature does not verify."""


@dataclass(frozen=True, slots=True)
class HostCert:
    """A parsed certificate. ``key_blob`` is the certified key as a plain public key blob;
    ``ca_blob`` the signing CA's public key blob; times are seconds since the epoch."""

    cert_type_name: str
    key_type: str
    key_blob: bytes
    serial: int
    cert_type: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical_options: bytes
    ca_blob: bytes
    signed: bytes
    signature: bytes


def _u64(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 8 > len(data):
        raise CertError("truncated certificate")
    return struct.unpack_from(">Q", data, pos)[0], pos + 8


def parse_cert(blob: bytes) -> HostCert:
    """Parse a ``*-cert-v01@openssh.com`` blob; CertError when it is malformed."""
    try:
        return _parse(blob)
    except BlobError as exc:
        raise CertError(f"malformed certificate: {exc}") from None


def _parse(blob: bytes) -> HostCert:
    raw_type, pos = read_string(blob, 0)
    name = raw_type.decode("ascii", "replace")
    key_type = name.removesuffix(CERT_SUFFIX)
    fields = _KEY_FIELDS.get(key_type)
    if not name.endswith(CERT_SUFFIX) or fields is None:
        raise CertError(f"unsupported certificate type {name!r}")
    _, pos = read_string(blob, pos)  # nonce
    start = pos
    for _ in fields:
        _, pos = read_string(blob, pos)
    key_blob = struct.pack(">I", len(key_type)) + key_type.encode() + blob[start:pos]
    serial, pos = _u64(blob, pos)
    if pos + 4 > len(blob):
        raise CertError("truncated certificate")
    (cert_type,) = struct.unpack_from(">I", blob, pos)
    key_id, pos = read_string(blob, pos + 4)
    packed, pos = read_string(blob, pos)
    principals, ppos = [], 0
    while ppos < len(packed):
        principal, ppos = read_string(packed, ppos)
        principals.append(principal.decode("utf-8", "replace"))
    valid_after, pos = _u64(blob, pos)
    valid_before, pos = _u64(blob, pos)
    critical, pos = read_string(blob, pos)
    _, pos = read_string(blob, pos)  # extensions
    _, pos = read_string(blob, pos)  # reserved
    ca_blob, pos = read_string(blob, pos)
    signed = blob[:pos]
    signature, pos = read_string(blob, pos)
    if pos != len(blob):
        raise CertError("trailing bytes after the certificate signature")
    if cert_type not in (CERT_TYPE_USER, CERT_TYPE_HOST):
        raise CertError(f"unknown certificate type {cert_type}")
    return HostCert(name, key_type, key_blob, serial, cert_type,
                    key_id.decode("utf-8", "replace"), tuple(principals), valid_after,
                    valid_before, critical, ca_blob, signed, signature)


def verify_signature(cert: HostCert) -> None:
    """Check the CA's signature over the certificate (OpenSSH ``cert_parse``).

    The CA key must be a plain key (not itself a certificate). Raises CertError."""
    try:
        ca_type = blob_type(cert.ca_blob)
    except BlobError as exc:
        raise CertError(f"certificate has an invalid CA key: {exc}") from None
    try:
        ca = paramiko.PKey.from_type_string(ca_type, cert.ca_blob)
    except (paramiko.SSHException, ValueError, TypeError) as exc:
        raise CertError(f"certificate CA key type {ca_type} is not supported: {exc}") from None
    if not ca.verify_ssh_sig(cert.signed, paramiko.Message(cert.signature)):
        raise CertError("certificate signature does not verify with its CA key")


def signature_type(cert: HostCert) -> str:
    try:
        return read_string(cert.signature, 0)[0].decode("ascii", "replace")
    except BlobError:
        return "?"


def check_host(cert: HostCert, name: str, now: float | None = None) -> str | None:
    """Why ``cert`` is not valid for host ``name`` now, or None when it is.

    OpenSSH ``sshkey_cert_check_host``: a host certificate, ``valid_after <= now <
    valid_before``, ``name`` one of the principals by exact comparison; an empty
    principal list is valid for any host (OpenSSH calls it with require_principal=0);
    no critical options; the CA signature algorithm in CASignatureAlgorithms."""
    now = time.time() if now is None else now
    if cert.cert_type != CERT_TYPE_HOST:
        return "Certificate invalid: not a host certificate"
    if now < cert.valid_after:
        return "Certificate invalid: not yet valid"
    if now >= cert.valid_before:
        return "Certificate invalid: expired"
    if cert.principals and name not in cert.principals:
        return f"Certificate invalid: name is not a listed principal ({name})"
    if cert.critical_options:
        return "Certificate contains unsupported critical options"
    if signature_type(cert) not in ALLOWED_CA_SIGALGS:
        return "Certificate signed with disallowed algorithm"
    return None
