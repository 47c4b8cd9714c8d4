"""``ansible_connection=local``: run a host's commands on the control machine, no SSH.

``LocalConnection.exec`` has the interface and results of ``ssh.Connection.exec``
(stdin bytes or a dialog such as the ship handshake, timeout, the become hook): the
command runs as ``['/bin/sh', '-c', command]`` (an argv list: no shell interpolation)
in the user's home directory, in its own process group, killed on timeout.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from fleetops.core.pollfd import readable
from fleetops.core.secretenv import child_env
from fleetops.core.ssh import DEFAULT_MAX_OUTPUT, CommandTimeout, Exec, keep_capped

if TYPE_CHECKING:
    from fleetops.core.transport import Dialog

BUFSIZE = 65536


class _Process:
    """A child process seen through the few Channel methods the become hook uses."""

    def __init__(self, argv: list[str], cwd: str) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, start_new_session=True,
                                     env=child_env())
        self._buf = {self.proc.stdout.fileno(): bytearray(), self.proc.stderr.fileno(): bytearray()}
        self._open = set(self._buf)
        self._queue: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()
        self.closed = False

    # --- reading -------------------------------------------------------------------
    def pump(self, timeout: float = 0.0) -> None:
        """Read whatever the child wrote (waiting up to ``timeout`` seconds for it)."""
        if not self._open:
            if timeout:
                time.sleep(min(timeout, 0.01))
            return
        ready = readable(list(self._open), timeout)
        for fd in ready:
            data = os.read(fd, BUFSIZE)
            if data:
                self._buf[fd] += data
            else:
                self._open.discard(fd)

    def _take(self, fd: int, size: int) -> bytes:
        buf = self._buf[fd]
        data = bytes(buf[:size])
        del buf[:size]
        return data

    def recv_ready(self) -> bool:
        self.pump()
        return bool(self._buf[self.proc.stdout.fileno()])

    def recv_stderr_ready(self) -> bool:
        self.pump()
        return bool(self._buf[self.proc.stderr.fileno()])

    def recv(self, size: int) -> bytes:
        return self._take(self.proc.stdout.fileno(), size)

    def recv_stderr(self, size: int) -> bytes:
        return self._take(self.proc.stderr.fileno(), size)

    @property
    def eof_received(self) -> bool:
        return not self._open

    def fileno(self) -> int:
        return self.proc.stderr.fileno()

    def exit_status_ready(self) -> bool:
        return self.proc.poll() is not None

    def recv_exit_status(self) -> int:
        return self.proc.wait()

    # --- writing (a thread, so a child that writes before reading cannot deadlock us) --
    def sendall(self, data: bytes) -> None:
        if data:
            self._queue.put(bytes(data))

    def shutdown_write(self) -> None:
        self._queue.put(None)

    def _write(self) -> None:
        stdin = self.proc.stdin
        with contextlib.suppress(OSError, ValueError):
            while (data := self._queue.get()) is not None:
                stdin.write(data)
                stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            stdin.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        self.shutdown_write()
        if self.proc.poll() is None:
            self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()


class LocalConnection:
    """The control machine as a host. ``transport``/``sock`` make it look like an SSH
    connection to the runner: always active; closing it kills running commands."""

    def __init__(self, target) -> None:
        self.target = target
        self.bytes_sent = 0
        self.max_output = DEFAULT_MAX_OUTPUT  # bytes kept per stream, as ssh.Connection
        self.transport = self
        self.sock = self
        self._running: set[_Process] = set()
        self._lock = threading.Lock()

    def is_active(self) -> bool:
        return True

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write a file here (see :mod:`fleetops.core.transfer`)."""
        from fleetops.core.transfer import local_put

        local_put(_home(), data, remote_path, mode)

    def get(self, remote_path: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a file here (see :mod:`fleetops.core.transfer`)."""
        from fleetops.core.transfer import local_get

        return local_get(_home(), remote_path, limit)

    def close(self) -> None:
        with self._lock:
            running = list(self._running)
        for proc in running:
            proc.kill()

    def exec(self, command: str, stdin: bytes | Dialog | None = None,
             timeout: float | None = None, hook=None) -> Exec:
        """Run ``command`` here; same contract as ``ssh.Connection.exec``."""
        if hook is not None and hook.pty:
            from fleetops.core.become import BecomeError

            raise BecomeError("sudo on the control machine needs a tty (requiretty): "
                              "not supported for ansible_connection=local")
        deadline = None if timeout is None else time.monotonic() + timeout
        dialog = None if stdin is None or isinstance(stdin, bytes | bytearray) else stdin
        proc = _Process(["/bin/sh", "-c", command], _home())
        with self._lock:
            self._running.add(proc)
        try:
            chan = proc if hook is None else hook.start(proc, deadline)
            if stdin is not None and dialog is None:
                self._send(chan, stdin)
            if dialog is None:
                chan.shutdown_write()
            elif getattr(dialog, "first", b""):  # at once, before any answer (see ssh.py)
                self._send(chan, dialog.first)
            result = self._collect(proc, deadline, dialog)
            return result if hook is None else hook.finish(result)
        finally:
            with self._lock:
                self._running.discard(proc)
            proc.close()

    def _send(self, chan, data: bytes) -> None:
        chan.sendall(data)
        self.bytes_sent += len(data)

    def _collect(self, proc: _Process, deadline: float | None, dialog: Dialog | None) -> Exec:
        started = time.monotonic()
        out, err = bytearray(), bytearray()
        cut: dict[str, int] = {}
        limit = self.max_output
        while True:
            wait = 0.5 if deadline is None else min(deadline - time.monotonic(), 0.5)
            if wait <= 0:
                proc.kill()
                raise CommandTimeout(f"command timed out after {time.monotonic() - started:.1f}s")
            proc.pump(wait)
            room = 0 if dialog is None else dialog.room
            keep_capped(out, proc.recv(len(proc._buf[proc.proc.stdout.fileno()])),
                        limit + room, "stdout", cut)
            keep_capped(err, proc.recv_stderr(len(proc._buf[proc.proc.stderr.fileno()])),
                        limit, "stderr", cut)
            if dialog is not None and out and (answer := dialog.reply(out)) is not None:
                self._send(proc, answer)
                proc.shutdown_write()
                dialog = None
                keep_capped(out, b"", limit, "stdout", cut)  # the dialog's room is not kept
            if proc.eof_received:
                break
        left = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        try:
            rc = proc.proc.wait(left)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise CommandTimeout("no exit status from the command") from None
        return Exec(None if rc < 0 else rc, bytes(out), bytes(err), cut)


def _home() -> str:
    """Where ssh would start the command: the user's home directory (passwd(5))."""
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = os.path.expanduser("~")
    return home if os.path.isdir(home) else "/"
