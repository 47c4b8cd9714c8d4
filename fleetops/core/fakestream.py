"""The :class:`~fleetops.core.transport.Stream` of one fake command, for a sudo hook.

:class:`fleetops.core.testing.FakeTransport` hands it to a hook (``become.SudoHook``) the
way the SSH transport hands it a Paramiko channel: ``recv``/``recv_stderr`` take from
the fake process's output buffers, ``sendall``/``shutdown_write`` feed its stdin, and
``fileno()`` is a pipe the process writes a byte to on new output, so ``select`` works.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


class FakeStream:
    """The :class:`~fleetops.core.transport.Stream` of one fake command, for a hook."""

    def __init__(self, proc: Any) -> None:
        self._proc = proc
        self._rfd, proc.wake = os.pipe()
        os.set_blocking(self._rfd, False)
        os.set_blocking(proc.wake, False)

    @property
    def eof_received(self) -> bool:
        return self._proc.done

    @property
    def closed(self) -> bool:
        return not self._proc.transport.is_active()

    def fileno(self) -> int:
        with contextlib.suppress(OSError):
            os.read(self._rfd, 4096)  # ready again only after new output
        if self._proc.ready("stdout") or self._proc.ready("stderr") or self._proc.done:
            os.write(self._proc.wake, b"x")
        return self._rfd

    def recv_ready(self) -> bool:
        return self._proc.ready("stdout")

    def recv(self, nbytes: int) -> bytes:
        return self._proc.take_some("stdout", nbytes)

    def recv_stderr_ready(self) -> bool:
        return self._proc.ready("stderr")

    def recv_stderr(self, nbytes: int) -> bytes:
        return self._proc.take_some("stderr", nbytes)

    def sendall(self, data: bytes) -> None:
        self._proc.feed(data)

    def shutdown_write(self) -> None:
        self._proc.close_stdin()

    def exit_status_ready(self) -> bool:
        return self._proc.done

    def recv_exit_status(self) -> int:
        return -1 if self._proc.rc is None else self._proc.rc

    def close(self) -> None:
        with self._proc._cond:  # the program writes to ``wake`` under this lock
            wake, self._proc.wake = self._proc.wake, None
        for fd in (self._rfd, wake):
            with contextlib.suppress(OSError, TypeError):
                os.close(fd)
