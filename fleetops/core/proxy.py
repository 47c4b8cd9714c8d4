"""ProxyCommand (ssh_config(5)): a child process whose stdin/stdout carry the SSH stream.

Paramiko's ``ProxyCommand`` spins on a dead proxy (its ``recv`` loops on EOF; upstream
PR #1180) and never reads the child's stderr, so a proxy that fails says nothing and
one that writes more than a pipe's worth of stderr blocks. This one reports EOF as
``b""`` like a socket, drains stderr whenever it waits for stdout, and keeps the last
:data:`STDERR_TAIL` bytes of it for the unreachable reason (``ssh -W`` printing
``Permission denied (publickey)`` is what a user needs to see).

The command runs as OpenSSH runs it (sshconnect.c ``ssh_proxy_connect``): ``$SHELL -c
"exec COMMAND"`` (``/bin/sh`` when SHELL is unset), so redirections, ``~``, ``$VARS`` and
``exec ...`` mean what they mean to ssh. Paramiko's own class splits the line with
shlex and runs the first word directly. Token values were checked shell-safe by
fleetops.config.tokens.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time

import paramiko

from fleetops.core.pollfd import readable
from fleetops.core.secretenv import child_env

STDERR_TAIL = 4096  # bytes of the proxy's stderr kept (the last ones)


class ProxyCommand(paramiko.ProxyCommand):
    """A socket-like ProxyCommand child; see the module docstring.

    Raises ``OSError`` when the command cannot be started (caller reports it)."""

    def __init__(self, command_line: str) -> None:
        self.cmd = [os.environ.get("SHELL") or "/bin/sh", "-c", f"exec {command_line}"]
        self.process = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, bufsize=0, env=child_env())
        self.timeout = None
        self._tail = bytearray()
        self._stderr_open = True
        self._lock = threading.Lock()

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes of the proxy's stdout; ``b""`` at EOF; ``TimeoutError``
        after ``settimeout`` seconds without data (stderr is drained meanwhile)."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        out = self.process.stdout
        while True:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            fds = [out, self.process.stderr] if self._stderr_open else [out]
            ready = readable(fds, wait)
            if self.process.stderr in ready:
                self._read_stderr()
            if out in ready:
                return os.read(out.fileno(), size)
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError()

    def _read_stderr(self) -> None:
        with self._lock:
            if not self._stderr_open:
                return
            try:
                chunk = os.read(self.process.stderr.fileno(), 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._stderr_open = False
                return
            self._tail += chunk
            del self._tail[:-STDERR_TAIL]

    def failure(self, wait: float = 0.5) -> str:
        """What the proxy said and how it ended, e.g. ``"exit status 255; stderr: ..."``.

        Waits up to ``wait`` seconds for the rest of its stderr and its exit; ``""``
        when it is still running and said nothing."""
        deadline = time.monotonic() + max(wait, 0.0)
        while self._stderr_open:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = readable([self.process.stderr], left)
            if ready:
                self._read_stderr()
        with contextlib.suppress(Exception):
            self.process.wait(max(deadline - time.monotonic(), 0.01))
        parts = []
        status = self.process.returncode
        if status is not None:
            parts.append(f"exit status {status}" if status >= 0 else f"killed by signal {-status}")
        text = bytes(self._tail).decode("utf-8", "replace").strip()
        if text:
            parts.append(f"stderr: {text}")
        return "; ".join(parts)

    def close(self) -> None:
        """Stop the proxy (SIGTERM if still running), reap it, close its pipes."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                super().close()
        with contextlib.suppress(Exception):
            self.process.wait(1)
        # Paramiko's transport thread closes its socket at EOF, often before the caller
        # asks failure(): keep what the proxy said (e.g. "not found") for the reason.
        with contextlib.suppress(OSError, ValueError):
            for _ in range(64):  # bounded: a proxy's child may still be writing
                if not (self._stderr_open and readable([self.process.stderr], 0)):
                    break
                self._read_stderr()
        with self._lock:
            self._stderr_open = False
            for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
                with contextlib.suppress(OSError):
                    pipe.close()
