"""Host-side I/O for the ``cron`` program: the crontab binary, atomic files, backups."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time

from ops import _atomic, _crontab
from ops._contract import ProgramError

SAFE_PATH = _crontab.SAFE_PATH
_CHILD_ENV = {"LC_ALL": "C", "PATH": SAFE_PATH}


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def _crontab_argv(user, *rest):
    binary = shutil.which("crontab", path=SAFE_PATH)
    if not binary:
        raise ProgramError("crontab binary not found (is cron installed?)")
    argv = [binary]
    if os.geteuid() == 0 or user != current_user():
        argv += ["-u", user]
    return argv + list(rest)


def _crontab(argv):
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=_CHILD_ENV)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), \
        proc.stderr.decode("utf-8", "replace").strip()


def read_crontab(user):
    """(text, existed); a user without any crontab yet reads as empty."""
    rc, out, err = _crontab(_crontab_argv(user, "-l"))
    if rc == 0:
        return out, True
    if "no crontab for" in err:
        return "", False
    raise ProgramError("crontab -l for %s failed: %s" % (user, _last_line(err, rc)))


def write_crontab(user, text):
    if not text:
        rc, _, err = _crontab(_crontab_argv(user, "-r"))
        if rc != 0 and "no crontab for" not in err:
            raise ProgramError("crontab -r for %s failed: %s" % (user, _last_line(err, rc)))
        return
    fd, tmp = tempfile.mkstemp(prefix="fleetops-crontab-")
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, text)
        os.close(fd)
        fd = None
        rc, _, err = _crontab(_crontab_argv(user, tmp))
        if rc != 0:
            raise ProgramError("crontab refused the new crontab for %s: %s"
                               % (user, _last_line(err, rc)))
    finally:
        if fd is not None:
            os.close(fd)
        os.unlink(tmp)


def _last_line(err, rc):
    lines = [line for line in err.splitlines() if line.strip()]
    return lines[-1] if lines else "exit status %d" % rc


# -- files -------------------------------------------------------------------

def read_file(path, follow=False):
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(info.st_mode):
        raise ProgramError("%s is not a regular file: refusing to touch it" % path)
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "surrogateescape"), info


def _write_all(fd, text):
    data = text.encode("utf-8", "surrogateescape")
    while data:
        data = data[os.write(fd, data):]
    os.fsync(fd)


def atomic_write(path, text, mode):
    owner = 0 if os.geteuid() == 0 else None
    _atomic.write_atomic(path, text.encode("utf-8", "surrogateescape"), mode, owner, owner)


def unlink(path):
    os.unlink(path)
    _atomic.sync_dir(os.path.dirname(path))


def backup(directory, label, text):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if os.path.islink(directory):
        raise ProgramError("backup dir %s is a symlink: refusing" % directory)
    os.chmod(directory, 0o700)
    base = os.path.join(directory, "%s-%s" % (label, time.strftime("%Y%m%dT%H%M%SZ",
                                                                   time.gmtime())))
    path, count = base, 0
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            break
        except FileExistsError:
            count += 1
            path = "%s.%d" % (base, count)
    try:
        os.fchmod(fd, 0o600)
        _write_all(fd, text)
    finally:
        os.close(fd)
    return path
