"""Atomic file replacement shared by the programs that write files (cron, files).

Temp file in the destination's directory, explicit mode (and owner), fsync, rename,
fsync of the directory: readers see the old or the new file, never a mix, and a
crash leaves no half-written file behind.
"""
import os
import tempfile


def write_atomic(path, data, mode, uid=None, gid=None):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".%s.fleetops-" % os.path.basename(path), dir=directory)
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
        os.rename(tmp, path)
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sync_dir(directory)


def sync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
