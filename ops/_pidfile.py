"""The daemon pidfile: one stable file, locked for the daemon's whole life.

One *stable* file is locked with ``flock(LOCK_EX|LOCK_NB)`` for the
daemon's whole life and the pid is written *into* it (``pwrite`` of ``"PID\\n"`` at
offset 0, then ``ftruncate`` to that length, then ``fsync``; a reader sees either the
old or the new first line). It is never renamed or unlinked: a rename or unlink
would leave the lock on an inode other starters no longer open, so two daemons
could both "hold" the pidfile. "Running" means "the lock is held", never "the pid
in the file is alive": after ``kill -9`` the kernel drops the lock with the process,
so a stale pid does not block a restart, and pid reuse cannot fake a live daemon.
"""
import fcntl
import os
import time

PID_MODE = 0o640
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class Busy(Exception):
    """The pidfile lock is held by another process (``pid`` may be None while it starts)."""

    def __init__(self, pid):
        Exception.__init__(self, "already running (pid %s)" % pid)
        self.pid = pid


def _read_pid(fd):
    try:
        first = os.pread(fd, 32, 0).split(b"\n", 1)[0].strip()
        return int(first) if first else None
    except (OSError, ValueError):
        return None


class Pidfile(object):
    """An flock-held pidfile (see the module docstring for why it is never renamed)."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def acquire(self, patience=0.5):
        """Lock or raise Busy; short retries absorb a concurrent status probe's brief lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, PID_MODE)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _read_pid(fd)
                    os.close(fd)
                    raise Busy(pid) from None
                time.sleep(0.02)

    def write(self, pid):
        data = b"%d\n" % pid
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))
        os.fsync(self.fd)

    def release(self):
        """Clear the pid (the file stays: it is the lock's identity) and drop the lock."""
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def probe(path, wait_pid=1.0):
    """(running, pid): running means the lock is held; waits briefly for a starting pid."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except FileNotFoundError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            deadline = time.monotonic() + wait_pid
            pid = _read_pid(fd)
            while pid is None and time.monotonic() < deadline:
                time.sleep(0.02)
                pid = _read_pid(fd)
            return True, pid
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, _read_pid(fd)
    finally:
        os.close(fd)
