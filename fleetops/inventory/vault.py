"""Ansible Vault: ``$ANSIBLE_VAULT;1.1;AES256`` and ``1.2;AES256;<vault-id>`` decryption.

The format (Ansible's ``VaultAES256``): the lines after the header are the hex of
``hex(salt) \\n hex(hmac) \\n hex(ciphertext)``; PBKDF2-HMAC-SHA256 (10 000 rounds,
salt) of the password gives 80 bytes = AES key (32) + HMAC key (32) + CTR counter (16);
the HMAC-SHA256 of the ciphertext must match; AES-256-CTR decrypts; PKCS#7 padding is
removed. Uses the ``cryptography`` package.

Passwords come from :func:`configure` (``--vault-password-file`` /
``--ask-vault-pass``) or, when nothing was configured, from the file named by
``FLEETOPS_VAULT_PASSWORD_FILE`` or ``ANSIBLE_VAULT_PASSWORD_FILE``, or a prompt on the
terminal when ``FLEETOPS_ASK_VAULT_PASS=1``. A password file is
read, not run: an executable one (an Ansible "vault password client" script) is refused.
Every password given is tried, as Ansible tries every vault secret.

Decrypted text is a :class:`Secret`: a ``str`` whose ``repr`` is ``'<vault>'``, so
error messages and dataclass reprs never show it. A missing password, a wrong one or a
damaged vault is an ``InputError`` naming the file and line of the vault text.
"""

from __future__ import annotations

import binascii
import getpass
import hmac
import os
import stat
from hashlib import sha256

from fleetops.errors import InputError

__all__ = ["Secret", "configure", "decrypt", "decrypt_file_text", "is_vault_text"]

HEADER = "$ANSIBLE_VAULT"
_passwords: list[bytes] | None = None


class Secret(str):
    """Decrypted vault text; ``repr`` never shows it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<vault>'"


def configure(
    password_file: str | None = None, ask: bool = False, passwords: list[str] | None = None
) -> None:
    """Set the vault passwords for this process (the CLI's vault options)."""
    global _passwords
    found = [p.encode() for p in passwords or []]
    if password_file:
        found.append(_read_password_file(password_file))
    if ask:
        found.append(getpass.getpass("Vault password: ").encode())
    _passwords = found or None


def _read_password_file(path: str) -> bytes:
    path = os.path.expanduser(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read vault password file: {exc.strerror}", path=path) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError("vault password file is not a regular file", path=path)
        if info.st_mode & 0o111:
            raise InputError(
                "vault password file is executable: fleetops reads password files but does "
                "not run vault password scripts",
                path=path,
            )
        data = handle.read(65536)
    password = data.strip()  # as Ansible's FileVaultSecret: all ASCII whitespace
    if not password:
        raise InputError("vault password file is empty", path=path)
    return password


def _current_passwords() -> list[bytes]:
    """Configured passwords; else the environment's file; else, with
    ``FLEETOPS_ASK_VAULT_PASS=1`` and a terminal, one prompt (remembered)."""
    global _passwords
    if _passwords is not None:
        return _passwords
    for env in ("FLEETOPS_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"):
        if os.environ.get(env):
            return [_read_password_file(os.environ[env])]
    if os.environ.get("FLEETOPS_ASK_VAULT_PASS") == "1" and os.isatty(0):
        configure(ask=True)
        return _passwords or []
    return []


def is_vault_text(text: str) -> bool:
    """Whether ``text`` is a vault envelope (``$ANSIBLE_VAULT;...``)."""
    return text.lstrip().startswith(HEADER + ";")


def decrypt_file_text(text: str, path: str) -> str:
    """The plaintext of a vault-encrypted file (an inventory or a vars file)."""
    return "".join(decrypt(text, path, 1))  # a plain str: parsers want exactly str


def decrypt(text: str, path: str, line: int | None) -> Secret:
    """Decrypt one vault envelope; ``path``/``line`` locate it for errors."""
    body = _parse(text, path, line)
    passwords = _current_passwords()
    if not passwords:
        raise InputError(
            "vault-encrypted value but no vault password given "
            "(--vault-password-file, --ask-vault-pass or $ANSIBLE_VAULT_PASSWORD_FILE)",
            path=path,
            line=line,
        )
    salt, mac, ciphertext = body
    for password in passwords:
        plain = _try(password, salt, mac, ciphertext)
        if plain is not None:
            try:
                return Secret(plain.decode("utf-8"))
            except UnicodeDecodeError:
                raise InputError("decrypted vault data is not UTF-8 text", path=path,
                                 line=line) from None
    raise InputError("vault decryption failed: wrong vault password", path=path, line=line)


def _parse(text: str, path: str, line: int | None) -> tuple[bytes, bytes, bytes]:
    lines = text.strip().splitlines()
    fields = lines[0].strip().split(";") if lines else []
    if len(fields) < 3 or fields[0] != HEADER or fields[1] not in ("1.1", "1.2"):
        raise InputError("not an Ansible vault envelope ($ANSIBLE_VAULT;1.1|1.2;AES256)",
                         path=path, line=line)
    if fields[2].strip() != "AES256":
        raise InputError(f"vault cipher {fields[2]!r} is not supported (only AES256)",
                         path=path, line=line)
    try:
        inner = binascii.unhexlify("".join(x.strip() for x in lines[1:])).decode("ascii")
        salt, mac, ciphertext = (binascii.unhexlify(part) for part in inner.split("\n"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("damaged vault data (bad hex encoding)", path=path, line=line) from None
    return salt, mac, ciphertext


def _try(password: bytes, salt: bytes, mac: bytes, ciphertext: bytes) -> bytes | None:
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=10000)
    derived = kdf.derive(password)
    key, hmac_key, counter = derived[:32], derived[32:64], derived[64:]
    if not hmac.compare_digest(hmac.new(hmac_key, ciphertext, sha256).digest(), mac):
        return None
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        return None
