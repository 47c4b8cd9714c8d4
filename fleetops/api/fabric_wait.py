"""How ``c.run`` waits for its command: in the host's worker thread, without Invoke's
per-command threads (a mixin of :mod:`fleetops.api.fabric_conn`'s Remote runners).

Invoke's ``Runner`` (Invoke 2.x ``runners.py``) starts, for every command, one thread
reading stdout, one reading stderr and a ``threading.Timer`` for the command timeout,
then polls for the exit status every 10 ms. With 100 hosts in parallel each of those
threads and wake-ups is a hand-over of CPython's GIL. Here:

- stdout and stderr are read by the calling thread while it waits, through Invoke's own
  ``_handle_output`` (same decoding, echo unless hidden, capture, watchers/responders);
  Paramiko's channel ``fileno()`` (a pipe set when either stream has data, at EOF and
  at close) wakes it. Anything else (a pty, an ``in_stream``, the sudo runner's stderr
  handshake) keeps Invoke's threads.
- the command timeout (``timeout=``, ``timeouts.command``; seconds) is a deadline
  checked by the same loop: at it the command is ``kill()``ed (the channel closed) and
  Invoke raises ``CommandTimedOut``, as its timer would.
- then the exit status is awaited on Paramiko's ``status_event`` (set by the exit
  status and by the channel closing), not by polling.

An exception in the output handling (a watcher's ``WatcherError``, a failing echo
stream) is kept as Invoke keeps an IO thread's: ``Failure`` or ``ThreadException``.
"""

from __future__ import annotations

import select
import sys
import time
from typing import Any


class InlineIO:
    """Stands for one of Invoke's IO threads (the part of ``ExceptionHandlingThread``
    that ``Runner`` uses); the reading is done by :meth:`InlineWait.wait`."""

    def __init__(self, target: Any, kwargs: dict[str, Any]) -> None:
        self.target = target
        self.kwargs = {"target": target, "kwargs": kwargs}
        self.exc_info: tuple | None = None

    def start(self) -> None:
        """Nothing to start: the caller's thread reads (InlineWait.wait)."""

    def join(self, timeout: float | None = None) -> None:
        """Nothing to join."""

    def is_alive(self) -> bool:
        return False

    @property
    def is_dead(self) -> bool:
        return self.exc_info is not None

    def exception(self) -> Any:
        from invoke.util import ExceptionWrapper

        return None if self.exc_info is None else ExceptionWrapper(self.kwargs, *self.exc_info)


class InlineWait:
    """Mixin for a ``fabric.runners.Remote`` subclass (see the module docstring)."""

    #: False: keep Invoke's IO threads (a runner whose reads block, e.g. sudo's handshake)
    inline_io = True
    #: seconds between looks for the deadline and dead IO threads while waiting
    poll_s = 0.1

    channel: Any
    _inline: dict[str, InlineIO] | None = None
    _deadline: float | None = None
    _expired = False

    def start_timer(self, timeout: Any) -> None:
        """No ``threading.Timer``: the command timeout (seconds; None or 0: none) is a
        deadline that :meth:`wait` enforces."""
        self._deadline = time.monotonic() + timeout if timeout else None
        self._expired = False

    @property
    def timed_out(self) -> bool:
        return self._expired

    def create_io_threads(self) -> tuple[dict, list[str], list[str]]:
        threads, stdout, stderr = super().create_io_threads()  # type: ignore[misc]
        own = {self.handle_stdout: "out", self.handle_stderr: "err"}  # type: ignore[attr-defined]
        self._inline = None
        if self.inline_io and set(threads) == set(own):
            threads = {t: InlineIO(t, th.kwargs["kwargs"]) for t, th in threads.items()}
            self._inline = {own[t]: io for t, io in threads.items()}
        return threads, stdout, stderr

    def wait(self) -> None:
        """Read both streams to EOF (if inline), then wait for the exit status; stops
        early at the deadline (the command is killed) or when output handling failed."""
        if self._inline is not None and not self._read_to_eof():
            return
        event = self.channel.status_event
        while not (self.process_is_finished or self.has_dead_threads):  # type: ignore[attr-defined]
            pause = self._pause()
            if pause is None:
                return
            event.wait(pause)

    def _pause(self) -> float | None:
        """Seconds to sleep before looking again; None once the deadline passed (then
        the command has been killed)."""
        if self._deadline is None:
            return self.poll_s
        left = self._deadline - time.monotonic()
        if left <= 0:
            self._expired = True
            self.kill()  # type: ignore[attr-defined]
            return None
        return min(self.poll_s, left)

    def _read_to_eof(self) -> bool:
        """True once both streams are at EOF; False if the deadline passed or the
        output handling raised (kept on its InlineIO)."""
        chan = self.channel
        assert self._inline is not None
        streams = ((self._inline["out"], chan.recv_ready, self.read_proc_stdout),  # type: ignore[attr-defined]
                   (self._inline["err"], chan.recv_stderr_ready, self.read_proc_stderr))  # type: ignore[attr-defined]
        wake = select.poll()  # not select(): a run of many hosts has fds past 1024
        wake.register(chan.fileno(), select.POLLIN)
        while True:
            for io, ready, read in streams:
                if not self._handle_ready(io, ready, read):
                    return False
            if (chan.eof_received or chan.closed) and not (
                    chan.recv_ready() or chan.recv_stderr_ready()):
                return True
            pause = self._pause()
            if pause is None:
                return False
            wake.poll(pause * 1000)

    def _handle_ready(self, io: InlineIO, ready: Any, read: Any) -> bool:
        """What one stream has ready, through Invoke's ``_handle_output``; False (the
        exception kept on ``io``) if that raised."""
        def reader(size: int) -> bytes | None:
            return read(size) if ready() else None

        try:
            self._handle_output(reader=reader, **io.kwargs["kwargs"])  # type: ignore[attr-defined]
        except Exception:  # as Invoke's IO thread: kept, raised by Runner._finish
            io.exc_info = sys.exc_info()
            return False
        return True
