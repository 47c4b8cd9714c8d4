"""Ship the ops zipapp to hosts and run one ops program per host under the JSON contract.

One SSH round trip per program run: a small POSIX sh bootstrap finds python3 and
answers on its first stdout line: ``READY_MARKER`` when the zipapp with this content
hash is cached on the host, ``REQUEST_MARKER`` when it is not; then the zipapp is
sent (only on a miss) and stored atomically in a 0700 cache directory. Arguments are
quoted with ``shlex.quote``; programs whose argument spec parses the same anywhere get
them checked here and sent parsed on stdin (see ``ops._contract.PARSED_ARGS_FLAG``).
"""

from __future__ import annotations

import functools
import importlib
import json
import marshal
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fleetops.results import HostResult, RunResult
from fleetops.runner import Fleet, RunOptions, Session
from fleetops.ssh import ABORT_MARKER, READY_MARKER, REQUEST_MARKER
from fleetops.targets import target_for
from fleetops.zipapp import Zipapp, build_zipapp
from ops._contract import PARSED_ARGS_FLAG, ProgramError

CACHE_DIR = ".cache/fleetops"  # under $HOME, nowhere else: no /tmp fallback
PYTHONS = ("python3", "/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python",
           "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8")
RC_NO_PYTHON = 127
RC_UPLOAD_FAILED = 125
RC_CACHE_UNSAFE = 122
ArgsFor = Callable[[Any], Sequence[str]] | Sequence[str]

# The loader: the host's python runs it with ``-S -E -c`` and argv NAME SHA256 SIZE
# PROGRAM [ARGS]. Python >= 3.6 syntax (an old python then says "too old" itself).
# 1. Cache directory, checked as sshd's StrictModes checks ~/.ssh: each component of
#    realpath($HOME) is opened from / as a directory fd with O_NOFOLLOW (no gap between
#    check and use) and must be owned by the user or root and not group/other-writable;
#    $HOME/.cache likewise (created 0700); $HOME/.cache/fleetops must be the user's, 0700.
# 2. A cached zipapp runs only if it is the user's regular file, not writable by others,
#    and its SHA-256 is the expected one (~0.8 ms for 240 KB); otherwise it is removed.
# 3. The handshake line (after a newline: an rc file may have left half a line) asks for
#    the zipapp or says it is there; an upload is read from fd 0 byte-exact, checked
#    against the SHA-256, written O_EXCL/0600 beside its name, renamed into place.
# A refusal prints ABORT_MARKER, one "fleetops: ..." line on stderr, exits with its rc.
_LOADER = r'''import os, sys
try:
    from _sha256 import sha256
except ImportError:
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256
A = sys.argv
NAME, SHA, SIZE = A[1], A[2], int(A[3])
del A[1:4]
UID = os.geteuid()
D = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def say(marker):
    os.write(1, b"\n" + marker + b"\n")


def die(rc, msg):
    say(b"@ABORT@")
    sys.stderr.write("fleetops: " + msg + "\n")
    sys.exit(rc)


def step(fd, part, path, last):
    try:
        new = os.open(part, D, dir_fd=fd)
    except FileNotFoundError:
        if fd is None or part not in ("@CACHE1@", "@CACHE2@"):
            die(@UNSAFE@, "%s does not exist: no place for the zipapp cache" % path)
        try:
            os.mkdir(part, 0o700, dir_fd=fd)
            new = os.open(part, D, dir_fd=fd)
        except OSError as e:
            die(@UNSAFE@, "cannot create %s: %s" % (path, e.strerror))
    except OSError as e:
        die(@UNSAFE@, "%s: %s (a symlink or not a directory): refusing it for the zipapp "
            "cache" % (path, e.strerror))
    if fd is not None:
        os.close(fd)
    st = os.fstat(new)
    mode = st.st_mode & 0o7777
    if last and (st.st_uid == UID and mode == 0o700) is False:
        die(@UNSAFE@, "%s must be owned by uid %d with mode 0700 (it is uid %d, mode %o): "
            "refusing to run code from it" % (path, UID, st.st_uid, mode))
    if st.st_uid not in (UID, 0) or mode & 0o022:
        die(@UNSAFE@, "%s is owned by uid %d or writable by group/others (mode %o): refusing "
            "it for the zipapp cache" % (path, st.st_uid, mode))
    return new


def cache_dir():
    home = os.environ.get("HOME") or ""
    if home.startswith("/") is False:
        die(@UNSAFE@, "HOME is %s: no safe place for the zipapp cache (there is no /tmp "
            "fallback)" % (repr(home) if home else "unset or empty"))
    real = os.path.realpath(home)
    parts = [p for p in real.split("/") if p] + ["@CACHE1@", "@CACHE2@"]
    fd, path = step(None, "/", "/", False), ""
    for i, part in enumerate(parts):
        path += "/" + part
        fd = step(fd, part, path, i == len(parts) - 1)
    return fd, path


def cached(fd):
    try:
        f = os.open(NAME, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
    except FileNotFoundError:
        return False
    except OSError:
        f = None
    st = os.stat(NAME, dir_fd=fd, follow_symlinks=False) if f is None else os.fstat(f)
    if st.st_uid - UID:
        die(@UNSAFE@, "cached zipapp %s belongs to uid %d, not to uid %d: refusing to run or "
            "remove it" % (NAME, st.st_uid, UID))
    ok = False
    if f is not None:
        with os.fdopen(f, "rb") as h:
            ok = st.st_mode & 0o022 == 0 and sha256(h.read()).hexdigest() == SHA
    if ok is False:
        os.unlink(NAME, dir_fd=fd)
        sys.stderr.write("fleetops: cached zipapp %s failed its check: removed it\n" % NAME)
    return ok


def upload(fd):
    say(b"@REQUEST@")
    data, h, left = [], sha256(), SIZE
    while left:
        chunk = os.read(0, min(left, 1 << 20))
        if not chunk:
            die(@UPLOAD@, "zipapp upload incomplete: got %d of %d bytes" % (SIZE - left, SIZE))
        h.update(chunk)
        data.append(chunk)
        left -= len(chunk)
    if h.hexdigest() == SHA:
        tmp = ".upload.%d" % os.getpid()
        try:
            t = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        except FileExistsError:
            os.unlink(tmp, dir_fd=fd)
            t = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        with os.fdopen(t, "wb") as w:
            w.write(b"".join(data))
        os.rename(tmp, NAME, src_dir_fd=fd, dst_dir_fd=fd)
        prune(fd)
        return
    die(@UPLOAD@, "zipapp upload corrupted: its SHA-256 is not %s" % SHA)


def prune(fd):
    import time
    old = time.time() - 86400
    for name in os.listdir(fd):
        if name.startswith(("fleetops-", ".upload.")) and name not in (NAME,):
            try:
                if os.stat(name, dir_fd=fd, follow_symlinks=False).st_mtime < old:
                    os.unlink(name, dir_fd=fd)
            except OSError:
                pass


fd, path = cache_dir()
if cached(fd):
    say(b"@READY@")
else:
    upload(fd)
os.close(fd)
p = sys.path[0] = path + "/" + NAME
try:
    from ops.__main__ import main
except ImportError as e:
    os.unlink(p)
    sys.exit("fleetops: cached zipapp %s is broken (%s): removed it, the next run uploads a "
             "fresh copy" % (p, e))
sys.exit(main())
'''


def _loader_source() -> str:
    source = _LOADER
    for token, value in (("@ABORT@", ABORT_MARKER.decode()), ("@READY@", READY_MARKER.decode()),
                         ("@REQUEST@", REQUEST_MARKER.decode()), ("@UNSAFE@", str(RC_CACHE_UNSAFE)),
                         ("@UPLOAD@", str(RC_UPLOAD_FAILED)), ("@CACHE1@", CACHE_DIR.split("/")[0]),
                         ("@CACHE2@", CACHE_DIR.split("/")[1])):
        source = source.replace(token, value)
    return source


def _launch() -> str:
    """One shell line (no newlines: login shells such as csh choke on them): the loader's
    code object for hosts with this control's Python (marshal: no compile, ~0.8 ms less
    per run), its source for the others."""
    source = _loader_source()
    code = marshal.dumps(compile(source, "<fleetops-loader>", "exec", dont_inherit=True))
    return (f"import sys, marshal; exec(marshal.loads(bytes.fromhex({code.hex()!r})) "
            f"if sys.implementation.cache_tag == {sys.implementation.cache_tag!r} "
            f"else {source!r})")


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
    args = " ".join(shlex.quote(a) for a in (app.name, app.sha256, str(app.size), program, *argv))
    script = "; ".join([
        "umask 077",
        'py=""',
        f'for c in {candidates}; do if command -v "$c" >/dev/null 2>&1; then py=$c; break; fi; done',
        f'if [ -z "$py" ]; then printf "\\n%s\\n" {ABORT_MARKER.decode()}; '
        f'echo "no python3 interpreter found (tried: {candidates})" >&2; exit {RC_NO_PYTHON}; fi',
        # C locale: stable output, and argparse's gettext skips its .mo file search
        f'LC_ALL=C LANGUAGE= exec "$py" -S -E -c {shlex.quote(LAUNCH)} {args}',
    ])
    return f"/bin/sh -c {shlex.quote(script)}"


def parse_document(stdout: bytes) -> dict[str, Any]:
    """Exactly one JSON object with the contract keys, else ValueError with a short reason."""
    text = stdout.decode("utf-8", "replace").strip()
    if not text:
        raise ValueError("program printed nothing")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"program printed invalid output: {text[:200]!r}") from None
    if not isinstance(doc, dict) or not {"ok", "changed", "data", "error"} <= doc.keys():
        raise ValueError(f"program output is not a fleetops result: {text[:200]!r}")
    return doc


def _stderr_reason(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def classify(name: str, rc: int | None, stdout: bytes, stderr: bytes) -> HostResult:
    """Turn one program run into a HostResult (``extra['data']`` = the program's data)."""
    err = stderr.decode("utf-8", "replace")
    out = stdout.decode("utf-8", "replace")
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
    data = doc.get("data") or {}
    if not doc["ok"]:
        return HostResult(name, "failed", rc, out, err, reason=doc.get("error") or "failed",
                          extra={"data": data})
    status = "changed" if doc["changed"] else "ok"
    return HostResult(name, status, rc, out, err, extra={"data": data})


def program_input(program: str, argv: Sequence[str],
                  stdin: bytes | None) -> tuple[list[str], bytes | None]:
    """The argv and stdin to send: for programs whose arguments parse the same anywhere,
    check argv here with the program's own spec and send the parsed values on stdin
    (the host skips argparse); otherwise argv as given. ProgramError if argv is bad."""
    framed = _encoded_args(program, tuple(argv))
    if framed is None:
        return list(argv), stdin
    return [PARSED_ARGS_FLAG], framed + (stdin or b"")


@functools.lru_cache(maxsize=256)
def _encoded_args(program: str, argv: tuple[str, ...]) -> bytes | None:
    """Parsed-and-framed argv, once per distinct argv (not once per host); None when the
    host must parse argv itself. ProgramError (not cached) when argv is bad."""
    spec = importlib.import_module(f"ops.{program}").PROGRAM
    if not spec.parse_on_control:
        return None
    try:
        return spec.encode(list(argv))
    except ValueError:  # a value marshal cannot carry: let the host parse argv itself
        return None


def run_program(session: Session, program: str, argv: Sequence[str],
                app: Zipapp | None = None, timeout: float | None = None,
                stdin: bytes | None = None) -> HostResult:
    """Run one ops program on the session's host (uploading the zipapp if needed).

    ``stdin`` reaches the program's standard input: the way to pass secrets and large
    content, which must never travel in argv (visible in ``ps`` on the host)."""
    app = app or build_zipapp()
    try:
        argv, stdin = program_input(program, argv, stdin)
    except ProgramError as exc:
        return HostResult(session.host.name, "failed", exc.rc, reason=str(exc))
    python = getattr(session.host, "python", None)
    conn = session.connection
    sent_before = conn.bytes_sent
    command = bootstrap_command(app, program, argv, python, with_stdin=stdin is not None)
    result = session.exec(command, timeout=timeout, stdin_on_request=app.data,
                          stdin_after=stdin or b"")
    host = classify(session.host.name, result.rc, result.stdout, result.stderr)
    sent = conn.bytes_sent - sent_before
    host.extra["uploaded_bytes"] = sent - len(stdin) if stdin and sent >= len(stdin) else sent
    return host


def fleet_program(hosts: Iterable[Any], program: str, args_for: ArgsFor,
                  options: RunOptions | Fleet, on_result=None,
                  timeout: float | None = None, on_tick=None) -> RunResult:
    """Run ``program`` on every host in parallel; ``args_for(host)`` gives per-host argv.

    ``options`` is either RunOptions (a Fleet is made and closed here) or an open Fleet
    whose connections are reused (playbooks)."""
    app = build_zipapp()

    def work(session: Session) -> HostResult:
        argv = args_for(session.host) if callable(args_for) else args_for
        return run_program(session, program, list(argv), app, timeout)

    if isinstance(options, Fleet):
        return options.run(hosts, work, on_result=on_result, on_tick=on_tick)
    with Fleet(options, target_for) as fleet:
        return fleet.run(hosts, work, on_result=on_result, on_tick=on_tick)
