"""Atomic file replacement shared by the programs that write files (cron, files).

Everything happens relative to an open directory fd: the temp file is created there
with ``O_CREAT|O_EXCL|O_NOFOLLOW`` (mode 0600 until ``fchmod``), given its owner with
``fchown``, written, fsynced and renamed over the name with ``src_dir_fd``/``dst_dir_fd``,
then the directory is fsynced. A symlink swapped in anywhere is replaced, never followed;
readers see the old or the new file, never a mix, and a crash leaves no half-written file.
"""
import os

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC


def open_dir(directory):
    """A directory fd (the path's symlinks are resolved once, here; then fds are used)."""
    return os.open(directory or ".", DIR_FLAGS)


def write_atomic(path, data, mode, uid=None, gid=None):
    directory, name = os.path.split(path)
    dir_fd = open_dir(directory)
    try:
        write_at(dir_fd, name, data, mode, uid, gid)
    finally:
        os.close(dir_fd)


def write_at(dir_fd, name, data, mode, uid=None, gid=None):
    """Replace ``name`` in the directory ``dir_fd`` by ``data`` with ``mode``/owner."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(100):
        tmp = ".%s.fleetops-%s" % (name[:100], os.urandom(6).hex())
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError("no free temporary name beside %s" % name)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)  # chown clears setuid/setgid bits
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)


def sync_dir(directory):
    fd = open_dir(directory)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
