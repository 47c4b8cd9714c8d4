"""An in-process fake of :class:`fleetops.core.transport.Transport`, for fast tests.

Hosts are :class:`FakeHost` objects whose commands are Python functions
(``program(proc) -> rc``) run in a thread per command. A program writes stdout and
stderr, reads stdin, sleeps, floods, hangs or drops the connection through its
:class:`FakeProcess`; a host can fail to connect or take time to connect. The
transport side behaves like ``fleetops.core.ssh.Connection``: the same ``Exec`` results,
the same ``max_output`` cap and ``discarded`` counts, the same exceptions and reasons
(``CommandTimeout``, ``Unreachable``), stdin dialogs, ``bytes_sent``, and an
``abort`` (the runner's deadline or Ctrl-C closing ``sock``) that unblocks everything.

Use: ``net = FakeNetwork({"h1": FakeHost(echo), ...})`` then
``Fleet(options, net.target_for, connect=net.connect)``. A ``hook`` (sudo) talks to
the command through a :class:`FakeStream`, with a pty when it asks for one (the program
sees ``proc.pty``); :mod:`fleetops.core.fakesudo` plays sudo on a fake host.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetops.core.fakestream import FakeStream
from fleetops.core.ssh import (
    DEFAULT_MAX_OUTPUT,
    ChannelRefused,
    CommandTimeout,
    Exec,
    Target,
    Unreachable,
    keep_capped,
)
from fleetops.core.transport import Dialog, Hook, Stream

WINDOW = 1 << 20  # stdout/stderr bytes a program may write ahead of the reader (SSH window)
POLL_S = 0.05


class Killed(BaseException):
    """Raised inside a program whose command was killed (timeout, abort, dropped)."""


Program = Callable[["FakeProcess"], "int | None"]


@dataclass
class FakeHost:
    """One fake host: ``program`` runs every command (it reads ``proc.command``).

    ``unreachable``: connecting fails with this reason. ``connect_s``: seconds the
    connection takes (an abort ends the wait as ``Unreachable``). ``files``: what
    ``put`` wrote and ``get`` reads, path -> (bytes, mode)."""

    program: Program = lambda proc: 0  # noqa: E731
    unreachable: str | None = None
    connect_s: float = 0.0
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)


class FakeProcess:
    """The program's side of one command, and the transport's side of its pipes."""

    def __init__(self, command: str, transport: FakeTransport) -> None:
        self.command = command
        self.transport = transport
        self._cond = threading.Condition()
        self._stdin = bytearray()
        self._stdin_eof = False
        self._out = bytearray()
        self._err = bytearray()
        self.killed = False
        self.done = False
        self.rc: int | None = None
        self.pty = False          # the transport asked for a pty (sudo's requiretty retry)
        self.wake: int | None = None  # a pipe written on output (FakeStream.fileno)

    # --- the program's side --------------------------------------------------------
    def write(self, data: bytes, stream: str = "stdout") -> None:
        """Append to stdout (or ``stream="stderr"``); blocks while the reader is a
        window behind, like an SSH channel."""
        buf = self._out if stream == "stdout" else self._err
        with self._cond:
            self._cond.wait_for(lambda: self.killed or len(buf) < WINDOW)
            if self.killed:
                raise Killed()
            buf += data
            self._cond.notify_all()
            if self.wake is not None:
                with contextlib.suppress(OSError):
                    os.write(self.wake, b"x")

    def stdin_waiting(self) -> bool:
        """Whether stdin bytes (or its EOF) arrived that the program has not read."""
        with self._cond:
            return bool(self._stdin) or self._stdin_eof

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` stdin bytes (-1: all until EOF); b"" at EOF. Blocks."""
        with self._cond:
            self._cond.wait_for(lambda: self.killed or self._stdin_eof
                                or (size > 0 and self._stdin))
            if self.killed:
                raise Killed()
            cut = len(self._stdin) if size < 0 else min(size, len(self._stdin))
            data = bytes(self._stdin[:cut])
            del self._stdin[:cut]
            return data

    def sleep(self, seconds: float) -> None:
        """Sleep; a kill ends it (``Killed``). ``sleep(float('inf'))`` hangs for good."""
        with self._cond:
            self._cond.wait_for(lambda: self.killed, None if seconds == float("inf")
                                else seconds)
            if self.killed:
                raise Killed()

    def drop_connection(self) -> None:
        """The network goes away: the transport reports the connection lost."""
        self.transport.closed.set()
        self.kill()
        raise Killed()

    # --- the transport's side --------------------------------------------------------
    def run(self, program: Program) -> None:
        rc: int | None = None
        try:
            result = program(self)
            rc = 0 if result is None else int(result)
        except Killed:
            rc = None
        except Exception as exc:  # a broken fake program is a failed command
            with self._cond:
                self._err += f"{type(exc).__name__}: {exc}\n".encode()
            rc = 1
        with self._cond:
            self.rc, self.done = rc, True
            self._cond.notify_all()
            if self.wake is not None:
                with contextlib.suppress(OSError):
                    os.write(self.wake, b"x")

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._stdin += data
            self._cond.notify_all()

    def close_stdin(self) -> None:
        with self._cond:
            self._stdin_eof = True
            self._cond.notify_all()

    def kill(self) -> None:
        with self._cond:
            self.killed = True
            self._cond.notify_all()

    def take(self, wait: float) -> tuple[bytes, bytes, bool]:
        """Output so far (waiting up to ``wait`` s for some) and whether it ended."""
        with self._cond:
            self._cond.wait_for(lambda: self._out or self._err or self.done, wait)
            out, err = bytes(self._out), bytes(self._err)
            self._out.clear()
            self._err.clear()
            self._cond.notify_all()
            return out, err, self.done

    def take_some(self, stream: str, size: int) -> bytes:
        """Up to ``size`` bytes of ``stream`` (for :class:`FakeStream`), no waiting."""
        with self._cond:
            buf = self._out if stream == "stdout" else self._err
            data = bytes(buf[:size])
            del buf[:size]
            self._cond.notify_all()
            return data

    def ready(self, stream: str) -> bool:
        with self._cond:
            return bool(self._out if stream == "stdout" else self._err)


class FakeTransport:
    """A :class:`~fleetops.core.transport.Transport` to one :class:`FakeHost`."""

    def __init__(self, target: Target, host: FakeHost, network: FakeNetwork,
                 channel: FakeChannel | None = None) -> None:
        self.target = target
        self.host = host
        self.network = network
        self.channel = channel  # the bastion's channel it runs over, if any
        # like SSH, a timed-out command is killed by a second command (fleetops.core.reap)
        self.remote_kill = network.remote_kill
        self.bytes_sent = 0
        self.max_output = DEFAULT_MAX_OUTPUT
        self.closed = threading.Event()

    @property
    def sock(self) -> FakeTransport:
        return self  # abort() calls close(): running commands end as "connection lost"

    def is_active(self) -> bool:
        return not self.closed.is_set() and (self.channel is None or self.channel.is_active())

    def open_channel(self, address: str, port: int, timeout: float) -> FakeChannel:
        """A channel from this host to a fake host (a bastion's ``direct-tcpip``)."""
        self._check()
        with self.network._lock:
            self.network.channels.append((self.target.name, address))
        if address not in self.network.hosts:
            raise ChannelRefused("Connection refused")
        return FakeChannel(self, address, port)

    def close(self) -> None:
        self.closed.set()

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        self._check()
        self.host.files[remote_path] = (bytes(data), mode)

    def get(self, remote_path: str, limit: int = 64 * 1024 * 1024) -> bytes:
        self._check()
        if remote_path not in self.host.files:
            raise FileNotFoundError(2, "No such file", remote_path)
        data = self.host.files[remote_path][0]
        if len(data) > limit:
            raise OSError(27, f"{remote_path}: over the limit of {limit} bytes")
        return data

    def _check(self) -> None:
        if not self.is_active():
            raise Unreachable("connection lost")

    def exec(self, command: str, stdin: bytes | Dialog | None = None,
             timeout: float | None = None, hook: Hook | None = None) -> Exec:
        """Run ``command`` with the host's program (see ``ssh.Connection.exec``)."""
        self._check()
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        dialog = None if stdin is None or isinstance(stdin, bytes | bytearray) else stdin
        proc = FakeProcess(command, self)
        proc.pty = hook is not None and hook.pty
        stream = FakeStream(proc)
        self.network.started(self.target.name, command)
        worker = threading.Thread(target=proc.run, args=(self.host.program,), daemon=True)
        worker.start()
        try:
            chan: Stream = stream if hook is None else hook.start(stream, deadline)
            if stdin is not None and dialog is None:
                self._send(chan, stdin)
            if dialog is None:
                chan.shutdown_write()
            elif getattr(dialog, "first", b""):  # sent before any answer (see ssh.py)
                self._send(chan, dialog.first)
            result = self._collect(proc, chan, dialog, timeout, started)
            return result if hook is None else hook.finish(result)
        finally:
            proc.kill()
            stream.close()
            self.network.ended(self.target.name)

    def _send(self, chan: Stream, data: bytes) -> None:
        chan.sendall(data)
        self.bytes_sent += len(data)

    def _collect(self, proc: FakeProcess, chan: Stream, dialog: Dialog | None,
                 timeout: float | None, started: float) -> Exec:
        out, err, cut = bytearray(), bytearray(), {}
        while True:
            room = 0 if dialog is None else dialog.room
            got_out, got_err, done = proc.take(POLL_S)
            keep_capped(out, got_out, self.max_output + room, "stdout", cut)
            keep_capped(err, got_err, self.max_output, "stderr", cut)
            if dialog is not None and out and (answer := dialog.reply(out)) is not None:
                self._send(chan, answer)
                chan.shutdown_write()
                dialog = None
                keep_capped(out, b"", self.max_output, "stdout", cut)
            if not self.is_active():
                raise Unreachable("connection lost while the command ran")
            if done and not got_out and not got_err:
                return Exec(proc.rc, bytes(out), bytes(err), cut)
            if timeout is not None and time.monotonic() - started >= timeout:
                raise CommandTimeout(f"command timed out after "
                                     f"{time.monotonic() - started:.1f}s")


class FakeChannel:
    """A bastion's channel to a host behind it (``FakeTransport.open_channel``)."""

    def __init__(self, bastion: FakeTransport, address: str, port: int) -> None:
        self.bastion = bastion
        self.address = address
        self.port = port
        self.closed = threading.Event()

    def is_active(self) -> bool:
        return not self.closed.is_set() and self.bastion.is_active()

    def close(self) -> None:
        self.closed.set()


class FakeNetwork:
    """Fake hosts by name, the ``connect`` factory for ``Fleet`` and what happened:
    ``connects`` (host names in order, a host behind a bastion once its channel opened), ``routes`` ((host, via) in order: the bastion
    label a host was reached through, None when direct), ``channels`` ((bastion, address)
    in order), ``commands`` ((host, command) in order), ``peak`` (most commands running at
    once). ``remote_kill``: transports ask for the kill of a timed-out command like SSH
    (:mod:`fleetops.core.reap`); the fake itself ends it anyway. A bastion is any fake host: it opens channels to the fake hosts by name
    (address), refusing unknown ones; a host reached through a channel is lost with it."""

    def __init__(self, hosts: dict[str, FakeHost], remote_kill: bool = False) -> None:
        self.hosts = hosts
        self.remote_kill = remote_kill
        self.connects: list[str] = []
        self.routes: list[tuple[str, str | None]] = []
        self.channels: list[tuple[str, str]] = []
        self.commands: list[tuple[str, str]] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    @staticmethod
    def target_for(host: Any) -> Target:
        return Target(name=host.name, address=host.name)

    def connect(self, target: Target, on_socket: Callable[[Any], None],
                opener: Callable[[float], Any] | None = None,
                via: str | None = None) -> FakeTransport:
        """The :data:`fleetops.core.transport.ConnectFactory` of the fake hosts."""
        channel = None
        if opener is not None:  # a host behind a bastion is only reached through it
            channel = opener(target.connect_timeout or 10.0)
            on_socket(channel)
        with self._lock:
            self.connects.append(target.name)
            self.routes.append((target.name, via))
        host = self.hosts.get(target.name)
        if host is None:
            raise Unreachable(f"{target.address}:{target.port}: Name or service not known")
        conn = FakeTransport(target, host, self, channel)
        on_socket(conn)
        if host.connect_s and conn.closed.wait(host.connect_s):
            raise Unreachable(f"{target.address}:22: connection closed while connecting")
        if host.unreachable:
            raise Unreachable(host.unreachable)
        return conn

    def started(self, name: str, command: str) -> None:
        with self._lock:
            self.commands.append((name, command))
            self.running += 1
            self.peak = max(self.peak, self.running)

    def ended(self, name: str) -> None:
        with self._lock:
            self.running -= 1


@dataclass(frozen=True)
class FakeInventoryHost:
    """The little of an inventory host the runner and ship read."""

    name: str
    python: str | None = None


def hosts(*names: str) -> list[FakeInventoryHost]:
    return [FakeInventoryHost(n) for n in names]
