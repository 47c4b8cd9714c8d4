"""Bounded reads of the files fleetops reads the way ssh(1) does: ssh_config, known_hosts,
key and certificate files.

A path given by an inventory or an ssh_config may name anything: ``/dev/zero``, a FIFO
nobody writes to, a huge file. Reading it whole used to hang the run past every time
bound and grow the control process until the machine ran out of memory. Here only a
regular file of at most ``limit`` bytes is read (opened ``O_NONBLOCK``, so a FIFO never
blocks the open); ``/dev/null`` reads as empty, as ``ssh -F /dev/null`` and
``UserKnownHostsFile /dev/null`` expect. Anything else raises ``OSError`` with a
``strerror`` the callers already print (``EINVAL`` "not a regular file", ``EFBIG``
"larger than N MiB", ``EISDIR``).
"""

from __future__ import annotations

import errno
import os
import stat

KEY_FILE_LIMIT = 1024 * 1024           # OpenSSH authfile.c MAX_KEY_FILE_SIZE
CONFIG_LIMIT = 16 * 1024 * 1024        # ssh_config files (same as inventories)
KNOWN_HOSTS_LIMIT = 256 * 1024 * 1024  # about two million lines


def _is_dev_null(st: os.stat_result) -> bool:
    if not stat.S_ISCHR(st.st_mode):
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(null.st_mode) and st.st_rdev == null.st_rdev


def read_bounded(path: str, limit: int) -> bytes:
    """The bytes of ``path`` (symlinks followed, as ssh does): ``b""`` for /dev/null.

    Raises FileNotFoundError, IsADirectoryError, and OSError (EINVAL: not a regular
    file; EFBIG: more than ``limit`` bytes) without reading more than ``limit + 1``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if _is_dev_null(st):
            return b""
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        too_big = OSError(errno.EFBIG, f"larger than {limit / 2**20:g} MiB", path)
        if st.st_size > limit:
            raise too_big
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise too_big
        return b"".join(chunks)
    finally:
        os.close(fd)
