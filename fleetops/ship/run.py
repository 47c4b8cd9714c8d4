"""Ship the ops zipapp to hosts and run one ops program per host under the JSON contract.

One SSH round trip per program run: a small POSIX sh bootstrap finds python3, whose
loader (``LAUNCH``) checks the cache and answers on a line of its own (whatever shell
start-up files printed before it is dropped): ``READY_MARKER`` when the zipapp with
this content hash is cached on the host, ``REQUEST_MARKER`` when it is not; then the
zipapp is sent (only on a miss) and stored atomically in a 0700 cache directory. Arguments are
quoted with ``shlex.quote``; programs whose argument spec parses the same anywhere get
them checked here and sent as one JSON document framed first on stdin (see
``ops._argspec`` and :func:`split_input`).
"""

from __future__ import annotations

import base64
import functools
import json
import marshal
import math
import shlex
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fleetops.config.targets import target_for
from fleetops.core.runner import Fleet, RunOptions, Session
from fleetops.results import HostResult, RunResult, build_data, human_bytes, truncation
from fleetops.ship import data as _typed  # noqa: F401  (registers each program's data class)
from fleetops.ship import schemas
from fleetops.ship.handshake import ABORT_MARKER, READY_MARKER, REQUEST_MARKER, Handshake
from fleetops.ship.zipapp import FINDER, Zipapp, build_zipapp
from ops._argspec import ARGS_FLAG, DOC_LIMIT, HEADER
from ops._contract import ProgramError

CACHE_DIR = ".cache/fleetops"  # under $HOME, nowhere else: no /tmp fallback
PYTHONS = ("python3", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python",
           "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8")
ARGV_FRAME_LIMIT = 4000  # characters: one shell word, under BSD csh's 8 KiB
RC_NO_PYTHON = 127
RC_UPLOAD_FAILED = 125
RC_CACHE_UNSAFE = 122
ArgsFor = Callable[[Any], Sequence[str]] | Sequence[str]

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
SLOW_STAMP = """
mark = "%s %d %d %d %d\\n" % (SUM, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
tmp = ".stamp.%d" % os.getpid()
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
try:
    try:
        t = os.open(tmp, flags, 0o600, dir_fd=fd)
    except FileExistsError:
        os.unlink(tmp, dir_fd=fd)
        t = os.open(tmp, flags, 0o600, dir_fd=fd)
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
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        t = os.open(tmp, flags, 0o600, dir_fd=fd)
    except FileExistsError:
        os.unlink(tmp, dir_fd=fd)
        t = os.open(tmp, flags, 0o600, dir_fd=fd)
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
    f = os.open(NAME, F, dir_fd=fd)
    st = os.fstat(f)
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
        f'echo "no python3 interpreter found (tried: {candidates})" >&2; exit {RC_NO_PYTHON}; fi',
        # C locale: stable output, and argparse's gettext skips its .mo file search
        f'l="{joined}"; shift {len(pieces)}',
        'LC_ALL=C LANGUAGE= exec "$py" -S -E -c "$l" "$@"',
    ])
    return f"/bin/sh -c {shlex.quote(script)} sh {args}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_document(stdout: bytes) -> dict[str, Any]:
    """Exactly one JSON object with the contract keys, else ValueError with a short reason.

    Strict JSON: NaN, Infinity and numbers that overflow a float (``1e999``) are refused;
    so is nesting deeper than Python's recursion limit."""
    text = stdout.decode("utf-8", "surrogateescape").strip()
    if not text:
        raise ValueError("program printed nothing")
    try:
        doc = _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        why = "" if isinstance(exc, json.JSONDecodeError | RecursionError) else str(exc)
        raise ValueError(f"program printed invalid output{f' ({why})' if why else ''}: "
                         f"{text[:200]!r}") from None
    if not isinstance(doc, dict) or not {"ok", "changed", "data", "error"} <= doc.keys():
        raise ValueError(f"program output is not a fleetops result: {text[:200]!r}")
    return doc


def _stderr_reason(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def classify(name: str, rc: int | None, stdout: bytes, stderr: bytes,
             program: str | None = None, discarded: dict[str, int] | None = None) -> HostResult:
    """Turn one program run into a HostResult (``data``: the program's typed
    :class:`~fleetops.results.ProgramData`, built once here from the checked document).

    The document is checked on arrival (:mod:`fleetops.ship.schemas`): a result that does
    not fit the contract or ``program``'s schema makes the host ``failed`` with the
    field named. Stdout cut at ``--max-output`` (``discarded``) is a failure too: the
    JSON document would be incomplete; a cut stderr is only noted (``truncated``)."""
    err = stderr.decode("utf-8", "surrogateescape")
    out = stdout.decode("utf-8", "surrogateescape")
    if discarded and discarded.get("stdout"):
        return truncation(HostResult(name, "failed", rc, out, err,
                                     reason="program output is over --max-output "
                                            f"({human_bytes(len(stdout))} kept)"), discarded)
    result = _judge(name, rc, stdout, out, err, program)
    return truncation(result, discarded) if discarded else result


def _judge(name: str, rc: int | None, stdout: bytes, out: str, err: str,
           program: str | None) -> HostResult:
    """The host's status from its exit code, stderr and checked JSON document."""
    if rc == RC_NO_PYTHON and not out.strip():
        reason = f"no usable python3 on the host: {_stderr_reason(err)}"
        return HostResult(name, "failed", rc, out, err, reason=reason)
    if (rc in (RC_UPLOAD_FAILED, RC_CACHE_UNSAFE) or "fleetops: cached zipapp" in err) \
            and not out.strip():
        return HostResult(name, "failed", rc, out, err, reason=_stderr_reason(err))
    try:
        doc = parse_document(stdout)
    except ValueError as exc:
        hint = f"{exc}; rc={rc}; stderr: {_stderr_reason(err)}"
        if "/.cache/fleetops/" in err and "cached zipapp" not in err:
            hint = (f"the cached copy of fleetops on this host is broken ({_stderr_reason(err)}); "
                    "remove ~/.cache/fleetops there and rerun")
        return HostResult(name, "failed", rc, out, err, reason=hint)
    try:
        schemas.check_contract(doc)
    except schemas.SchemaError as exc:
        return HostResult(name, "failed", rc, out, err, reason=f"bad result: {exc}",
                          data=build_data(None, {}))
    data = doc["data"] or {}
    try:
        if data or doc["ok"]:  # a failure's empty data needs none of the required keys
            schemas.check_data(data, program)
    except schemas.SchemaError as exc:
        if doc["ok"]:
            return HostResult(name, "failed", rc, out, err, reason=f"bad result: {exc}",
                              data=build_data(None, {}))
        error = doc["error"] or "failed"
        return HostResult(name, "failed", rc, out, err, data=build_data(None, {}),
                          reason=f"{error} (its data was ignored: {exc})")
    if not doc["ok"]:
        return HostResult(name, "failed", rc, out, err, reason=doc["error"] or "failed",
                          data=build_data(program, data))
    status = "changed" if doc["changed"] else "ok"
    return HostResult(name, status, rc, out, err, data=build_data(program, data))


def program_input(program: str, argv: Sequence[str],
                  stdin: bytes | None) -> tuple[list[str], bytes | None]:
    """The argv and stdin the program sees: for programs whose arguments parse the same
    anywhere, argv is checked here against the program's spec and sent as the framed JSON
    document first on stdin (argv then is ``ARGS_FLAG``); otherwise argv as given.
    ProgramError (rc 2, one line) if argv is bad. See :func:`split_input`."""
    argv2, first, after = split_input(program, argv, stdin)
    return argv2, (first + (after or b"")) if first else after


def split_input(program: str, argv: Sequence[str],
                stdin: bytes | None) -> tuple[list[str], bytes, bytes | None]:
    """(argv, document frame, stdin after it). A document up to :data:`ARGV_FRAME_LIMIT`
    base64 characters travels in argv (``FLAG=BASE64``) with the exec request: measured,
    a frame sent on stdin right after ``exec_command`` costs ~0.9 round trip per warm run
    (paramiko waits for the exec reply before any data, bench.disk-rtt). A larger one is
    sent first on stdin (``Handshake.first``), read by the loader before the handshake.
    The document carries argv's own values: no secret."""
    framed = _encoded_args(program, tuple(argv))
    if framed is None:
        return list(argv), b"", stdin
    text = base64.b64encode(framed).decode("ascii")
    if len(text) <= ARGV_FRAME_LIMIT:  # with the exec request: no wait at all
        return [f"{ARGS_FLAG}={text}"], b"", stdin
    return [ARGS_FLAG], framed, stdin


@functools.lru_cache(maxsize=256)
def _encoded_args(program: str, argv: tuple[str, ...]) -> bytes | None:
    """The framed JSON document of argv, once per distinct argv (not once per host);
    None when the host must parse argv itself. ProgramError (not cached) when bad."""
    from fleetops.ship import programs

    return programs.frame_of_argv(program, list(argv))


def run_program(session: Session, program: str, argv: Sequence[str],
                app: Zipapp | None = None, timeout: float | None = None,
                stdin: bytes | None = None) -> HostResult:
    """Run one ops program on the session's host (uploading the zipapp if needed).

    ``stdin`` reaches the program's standard input: the way to pass secrets and large
    content, which must never travel in argv (visible in ``ps`` on the host)."""
    app = app or build_zipapp()
    try:
        argv, first, stdin = split_input(program, argv, stdin)
    except ProgramError as exc:
        return HostResult(session.host.name, "failed", exc.rc, reason=str(exc))
    python = getattr(session.host, "python", None)
    conn = session.connection
    sent_before = conn.bytes_sent
    command = bootstrap_command(app, program, argv, python, with_stdin=stdin is not None)
    result = session.exec(command, Handshake(app.data, stdin or b"", first), timeout)
    host = classify(session.host.name, result.rc, result.stdout, result.stderr, program,
                    result.discarded)
    sent = conn.bytes_sent - sent_before
    sent -= len(first) if sent >= len(first) else 0  # sent at once: the arguments
    host.uploaded_bytes = sent - len(stdin) if stdin and sent >= len(stdin) else sent
    return host


def fleet_program(hosts: Iterable[Any], program: str, args_for: ArgsFor,
                  options: RunOptions | Fleet, on_result=None,
                  timeout: float | None = None, on_tick=None, events=None) -> RunResult:
    """Run ``program`` on every host in parallel; ``args_for(host)`` gives per-host argv;
    ``events``: a :class:`fleetops.core.events.Reporter` (instead of the callbacks).

    ``options`` is either RunOptions (a Fleet is made and closed here) or an open Fleet
    whose connections are reused (playbooks)."""
    app = build_zipapp()

    def work(session: Session) -> HostResult:
        argv = args_for(session.host) if callable(args_for) else args_for
        return run_program(session, program, list(argv), app, timeout)

    if isinstance(options, Fleet):
        return options.run(hosts, work, on_result=on_result, on_tick=on_tick, events=events)
    with Fleet(options, target_for) as fleet:
        return fleet.run(hosts, work, on_result=on_result, on_tick=on_tick, events=events)
