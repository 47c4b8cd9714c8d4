"""Writing files on the control machine safely: one rule for every file fleetops writes.

Used by ``--retry-file``, ``disk-report --output`` and the ``reports/`` spool. The rule,
decided on ``lstat(path)``:

* **missing** or a **regular file**: the new content goes to a temp file created beside
  the target with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and mode 0600, is fsync'ed, given its
  final mode (an existing file keeps its mode) and renamed over the target: readers see
  the old or the new content, never a mix, and nothing is ever truncated in place.
* a **character device or FIFO** (``/dev/null``, ``/dev/stdout``, a named pipe) is
  written through: opened ``O_WRONLY|O_NOFOLLOW`` without ``O_CREAT``/``O_TRUNC``,
  never unlinked or replaced. A FIFO without a reader is refused instead of blocking.
* a **symlink** is followed only when the link itself belongs to the current user or to
  root (the kernel's ``fs.protected_symlinks`` rule for sticky directories) and it
  resolves to a regular file, a character device or a FIFO; the resolved path is then
  handled as above (so a regular target is replaced atomically, the link stays). A
  symlink owned by anyone else, a dangling one or a loop is refused.
* anything else (directory, socket, block device) is refused.

Refusals are :class:`UnsafePath` (an ``OptionError``: exit 5). Text is encoded as
UTF-8 with ``surrogateescape`` (a non-UTF-8 mount name decoded that way comes back
as its original bytes); other lone surrogates are written as ``\\udXXX`` escapes.
"""

from __future__ import annotations

import os
import secrets
import stat

from fleetops.errors import OptionError

RETRY_HEADER = "# fleetops retry file: failed/unreachable hosts, for --limit @FILE\n"


class UnsafePath(OptionError):
    """The path is of a kind fleetops refuses to write (see the module rule)."""


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text``, never raising: surrogateescape, else backslash escapes."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _trusted_owner(uid: int) -> bool:
    return uid in (os.geteuid(), 0)


def resolve(path: str) -> tuple[str, os.stat_result | None]:
    """``(path to write, its lstat or None if missing)`` after applying the symlink rule."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path, None
    except OSError as exc:
        raise UnsafePath(f"{path}: {exc.strerror}") from None
    if not stat.S_ISLNK(info.st_mode):
        return path, info
    if not _trusted_owner(info.st_uid):
        raise UnsafePath(f"{path}: refusing to follow a symlink owned by uid {info.st_uid}")
    real = os.path.realpath(path)
    try:
        target = os.lstat(real)
    except OSError:
        raise UnsafePath(f"{path}: dangling or looping symlink, not written") from None
    if stat.S_ISLNK(target.st_mode):
        raise UnsafePath(f"{path}: symlink loop, not written")
    return real, target


def check(path: str | os.PathLike[str]) -> str:
    """Apply the rule without writing (to refuse a bad ``--output`` before the run)."""
    path = os.fspath(path)
    real, info = resolve(path)
    if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISCHR(info.st_mode)
                                 or stat.S_ISFIFO(info.st_mode)):
        raise UnsafePath(f"{path}: not a regular file, device or FIFO; not written")
    directory = os.path.dirname(real) or "."
    if info is None or stat.S_ISREG(info.st_mode):
        if not os.path.isdir(directory):
            raise UnsafePath(f"{path}: directory {directory} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UnsafePath(f"{path}: directory {directory} is not writable")
    elif not os.access(real, os.W_OK):
        raise UnsafePath(f"{path}: not writable")
    return real


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> str:
    """Write ``data`` to ``path`` by the module rule; returns the path actually written.

    ``mode`` is the mode of a newly created file (an existing regular file keeps its own).
    Raises :class:`UnsafePath` (exit 5) for a path it will not write, ``OSError`` otherwise.
    """
    path = os.fspath(path)
    real, info = resolve(path)
    if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        _write_through(real, data, stat.S_ISFIFO(info.st_mode))
        return real
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{path}: not a regular file, device or FIFO; not written")
    final_mode = stat.S_IMODE(info.st_mode) if info is not None else mode
    _replace(real, data, final_mode)
    return real


def write_text(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> str:
    """:func:`write_bytes` of :func:`encode_text`."""
    return write_bytes(path, encode_text(text), mode)


def create_new(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Create ``path`` (it must not exist: ``O_EXCL|O_NOFOLLOW``) holding ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_through(path: str, data: bytes, fifo: bool) -> None:
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_NONBLOCK if fifo else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if fifo and exc.errno == 6:  # ENXIO: a FIFO nobody reads
            raise UnsafePath(f"{path}: FIFO has no reader; not written") from None
        raise
    try:
        if fifo:
            os.set_blocking(fd, True)
        _write_all(fd, data)
    finally:
        os.close(fd)


def _replace(path: str, data: bytes, mode: int) -> None:
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.fleetops-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        _write_all(fd, data)
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def remove_retry_file(path: str | os.PathLike[str]) -> bool:
    """Unlink a retry file fleetops wrote (regular, ours, starting with the header).

    Anything else (a device, a symlink, another user's file, a file without the header)
    is left alone. Returns whether the file was removed.
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        head = os.read(fd, len(RETRY_HEADER))
    finally:
        os.close(fd)
    if head != RETRY_HEADER.encode():
        return False
    after = os.lstat(path)
    if (after.st_dev, after.st_ino) != (info.st_dev, info.st_ino):
        return False
    os.unlink(path)
    return True


def spool_dir(path: str | os.PathLike[str]) -> str:
    """A private directory (created 0700) to spool reports in; refused when it is not
    a real directory owned by this user and closed to group and others."""
    path = os.fspath(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise UnsafePath(f"{path}: cannot create the spool directory: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path}: spool is not a directory (a symlink?); not written")
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o022:
        raise UnsafePath(f"{path}: spool directory must be owned by uid {os.geteuid()} and "
                         "not writable by group or others")
    return path
