"""The daemonizer: double fork, pidfile lock, start-up handshake, signals, log files.

A *service* is any object with ``prepare()`` (start-up checks, raises
:class:`ops._contract.ProgramError`) and ``serve(runtime)`` (runs until
``runtime.stopping`` is set or its own bound is reached, returns a summary dict).

The pidfile (a stable, flock-held file) is explained in :mod:`ops._pidfile`.
"""
import json
import os
import select
import signal
import sys
import threading
import time
import traceback

from ops._contract import ProgramError
from ops._pidfile import Busy, Pidfile, probe  # noqa: F401  (re-exported)

UMASK = 0o027
LOG_MODE = 0o640
STATE_MODE = 0o640
DIR_MODE = 0o750
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# -- paths ---------------------------------------------------------------------------------

class Instance(object):
    """Where one named daemon instance keeps its pidfile, state and logs."""

    def __init__(self, program, name, state_dir, log_dir=None):
        self.program = program
        self.name = name
        self.state_dir = state_dir
        self.log_dir = log_dir or state_dir
        self.pidfile = os.path.join(state_dir, "pid")
        self.state_file = os.path.join(state_dir, "state.json")
        self.out_log = os.path.join(self.log_dir, "out.log")
        self.err_log = os.path.join(self.log_dir, "err.log")

    def logs(self):
        return {"stdout": self.out_log, "stderr": self.err_log}


def default_state_dir(program, name):
    """``/run/fleetops/P-N`` for root, else ``$XDG_RUNTIME_DIR/fleetops/P-N`` or ``/tmp/fleetops-UID/P-N``."""
    leaf = "%s-%s" % (program, name)
    if os.geteuid() == 0:
        return os.path.join("/run/fleetops", leaf)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "fleetops", leaf)
    return os.path.join("/tmp/fleetops-%d" % os.geteuid(), leaf)


def ensure_dir(path):
    """Create ``path`` (0750) and refuse a directory that is a symlink or not ours.

    Under the shared ``/tmp`` the per-uid base directory must be ours and 0700."""
    parent = os.path.dirname(path.rstrip("/"))
    if parent.startswith("/tmp/fleetops-"):
        _private_dir(parent)
    try:
        os.makedirs(path, DIR_MODE)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if os.path.islink(path) or not os.path.isdir(path):
        raise ProgramError("%s is not a directory" % path)
    if st.st_uid not in (os.geteuid(), 0):
        raise ProgramError("%s belongs to uid %d, not to us" % (path, st.st_uid))
    # whoever can write the parent could swap the directory for another (a non-sticky
    # shared parent): the pidfile and logs must not be redirected that way
    up = os.lstat(parent or "/")
    if up.st_mode & 0o022 and not up.st_mode & 0o1000:
        raise ProgramError("%s is writable by group/others without the sticky bit (mode %o): "
                           "refusing to keep a pidfile under it" % (parent, up.st_mode & 0o7777))


def _private_dir(path):
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if os.path.islink(path) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise ProgramError("%s is not a private directory of uid %d" % (path, os.geteuid()))


def read_state(path):
    try:
        with open(path, "r") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


# -- what a running service sees -----------------------------------------------------------

class FdSink(object):
    """JSON lines written with one ``os.write`` each to fd 1 (out) or 2 (err): unbuffered."""

    def write(self, stream, record):
        data = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
        fd = 2 if stream == "err" else 1
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass  # a closed or full log must not kill the service


class ListSink(object):
    """Collects records in memory (one-shot runs report them in the JSON document)."""

    def __init__(self):
        self.records = []

    def write(self, stream, record):
        self.records.append(dict(record, stream=stream))


class Runtime(object):
    """A stop flag, log writers and the state file (``last_event``) of a running service."""

    def __init__(self, sink, state_file=None, info=None):
        self.stopping = threading.Event()
        self.stop_reason = None
        self.sink = sink
        self.state_file = state_file
        self.state = dict(info or {}, pid=os.getpid(), started=time.time(), last_event=None)
        self._mu = threading.Lock()

    def stop(self, reason):
        self.stop_reason = reason
        self.stopping.set()

    def log(self, stream, record):
        record = dict(record)
        record.setdefault("ts", round(time.time(), 3))
        self.sink.write(stream, record)
        return record

    def remember(self, record):
        with self._mu:
            self.state["last_event"] = record
            self.save()

    def event(self, record, stream="err"):
        """Log ``record`` and keep it as the instance's ``last_event``."""
        self.remember(self.log(stream, dict(record, kind=record.get("kind", "event"))))

    def save(self):
        if not self.state_file:
            return
        tmp = "%s.%d.tmp" % (self.state_file, os.getpid())
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC,
                         STATE_MODE)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.state, fh, sort_keys=True, default=str)
            os.replace(tmp, self.state_file)
        except OSError as exc:
            self.log("err", {"kind": "lifecycle", "msg": "cannot save state: %s" % exc})


# -- process set-up --------------------------------------------------------------------------

def reset_signals():
    """Default dispositions for every signal and an empty signal mask."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def install_handlers(runtime, reopen=None):
    """SIGTERM/SIGINT stop, SIGHUP reopens the logs. SIGPIPE stays ignored on purpose:
    a vanished reader must surface as EPIPE in the writer, not kill the daemon."""
    def _stop(signum, frame):
        runtime.stop(signal.Signals(signum).name)

    def _hup(signum, frame):
        if reopen is not None:
            reopen()
        runtime.log("err", {"kind": "lifecycle", "msg": "SIGHUP: logs reopened"
                            if reopen else "SIGHUP: nothing to reopen in the foreground"})

    old = {}
    for sig, handler in ((signal.SIGTERM, _stop), (signal.SIGINT, _stop),
                         (signal.SIGHUP, _hup), (signal.SIGPIPE, signal.SIG_IGN)):
        old[sig] = signal.signal(sig, handler)
    return old


def close_fds(keep):
    """Close every descriptor >= 3 except ``keep``."""
    try:
        top = os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        top = 65536
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max(top, low))


class LogFiles(object):
    """stdout/stderr as append-only 0640 files on fds 1 and 2; ``open()`` also reopens."""

    def __init__(self, instance):
        self.paths = ((1, instance.out_log), (2, instance.err_log))

    def open(self):
        for target, path in self.paths:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW | _CLOEXEC,
                         LOG_MODE)
            try:
                os.fchmod(fd, LOG_MODE)
            except OSError:
                pass
            os.dup2(fd, target)
            os.close(fd)

    def reopen(self):
        try:
            self.open()
        except OSError as exc:
            FdSink().write("err", {"kind": "lifecycle", "ts": round(time.time(), 3),
                                   "msg": "log reopen failed, keeping the old files: %s" % exc})


def _stdin_devnull():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)


def _rebind_std_streams():
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _describe(exc):
    if isinstance(exc, ProgramError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return "%s: %s" % (exc.filename, exc.strerror)
    return "%s: %s" % (type(exc).__name__, exc)


# -- launcher and daemon ---------------------------------------------------------------------

def spawn(instance, service, info, timeout=15.0):
    """Start ``service`` as a daemon; return its handshake (``pid``, ``already``).

    Raises ProgramError with the daemon's own start-up error text when it fails."""
    running, pid = probe(instance.pidfile)
    if running:
        return {"ok": True, "already": True, "pid": pid}
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:  # first child: new session, fork again, exit so the daemon is orphaned
        code = 1
        try:
            os.close(rfd)
            os.setsid()
            if os.fork() == 0:
                code = _daemon(instance, service, info, wfd)
            else:
                code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        answer = _read_answer(rfd, timeout)
    finally:
        os.close(rfd)
        os.waitpid(child, 0)
    if answer is None:
        raise ProgramError("daemon did not confirm its start-up within %gs" % timeout)
    if not answer:
        raise ProgramError("daemon exited during start-up without a reason; see %s"
                           % instance.err_log)
    if not answer.get("ok"):
        raise ProgramError(answer.get("error") or "daemon start-up failed")
    return answer


def _read_answer(fd, timeout):
    """The daemon's one JSON line; {} on EOF without one; None on timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\n", 1)[0].strip()
    if not line:
        return {}
    try:
        return json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return {"ok": False, "error": "garbled start-up answer: %r" % line[:200]}


def _answer(fd, doc):
    try:
        os.write(fd, (json.dumps(doc) + "\n").encode("utf-8"))
        os.close(fd)
    except OSError:
        pass  # the launcher is gone: nobody to tell


def _daemon(instance, service, info, wfd):
    """The daemon process itself; returns its exit code (the caller ``_exit``s)."""
    pidfile = Pidfile(instance.pidfile)
    try:
        os.chdir("/")
        os.umask(UMASK)
        reset_signals()
        close_fds(keep=(wfd,))
        _stdin_devnull()
        ensure_dir(instance.state_dir)
        ensure_dir(instance.log_dir)
        pidfile.acquire()
        logs = LogFiles(instance)
        logs.open()
        _rebind_std_streams()
        runtime = Runtime(FdSink(), instance.state_file, dict(info, mode="daemon"))
        install_handlers(runtime, logs.reopen)
        service.prepare()
        pidfile.write(os.getpid())
        runtime.event({"kind": "lifecycle", "msg": "started", "pid": os.getpid()})
    except Busy as busy:
        _answer(wfd, {"ok": True, "already": True, "pid": busy.pid})
        return 0
    except BaseException as exc:  # every start-up failure goes back to the launcher
        _answer(wfd, {"ok": False, "error": "start-up failed: %s" % _describe(exc)})
        pidfile.release()
        return 1
    _answer(wfd, {"ok": True, "already": False, "pid": os.getpid()})
    return _serve(runtime, service, pidfile)


def _serve(runtime, service, pidfile):
    code = 0
    try:
        summary = service.serve(runtime)
        runtime.event({"kind": "lifecycle", "msg": "stopped", "reason": runtime.stop_reason
                       or "finished", "summary": summary})
    except BaseException as exc:
        code = 1
        traceback.print_exc(file=sys.stderr)
        runtime.event({"kind": "lifecycle", "msg": "crashed: %s" % _describe(exc)})
    finally:
        runtime.state["pid"] = None
        runtime.save()
        pidfile.release()
    return code


def run_foreground(instance, service, info):
    """The same service without forking (systemd, supervisord): logs on our stdout/stderr."""
    ensure_dir(instance.state_dir)
    pidfile = Pidfile(instance.pidfile)
    try:
        pidfile.acquire()
    except Busy as busy:
        raise ProgramError("%s %s is already running (pid %s)"
                           % (instance.program, instance.name, busy.pid)) from None
    runtime = Runtime(FdSink(), instance.state_file, dict(info, mode="foreground"))
    old = install_handlers(runtime)
    try:
        service.prepare()
        pidfile.write(os.getpid())
        runtime.event({"kind": "lifecycle", "msg": "started", "pid": os.getpid()})
        summary = service.serve(runtime)
        runtime.event({"kind": "lifecycle", "msg": "stopped",
                       "reason": runtime.stop_reason or "finished"})
        return dict(summary or {}, stopped_by=runtime.stop_reason or "finished")
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        runtime.state["pid"] = None
        runtime.save()
        pidfile.release()
