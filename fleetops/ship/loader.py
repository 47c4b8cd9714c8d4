"""The remote command that starts an ops program: a POSIX sh bootstrap finds python3 and
runs the loader (``LAUNCH``), which checks the zipapp cache, answers the handshake
(``fleetops.ship.handshake``), reads the argument document framed first on stdin and runs
the program. Split out of :mod:`fleetops.ship.run` (which sends it and judges the result).

Values reaching the shell are quoted with ``shlex.quote``; the command is one line of
words under BSD csh's 8 KiB word limit (``_words``).
"""

from __future__ import annotations

import base64
import marshal
import shlex
import sys
import zlib
from collections.abc import Sequence

from fleetops.ship.handshake import ABORT_MARKER, READY_MARKER, REQUEST_MARKER
from fleetops.ship.zipapp import FINDER, Zipapp
from ops._argspec import ARGS_FLAG, DOC_LIMIT, HEADER

CACHE_DIR = ".cache/fleetops"  # under $HOME, nowhere else: no /tmp fallback
PYTHONS = ("python3", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python",
           "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8")
RC_NO_PYTHON = 127
RC_UPLOAD_FAILED = 125
RC_CACHE_UNSAFE = 122

# The loader: the host's python runs it with ``-S -E -c`` and argv NAME BLAKE2B SIZE
# PROGRAM [ARGS]. Python >= 3.6 syntax (an old python then says "too old" itself).
# 1. Cache directory, checked as sshd's StrictModes checks ~/.ssh: each component of
#    realpath($HOME) is opened from / as a directory fd with O_NOFOLLOW (no gap between
#    check and use) and must be owned by the user or root and not group/other-writable;
#    $HOME/.cache likewise (created 0700); $HOME/.cache/fleetops must be the user's, 0700.
# 2. A cached zipapp runs only if it is the user's regular file, not writable by others,
#    and its content hash is the expected one; otherwise it is removed (if it is the
#    user's) and uploaded again. The hash is BLAKE2b-256, not the SHA-256 that names the
#    file: the hosts' built-in blake2b takes 0.27 ms for the 240 KB archive, sha256 0.75
#    ms, and OpenSSL's (hashlib) costs 3 ms just to import (python3.11, this machine).
#    Verified once per cache entry: an upload (checked from stdin) or a pass writes the
#    stamp NAME.ok (0600, O_EXCL, then renamed) = "BLAKE2B INODE SIZE MTIME_NS CTIME_NS"
#    of the very fd it wrote (fstat after its rename) or hashed; a later
#    run whose fstat of NAME (opened O_NOFOLLOW) gives the same line, from a stamp that
#    is the user's regular file not writable by others, skips the hash. Any write,
#    rename or replacement of NAME changes its ctime (which no user can set back), so a
#    changed file is hashed again.
# 2b. The archive's bytecode bundle (``fleetops.ship.zipapp.FINDER``) then imports ``ops`` from
#    those verified bytes (zipimport, reading the file again per module, is the fallback).
# 3. The handshake line (after a newline: an rc file may have left half a line) asks for
#    the zipapp or says it is there; an upload is read from fd 0 byte-exact, checked
#    against the hash, written O_EXCL/0600 beside its name, renamed into place.
# A refusal prints ABORT_MARKER, one "fleetops: ..." line on stderr, exits with its rc.
# Hosts with this control's Python get the loader marshalled (see ``_launch``); the
# others compile it, so rarely needed code (creating directories, refusing, uploading)
# is kept in strings compiled only when used: the hot path compiles in 0.44 ms, all 0.86.
# Measured end to end (warm run of diskreport, same Python): about +1 ms of host CPU per
# run over the unchecked loader, mostly reading and hashing the archive.
_LOADER = r'''import os, sys
A = sys.argv
NAME, SUM, SIZE = A[1], A[2], int(A[3])
del A[1:4]
if A[2:] == ["@ARGS@"]:  # the argument document, framed first on stdin: read it now
    def take(n, got=b""):
        while len(got) < n:
            chunk = os.read(0, n - len(got))
            if not chunk:
                break
            got += chunk
        return got
    J = take(@HEADER@)
    if len(J) == @HEADER@ and J.isdigit() and int(J) <= @LIMIT@:
        J += take(int(J))
    A[2] += "=" + J.decode("latin-1")
UID = os.geteuid()
F = os.O_RDONLY | os.O_NOFOLLOW
D = F | os.O_DIRECTORY


def say(marker):
    os.write(1, b"\n" + marker + b"\n")


def die(rc, msg):
    say(b"@ABORT@")
    sys.stderr.write("fleetops: " + msg + "\n")
    sys.exit(rc)


def step(fd, part, path, last):
    try:
        new = os.open(part, D, dir_fd=fd)
    except OSError as e:
        found = dict(locals())
        exec(SLOW_STEP, globals(), found)
        new = found["new"]
    if fd is not None:
        os.close(fd)
    st = os.fstat(new)
    if (st.st_uid, st.st_mode & 0o7777) == (UID, 0o700) or (
            last is False and st.st_uid in (UID, 0) and st.st_mode & 0o022 == 0):
        return new
    exec(SLOW_REFUSE)


SLOW_STEP = """
if e.errno - 2 or fd is None or part not in ("@CACHE1@", "@CACHE2@"):
    die(@UNSAFE@, "%s: %s (missing, a symlink or not a directory): refusing it for the zipapp "
        "cache" % (path, e.strerror))
try:
    os.mkdir(part, 0o700, dir_fd=fd)
    new = os.open(part, D, dir_fd=fd)
except OSError as e:
    die(@UNSAFE@, "cannot create %s: %s" % (path, e.strerror))
"""
SLOW_REFUSE = """
mode = st.st_mode & 0o7777
if last:
    die(@UNSAFE@, "%s must be owned by uid %d with mode 0700 (it is uid %d, mode %o): refusing "
        "to run code from it" % (path, UID, st.st_uid, mode))
die(@UNSAFE@, "%s is owned by uid %d or writable by group/others (mode %o): refusing it for "
    "the zipapp cache" % (path, st.st_uid, mode))
"""
SLOW_BLAKE2B = """
try:
    from _blake2 import blake2b
except ImportError:
    from hashlib import blake2b
"""
SLOW_HASH = """
exec(SLOW_BLAKE2B)
if blake2b(data, digest_size=32).hexdigest() == SUM:
    ok = True
    exec(SLOW_STAMP)
"""
SLOW_TMP = """
def private_tmp(tmp):
    # a new 0600 file in the cache dir fd, never through a link; a stale one of an
    # earlier run with our pid is replaced
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        return os.open(tmp, flags, 0o600, dir_fd=fd)
    except FileExistsError:
        os.unlink(tmp, dir_fd=fd)
        return os.open(tmp, flags, 0o600, dir_fd=fd)
"""
SLOW_STAMP = """
mark = "%s %d %d %d %d\\n" % (SUM, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
tmp = ".stamp.%d" % os.getpid()
exec(SLOW_TMP)
try:
    t = private_tmp(tmp)
    with os.fdopen(t, "w") as w:
        w.write(mark)
    os.rename(tmp, NAME + ".ok", src_dir_fd=fd, dst_dir_fd=fd)
except OSError:
    pass
"""
SLOW_UPLOAD = """
exec(SLOW_BLAKE2B)
say(b"@REQUEST@")
data, h, left = [], blake2b(digest_size=32), SIZE
while left:
    chunk = os.read(0, min(left, 1 << 20))
    if not chunk:
        die(@UPLOAD@, "zipapp upload incomplete: got %d of %d bytes" % (SIZE - left, SIZE))
    h.update(chunk)
    data.append(chunk)
    left -= len(chunk)
if h.hexdigest() == SUM:
    data = b"".join(data)
    tmp = ".upload.%d" % os.getpid()
    exec(SLOW_TMP)
    t = private_tmp(tmp)
    with os.fdopen(t, "wb") as w:
        w.write(data)
        w.flush()
        os.rename(tmp, NAME, src_dir_fd=fd, dst_dir_fd=fd)
        st = os.fstat(t)  # the inode just written from the checked bytes, as renamed
    exec(SLOW_STAMP)
    import time
    old = time.time() - 86400
    for name in os.listdir(fd):
        if name.startswith(("fleetops-", ".upload.", ".stamp.")) and name not in (NAME,):
            try:
                if os.stat(name, dir_fd=fd, follow_symlinks=False).st_mtime < old:
                    os.unlink(name, dir_fd=fd)
            except OSError:
                pass
else:
    die(@UPLOAD@, "zipapp upload corrupted: its BLAKE2b-256 is not %s" % SUM)
"""
SLOW_CHECK = """
if st.st_mode & 0o170000 not in (0o100000, 0o120000):  # a symlink is replaced, not followed
    die(@UNSAFE@, "cached zipapp %s/%s is not a regular file: refusing to use or remove it "
        "(remove it by hand)" % (path, NAME))
if st.st_uid - UID:
    die(@UNSAFE@, "cached zipapp %s belongs to uid %d, not to uid %d: refusing to run or remove "
        "it" % (NAME, st.st_uid, UID))
os.unlink(NAME, dir_fd=fd)
sys.stderr.write("fleetops: cached zipapp %s failed its check: removed it\\n" % NAME)
"""


def stamp(fd):
    """The stamp written when NAME last passed its hash check (None if there is none
    that is a regular file of ours, not writable by others)."""
    try:
        s = os.open(NAME + ".ok", F | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        return None
    try:
        t = os.fstat(s)
        if t.st_uid == UID and t.st_mode & 0o022 == 0 and t.st_mode & 0o170000 == 0o100000:
            return os.read(s, 512).decode("ascii", "replace")
    finally:
        os.close(s)
home = os.environ.get("HOME") or ""
if home.startswith("/") is False:
    die(@UNSAFE@, "HOME is %s: no safe place for the zipapp cache (there is no /tmp fallback)"
        % (repr(home) if home else "unset or empty"))
parts = [p for p in os.path.realpath(home).split("/") if p] + ["@CACHE1@", "@CACHE2@"]
fd, path = step(None, "/", "/", False), ""
for i, part in enumerate(parts):
    path += "/" + part
    fd = step(fd, part, path, i == len(parts) - 1)
ok, data = False, b""
try:
    f = os.open(NAME, F | os.O_NONBLOCK, dir_fd=fd)
    st = os.fstat(f)
    if st.st_mode & 0o170000 != 0o100000:
        os.close(f)
        raise OSError("not a regular file")
    with os.fdopen(f, "rb") as h:
        if st.st_uid == UID and st.st_mode & 0o022 == 0:
            data = h.read()
            mark = "%s %d %d %d %d\n" % (SUM, st.st_ino, st.st_size, st.st_mtime_ns,
                                         st.st_ctime_ns)
            ok = len(data) == st.st_size and stamp(fd) == mark
            if ok is False:
                exec(SLOW_HASH)
except FileNotFoundError:
    st = None
except OSError:
    st = os.stat(NAME, dir_fd=fd, follow_symlinks=False)
if ok is False and st is not None:
    exec(SLOW_CHECK)
if ok:
    say(b"@READY@")
else:
    exec(SLOW_UPLOAD)
os.close(fd)
p = sys.path[0] = path + "/" + NAME
try:
    fleetops_bundle(data, p)
except Exception:
    pass
try:
    from ops.__main__ import main, finish
except ImportError as e:
    os.unlink(p)
    sys.exit("fleetops: cached zipapp %s is broken (%s): removed it, the next run uploads a "
             "fresh copy" % (p, e))
finish(main())
'''


def _loader_source() -> str:
    source = FINDER + _LOADER
    for token, value in (("@ABORT@", ABORT_MARKER.decode()), ("@READY@", READY_MARKER.decode()),
                         ("@REQUEST@", REQUEST_MARKER.decode()), ("@UNSAFE@", str(RC_CACHE_UNSAFE)),
                         ("@UPLOAD@", str(RC_UPLOAD_FAILED)), ("@CACHE1@", CACHE_DIR.split("/")[0]),
                         ("@CACHE2@", CACHE_DIR.split("/")[1]), ("@ARGS@", ARGS_FLAG),
                         ("@HEADER@", str(HEADER)), ("@LIMIT@", str(DOC_LIMIT))):
        source = source.replace(token, value)
    return source


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def _launch() -> str:
    """The ``-c`` program: the loader's code object (marshal, zlib, base64) for hosts
    whose python has this control's bytecode format, its source for the others.
    Compiling the loader costs ~1 ms of a cold interpreter, unmarshalling ~0.1 ms.
    One line: csh chokes on newlines (see ``_words`` for its word-length limit)."""
    source = _loader_source()
    code = marshal.dumps(compile(source, "<fleetops-loader>", "exec", dont_inherit=True))
    stage = ("import sys, zlib, marshal, binascii\n"
             "d = lambda s: zlib.decompress(binascii.a2b_base64(s))\n"
             "try:\n"
             f"    c = sys.implementation.cache_tag == {sys.implementation.cache_tag!r} and "
             f"marshal.loads(d({_pack(code)!r}))\n"
             "except Exception:\n"
             "    c = None\n"
             f"exec(c or d({_pack(source.encode())!r}).decode())\n")
    return f"exec({stage!r})"


def _words(text: str, size: int = 4000) -> list[str]:
    """``text`` cut into pieces the shell joins again: BSD csh (a login shell sshd may
    run the command with) refuses any word over 8 KiB with "Word too long."."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


LAUNCH = _launch()


def bootstrap_command(app: Zipapp, program: str, argv: Sequence[str], python: str | None,
                      with_stdin: bool = False) -> str:
    """The remote command: find python, then the loader (``LAUNCH``) checks the cache,
    asks for the zipapp only when it is missing or fails its check, and runs the program.

    The zipapp carries bytecode for the control machine's Python next to the sources,
    so a host with the same version compiles nothing; others compile as usual. The
    program runs with ``-S -E -c`` (no site, no PYTHON* env, no runpy): the fixed
    interpreter cost per host matters when a fleet run is CPU-bound on the hosts.
    ``with_stdin`` is kept for callers: the program's stdin is the channel either way,
    and it ends right after the handshake (plus ``stdin_after``)."""
    del with_stdin
    candidates = " ".join(shlex.quote(p) for p in ([python] if python else PYTHONS))
    pieces = _words(LAUNCH)
    args = " ".join(shlex.quote(a) for a in (*pieces, app.name, app.blake2b, str(app.size),
                                            program, *argv))
    joined = "".join(f"${{{i}}}" for i in range(1, len(pieces) + 1))
    script = "; ".join([
        "umask 077",
        'py=""',
        f'for c in {candidates}; do if command -v "$c" >/dev/null 2>&1; then py=$c; break; fi; done',
        f'if [ -z "$py" ]; then printf "\\n%s\\n" {ABORT_MARKER.decode()}; '
        # the candidates are shell-quoted words: outside double quotes, never expanded
        f'echo "no python3 interpreter found (tried:" {candidates}")" >&2; '
        f'exit {RC_NO_PYTHON}; fi',
        # C locale: stable output, and argparse's gettext skips its .mo file search
        f'l="{joined}"; shift {len(pieces)}',
        'LC_ALL=C LANGUAGE= exec "$py" -S -E -c "$l" "$@"',
    ])
    return f"/bin/sh -c {shlex.quote(script)} sh {args}"
