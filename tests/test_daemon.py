"""The daemonizer (ops/_daemon.py) with real processes: detachment, fds, signals, handshake.

A probe service records what the daemon sees (controlling tty, session, cwd, umask,
signal mask and dispositions, open descriptors) in its log; a launcher script starts
it the way the programs do, optionally from a pty session or as a child subreaper.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAUNCHER = textwrap.dedent("""
    import ctypes, json, os, signal, sys, time
    sys.path.insert(0, {repo!r})
    from ops import _daemon
    from ops._contract import ProgramError

    class Probe(object):
        def __init__(self, fail):
            self.fail = fail

        def prepare(self):
            if self.fail:
                raise ProgramError(self.fail)
            try:
                os.close(os.open("/dev/tty", os.O_RDWR))
                self.tty_errno = 0
            except OSError as exc:
                self.tty_errno = exc.errno

        def serve(self, rt):
            mask = os.umask(0)
            os.umask(mask)
            fds = {{}}
            for fd in os.listdir("/proc/self/fd"):
                try:
                    fds[fd] = os.readlink("/proc/self/fd/" + fd)
                except OSError:
                    pass
            rt.log("out", {{"kind": "facts", "pid": os.getpid(), "sid": os.getsid(0),
                           "pgid": os.getpgid(0), "ppid": os.getppid(), "cwd": os.getcwd(),
                           "umask": mask, "tty_errno": self.tty_errno, "fds": fds,
                           "blocked": sorted(int(s) for s in
                                             signal.pthread_sigmask(signal.SIG_BLOCK, [])),
                           "usr2": str(signal.getsignal(signal.SIGUSR2))}})
            rt.stopping.wait()
            return {{"served": True}}

    mode, state, logs, fail = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    if mode == "subreaper":
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
        had_tty = True
    except OSError:
        had_tty = False
    leak = os.open(os.path.join(os.path.dirname(state), "leak"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.set_inheritable(leak, True)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    os.chdir(os.path.dirname(state))
    inst = _daemon.Instance("probe", "t", state, logs)
    try:
        answer = _daemon.spawn(inst, Probe(fail), {{"args": []}}, timeout=10)
    except ProgramError as exc:
        print(json.dumps({{"error": str(exc)}}))
        sys.exit(1)
    answer["had_tty"] = had_tty
    if mode == "subreaper":  # the daemon is now our child: check, stop and reap it
        pid = answer["pid"]
        with open("/proc/%d/status" % pid) as fh:
            answer["daemon_ppid"] = [int(l.split()[1]) for l in fh if l.startswith("PPid:")][0]
        answer["reaper"] = os.getpid()
        os.kill(pid, signal.SIGTERM)
        answer["reaped"] = os.waitpid(pid, 0)[0] == pid
    print(json.dumps(answer))
""")


@pytest.fixture
def probe(tmp_path):
    """``probe(mode, fail="")`` runs the launcher; every daemon it starts is killed after."""
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER.format(repo=str(REPO)))
    state, logs = tmp_path / "state", tmp_path / "logs"
    started: list[int] = []

    def run(mode="plain", fail="", log_dir=None, **popen):
        argv = [sys.executable, str(script), mode, str(state), str(log_dir or logs), fail]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, **popen)
        lines = proc.stdout.strip().splitlines()
        assert lines, f"launcher printed nothing (rc {proc.returncode}): {proc.stderr}"
        doc = json.loads(lines[-1])
        if doc.get("pid"):
            started.append(doc["pid"])
        return proc.returncode, doc

    run.state, run.logs = state, logs
    yield run
    from ops import _daemon

    running, pid = _daemon.probe(str(state / "pid"), wait_pid=0)
    if running and pid:
        started.append(pid)
    for pid in started:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def facts(logs: Path, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = logs / "out.log"
        if out.exists():
            for line in out.read_text().splitlines():
                record = json.loads(line)
                if record.get("kind") == "facts":
                    return record
        time.sleep(0.02)
    raise AssertionError("the probe daemon logged no facts")


def _ctty_session():
    """preexec for a launcher that owns a controlling terminal (setsid already done)."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_daemon_is_detached_from_the_launchers_terminal_session_and_state(probe):
    master, slave = os.openpty()
    try:
        rc, answer = probe(stdin=slave, start_new_session=True, preexec_fn=_ctty_session)
    finally:
        os.close(slave)
        os.close(master)
    assert rc == 0 and answer["ok"] and not answer["already"]
    assert answer["had_tty"], "the launcher must have had a terminal for this test to mean much"
    seen = facts(probe.logs)
    pid = answer["pid"]
    assert seen["pid"] == pid
    assert seen["tty_errno"] == errno.ENXIO  # no controlling terminal
    assert seen["sid"] != pid and seen["pgid"] != pid  # not a session (group) leader
    assert seen["cwd"] == "/"
    assert seen["umask"] == 0o027
    assert seen["blocked"] == []  # the launcher blocked SIGUSR1
    assert seen["usr2"] == str(signal.SIG_DFL)  # the launcher ignored SIGUSR2
    targets = set(seen["fds"].values())
    assert seen["fds"]["0"] == "/dev/null"
    assert seen["fds"]["1"] == str(probe.logs / "out.log")
    assert seen["fds"]["2"] == str(probe.logs / "err.log")
    assert str(probe.state / "pid") in targets
    assert not any(t.endswith("leak") or t.startswith(("pipe:", "/dev/pts")) for t in targets)
    assert sorted(seen["fds"]) == ["0", "1", "2", "3"]  # std streams and the pidfile lock
    for name in ("out.log", "err.log"):
        assert stat.S_IMODE((probe.logs / name).stat().st_mode) == 0o640
    assert (probe.state / "pid").read_text() == f"{pid}\n"


def test_daemon_becomes_the_child_of_the_subreaper_and_stops_on_sigterm(probe):
    rc, answer = probe("subreaper")
    assert rc == 0, answer
    assert answer["daemon_ppid"] == answer["reaper"]
    assert answer["reaped"]
    assert (probe.state / "pid").read_text() == ""  # cleared on a clean stop
    state = json.loads((probe.state / "state.json").read_text())
    assert state["last_event"]["msg"] == "stopped" and state["last_event"]["reason"] == "SIGTERM"


def test_startup_error_comes_back_through_the_handshake(probe):
    rc, answer = probe(fail="cannot reach the moon")
    assert rc == 1
    assert answer["error"] == "start-up failed: cannot reach the moon"
    from ops import _daemon

    assert _daemon.probe(str(probe.state / "pid")) == (False, None)


def test_unusable_log_dir_is_a_startup_error(probe, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, answer = probe(log_dir=blocker / "logs")
    assert rc == 1
    assert "start-up failed" in answer["error"] and "Not a directory" in answer["error"]


def test_second_start_finds_the_first(probe):
    rc, first = probe()
    assert rc == 0 and not first["already"]
    rc, second = probe()
    assert rc == 0 and second["already"] and second["pid"] == first["pid"]


def test_pidfile_probe_and_kill9(tmp_path):
    from ops import _daemon

    path = str(tmp_path / "pid")
    held = _daemon.Pidfile(path).acquire()
    held.write(4242)
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from ops import _daemon; "
            f"print(_daemon.probe({path!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "(True, 4242)"
    with pytest.raises(_daemon.Busy):
        _daemon.Pidfile(path).acquire(patience=0.05)
    held.release()
    assert _daemon.probe(path) == (False, None)
    # a holder killed with SIGKILL leaves its pid behind but not its lock
    child = subprocess.Popen([sys.executable, "-c", f"import sys, time; sys.path.insert(0, "
                              f"{str(REPO)!r}); from ops import _daemon; p = _daemon.Pidfile("
                              f"{path!r}).acquire(); import os; p.write(os.getpid()); "
                              "print('held', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    assert _daemon.probe(path) == (True, child.pid)
    child.kill()
    child.wait()
    assert _daemon.probe(path) == (False, child.pid)
    _daemon.Pidfile(path).acquire(patience=0).release()


def test_default_state_dirs(monkeypatch, tmp_path):
    from ops import _daemon

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert _daemon.default_state_dir("watcher", "x") == "/run/fleetops/watcher-x"
    monkeypatch.setattr(os, "geteuid", lambda: 1234)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert _daemon.default_state_dir("watcher", "x") == f"{tmp_path}/fleetops/watcher-x"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert _daemon.default_state_dir("dirsync", "y") == "/tmp/fleetops-1234/dirsync-y"


def test_shared_tmp_base_must_be_private(tmp_path, monkeypatch):
    from ops import _daemon
    from ops._contract import ProgramError

    base = Path(f"/tmp/fleetops-{os.geteuid()}")
    if base.exists():
        pytest.skip(f"{base} exists already")
    try:
        _daemon.ensure_dir(str(base / "watcher-t"))
        assert stat.S_IMODE(base.stat().st_mode) == 0o700
        base.chmod(0o777)
        with pytest.raises(ProgramError, match="not a private directory"):
            _daemon.ensure_dir(str(base / "watcher-t"))
    finally:
        (base / "watcher-t").rmdir()
        base.rmdir()
