"""Input files read safely: regular files only, bounded, UTF-8, errors as ``InputError``
(inventories, vars files, playbooks, limit and extra-vars files)."""

from __future__ import annotations

import os
import stat

from fleetops.errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024  # inventories, vars files, playbooks, limit files


def read_text(path: str, what: str) -> str:
    """A UTF-8 file's text; every OS problem becomes an ``InputError`` naming it.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read (``/dev/zero``, a FIFO
    or a directory is refused, without blocking on a FIFO).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(f"{what} not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", path=path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{what} is a directory, expected a file", path=path)
        raise InputError(f"{what} is not a regular file", path=path)
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise InputError(f"cannot read {what}: {exc.strerror}", path=path) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what} is larger than {MAX_FILE_BYTES // 2**20} MiB", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{what} is not UTF-8 text", path=path, line=line) from None
