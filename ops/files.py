"""Install one file atomically: content, mode, owner and group; changed only when they differ.

The content is read from standard input (never argv: it may be a secret, and argv
is visible in ``ps``); ``--size`` and ``--sha256`` must match what was read, so a
truncated transfer can never replace a file. The new file is written beside the
destination (temp file, fchmod, fchown, fsync, rename, fsync of the directory), so
readers see the old or the new file, never a mix. ``--backup`` keeps the replaced
file as ``DEST.<UTC time>.bak`` (a hard link, same mode). ``--check`` changes
nothing and reports what would change; ``--diff`` adds a unified diff of the content
(and a line for a mode change) under ``data.diff``. Without ``--mode`` an existing
file keeps its mode and a new one gets 0644.

No check-then-use gap: the destination's directory is opened once (``O_DIRECTORY``) and
everything after is relative to that fd. The existing file is opened ``O_NOFOLLOW`` and
must be the regular file ``lstat`` saw (same device and inode); a mode or owner change
is ``fchmod``/``fchown`` on that fd; new content is a temp file made ``O_EXCL`` in the
directory fd and renamed with directory fds. A symlink at the destination is refused;
one swapped in meanwhile is replaced (content) or left alone (mode/owner), never followed.
"""
import difflib
import grp
import hashlib
import os
import pwd
import re
import stat
import sys
import time

from ops import _atomic
from ops._argspec import Arg, converter
from ops._contract import Outcome, Program, ProgramError

NEW_FILE_MODE = 0o644
DIFF_MAX_BYTES = 512 * 1024
_MODE = re.compile(r"^0?[0-7]{3,4}$")


def _mode(value):
    if not _MODE.match(value):
        raise ValueError(value)
    return int(value, 8)


converter(_mode, "int", "octal mode", lambda value: "%04o" % value)


ARGS = (
    Arg("--dest", "path", required=True, help="absolute path of the file to install"),
    Arg("--size", "int", required=True, private=True,
        help="length of the content on standard input, in bytes"),
    Arg("--sha256", required=True, private=True, help="SHA-256 of the content (hex)"),
    Arg("--mode", _mode, help="octal mode such as 0644 (default: keep, or 0644 for a new file)"),
    Arg("--owner", help="user name or uid (default: keep, or the current user)"),
    Arg("--group", help="group name or gid (default: keep, or the user's)"),
    Arg("--backup", "flag", help="keep the replaced file as DEST.<time>.bak"),
    Arg("--parents", "flag", help="create missing parent directories (mode 0755)"),
    Arg("--diff", "flag", help="report a unified diff in data.diff"),
)


def _content(args):
    data = sys.stdin.buffer.read(args.size + 1)
    if len(data) != args.size:
        raise ProgramError("content incomplete or too long: read %d bytes, expected %d"
                           % (len(data), args.size))
    if hashlib.sha256(data).hexdigest() != args.sha256.lower():
        raise ProgramError("content does not match --sha256: refusing to write it")
    return data


def _id(name, lookup, kind):
    """A numeric id as given, else the id of ``name`` on this host (None: keep)."""
    if name is None:
        return None
    if name.isdigit():
        return int(name)
    try:
        return lookup(name)[2]
    except KeyError:
        raise ProgramError("no such %s %r on this host" % (kind, name)) from None


def _read_current(dir_fd, name, path):
    """(bytes, stat, fd) of the existing regular file, or (None, None, None) when absent."""
    try:
        seen = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None, None, None
    if not stat.S_ISREG(seen.st_mode):
        raise ProgramError("%s exists and is not a regular file: refusing to replace it" % path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise ProgramError("%s changed while being read (%s): refusing to touch it"
                           % (path, exc.strerror)) from None
    info = os.fstat(fd)
    if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ProgramError("%s was replaced while being read: refusing to touch it" % path)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks), info, fd


def _octal(mode):
    return None if mode is None else "0%o" % mode


def _text(data):
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def make_diff(path, old, new, old_mode, new_mode):
    """Unified diff of the content, plus a line for a mode change."""
    lines = []
    if old_mode != new_mode:
        lines.append("mode: %s -> %s\n" % (_octal(old_mode) or "(absent)", _octal(new_mode)))
    if old == new:
        return "".join(lines)
    before, after = _text(old or b""), _text(new)
    big = max(len(old or b""), len(new)) > DIFF_MAX_BYTES
    if before is None or after is None or big:
        lines.append("binary or large content differs: %d -> %d bytes (sha256 %s -> %s)\n" % (
            len(old or b""), len(new), hashlib.sha256(old or b"").hexdigest()[:12],
            hashlib.sha256(new).hexdigest()[:12]))
        return "".join(lines)
    label = path.lstrip("/")
    body = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                "before/" + label if old is not None else "/dev/null",
                                "after/" + label)
    for line in body:
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def _backup(dir_fd, name, path):
    """Hard link of the current file as NAME.<UTC time>.bak (the entry itself, never a
    symlink's target); returns the backup's path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = "%s.%s.bak" % (name, stamp)
    candidate, count = base, 0
    while True:
        try:
            os.link(name, candidate, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            return os.path.join(os.path.dirname(path), candidate)
        except FileExistsError:
            count += 1
            candidate = "%s.%d" % (base, count)


def _plan(args, old, info, new):
    """What differs: (content, mode, owner) flags and the wanted mode/uid/gid."""
    uid, gid = _id(args.owner, pwd.getpwnam, "user"), _id(args.group, grp.getgrnam, "group")
    if info is None:
        mode = NEW_FILE_MODE if args.mode is None else args.mode
        return True, True, uid is not None or gid is not None, mode, uid, gid
    old_mode = stat.S_IMODE(info.st_mode)
    mode = old_mode if args.mode is None else args.mode
    owner_differs = ((uid is not None and uid != info.st_uid)
                     or (gid is not None and gid != info.st_gid))
    return old != new, mode != old_mode, owner_differs, mode, uid, gid


def _open_parent(path, parents, check):
    """(directory fd or None, created directory or None); None only under --check."""
    directory = os.path.dirname(path)
    try:
        return _atomic.open_dir(directory), None
    except FileNotFoundError:
        pass
    if not parents:
        raise ProgramError("directory %s does not exist (set parents to create it)" % directory)
    if check:
        return None, directory
    os.makedirs(directory, mode=0o755, exist_ok=True)
    return _atomic.open_dir(directory), directory


def run(args):
    path = args.dest
    name = os.path.basename(path)
    if not os.path.isabs(path) or path.endswith("/") or name in ("", ".", ".."):
        raise ProgramError("--dest must be an absolute file path, not %r" % path, rc=2)
    new = _content(args)
    dir_fd = fd = None
    try:
        dir_fd, created_dir = _open_parent(path, args.parents, args.check)
        old = info = None
        if dir_fd is not None:
            old, info, fd = _read_current(dir_fd, name, path)
        content, mode_differs, owner_differs, mode, uid, gid = _plan(args, old, info, new)
        old_mode = None if info is None else stat.S_IMODE(info.st_mode)
        changed = content or mode_differs or owner_differs
        data = {"path": path, "existed": info is not None, "content_changed": content,
                "mode": _octal(mode), "mode_before": _octal(old_mode), "size": len(new),
                "sha256": hashlib.sha256(new).hexdigest(), "check": args.check,
                "backup": None, "created_dir": created_dir}
        if args.diff and changed:
            data["diff"] = make_diff(path, old, new, old_mode, mode)
        if changed and not args.check:
            _apply(args, (dir_fd, name, fd), path, new, content, (mode, uid, gid), data)
    except OSError as exc:
        raise ProgramError("%s: %s" % (exc.filename or path, exc.strerror or exc)) from None
    finally:
        for open_fd in (fd, dir_fd):
            if open_fd is not None:
                os.close(open_fd)
    return Outcome(changed, data)


def _apply(args, where, path, new, content, wanted, data):
    dir_fd, name, fd = where
    mode, uid, gid = wanted
    if content or fd is None:
        if args.backup and fd is not None:
            data["backup"] = _backup(dir_fd, name, path)
        _atomic.write_at(dir_fd, name, new, mode, uid, gid)
        return
    if uid is not None or gid is not None:
        os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    os.fchmod(fd, mode)


PROGRAM = Program("files", __doc__, ARGS, run, supports_check=True,
                  parse_on_control=True)
