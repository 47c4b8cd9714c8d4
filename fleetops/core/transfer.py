"""``put``/``get`` of the transports: SFTP (RFC draft-ietf-secsh-filexfer-02, what
OpenSSH's sftp-server speaks) for SSH, file descriptors for ``ansible_connection=local``.

Both write the same way: a new temporary file beside the destination, created
exclusively with the final mode (never through an existing file or symlink), filled,
then renamed over the destination. Relative paths are relative to the login directory.
Errors are ``OSError`` with the path and the server's or system's words.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

import paramiko

BLOCK = 32768


def _temp_name(path: str) -> str:
    head, _, tail = path.rpartition("/")
    name = f".{tail}.fleetops-{secrets.token_hex(4)}"
    return f"{head}/{name}" if head or path.startswith("/") else name


def sftp_put(transport: paramiko.Transport, data: bytes, path: str, mode: int) -> None:
    """``data`` to ``path`` on the host over a new SFTP session (see the module doc)."""
    with paramiko.SFTPClient.from_transport(transport) as sftp:
        temp = _temp_name(path)
        try:
            with sftp.open(temp, "wxb") as handle:  # O_CREAT|O_EXCL: never an existing file
                handle.chmod(mode)
                handle.write(data)
            sftp.posix_rename(temp, path)
        except BaseException:
            with contextlib.suppress(OSError, paramiko.SSHException):
                sftp.remove(temp)
            raise


def sftp_get(transport: paramiko.Transport, path: str, limit: int) -> bytes:
    """The content of ``path`` on the host; OSError (EFBIG) when over ``limit`` bytes."""
    with paramiko.SFTPClient.from_transport(transport) as sftp, sftp.open(path, "rb") as handle:
        size = handle.stat().st_size or 0
        if size > limit:
            raise OSError(27, f"{path}: {size} bytes is over the limit of {limit}")
        handle.prefetch(size)
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while read
        raise OSError(27, f"{path}: over the limit of {limit} bytes")
    return data


def local_put(home: str, data: bytes, path: str, mode: int) -> None:
    """``data`` to ``path`` (relative to ``home``) on this machine (see the module doc)."""
    full = os.path.join(home, path)
    temp = _temp_name(full)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask does not narrow what was asked
            handle.write(data)
        os.replace(temp, full)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def local_get(home: str, path: str, limit: int) -> bytes:
    """The content of ``path`` (relative to ``home``), not through a final symlink."""
    full = os.path.join(home, path)
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(21, f"{full}: not a regular file")
        if info.st_size > limit:
            raise OSError(27, f"{full}: {info.st_size} bytes is over the limit of {limit}")
        return handle.read(limit + 1)
