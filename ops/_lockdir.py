"""Where scheduled jobs keep their ``flock -n`` lock files, and making that place safe.

``flock(1)`` opens its lock file with ``O_CREAT`` and follows symlinks, so the file must
live where only the job's own user (or root) can create entries: in a shared sticky
directory such as ``/run/lock`` any user could pre-create the lock (and silently stop
root's job) or plant a symlink (and make root create ``/etc/nologin``).

* jobs run as root: ``/var/lib/fleetops/lock`` (root's, 0755; persistent, unlike /run,
  so it still exists when cron starts the job after a reboot);
* jobs run as another user, installed by root: ``/var/lib/fleetops/lock/USER``, owned by
  that user, 0700;
* jobs a non-root user installs for itself: ``~/.cache/fleetops/lock`` (0700).

Every component is opened from the top with ``O_DIRECTORY|O_NOFOLLOW`` (a directory fd
each, no check-then-use gap), created with an explicit mode when missing, and checked:
owned by root (or, for a user's own part, that user), not group/other-writable.
"""
import os
import pwd

from ops._contract import ProgramError

LOCK_BASE = "/var/lib/fleetops/lock"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def lock_dir(run_as, root="/"):
    """The lock directory for a job run as user ``run_as`` (see the module docstring)."""
    if os.geteuid() != 0:
        return os.path.join(pwd.getpwuid(os.geteuid()).pw_dir, ".cache", "fleetops", "lock")
    base = LOCK_BASE if root in ("", "/") else os.path.join(root, LOCK_BASE.lstrip("/"))
    return base if run_as == "root" else os.path.join(base, run_as)


def ensure(path, run_as, root="/"):
    """Create or check ``path`` (from :func:`lock_dir`); ProgramError with the reason."""
    start = "/" if root in ("", "/") else root
    if os.geteuid() != 0:
        start = pwd.getpwuid(os.geteuid()).pw_dir
    user = pwd.getpwnam(run_as) if os.geteuid() == 0 and run_as != "root" else None
    rel = os.path.relpath(path, start)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    fd = os.open(start, _DIR)
    try:
        _check(fd, start, private=False)
        here = start
        for index, part in enumerate(parts):
            here = os.path.join(here, part)
            leaf = index == len(parts) - 1
            mine = os.geteuid() != 0
            personal = (leaf and user is not None) or (mine and index >= 1)
            new = _step(fd, part, here, 0o700 if personal or mine else 0o755,
                        user if leaf else None)
            os.close(fd)
            fd = new
            _check(fd, here, private=personal, owner=user.pw_uid if leaf and user else None)
    finally:
        os.close(fd)


def _step(fd, part, path, mode, user):
    try:
        new = os.open(part, _DIR, dir_fd=fd)
    except FileNotFoundError:
        os.mkdir(part, mode, dir_fd=fd)
        new = os.open(part, _DIR, dir_fd=fd)
        os.fchmod(new, mode)  # whatever the umask
        if user is not None:
            os.fchown(new, user.pw_uid, user.pw_gid)
    except OSError as exc:
        raise ProgramError("lock directory %s: %s (a symlink or not a directory): refusing "
                           "it" % (path, exc.strerror)) from None
    return new


def _check(fd, path, private, owner=None):
    st = os.fstat(fd)
    allowed = (owner,) if owner is not None else (os.geteuid(), 0)
    mode = st.st_mode & 0o7777
    if st.st_uid not in allowed or mode & (0o077 if private else 0o022):
        raise ProgramError("lock directory %s is owned by uid %d with mode %o: it must be "
                           "uid %s's and not writable by %s; refusing to lock jobs in it"
                           % (path, st.st_uid, mode, "/".join(str(a) for a in allowed),
                              "anyone else" if private else "group/others"))
