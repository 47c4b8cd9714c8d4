"""The transport seam: what the runner, sudo and shipping need from one host's connection.

A :class:`Transport` is one live connection to one host, made once per host and run
(``Fleet.connection_for``) from the host's resolved :class:`~fleetops.core.ssh.Target`,
and used for everything that host does in the run. Implementations:

- :class:`fleetops.core.ssh.Connection`: SSH (Paramiko), ``put``/``get`` over SFTP;
- :class:`fleetops.core.local.LocalConnection`: ``ansible_connection=local``, no SSH;
- :class:`fleetops.core.testing.FakeTransport`: in-process commands written in Python, to
  test the runner, deadlines, Ctrl-C and shipping in seconds without an sshd.

``Fleet(options, target_for, connect=...)`` takes a :data:`ConnectFactory`; the default
opens SSH (or local) connections. Like httpx's one-method transport and pyinfra's
``connectors/base.py``, the interface is small on purpose: everything above it
(``become``, ``ship``, the runner) is written against it and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fleetops.core.ssh import Exec, Target

#: ``connect(target, on_socket, opener=None, via=None) -> Transport``: open one host's
#: connection within the target's/run's connect timeout. ``on_socket(obj)`` must see every
#: socket-like object whose ``close()`` (or ``shutdown``) unblocks the connection: the
#: runner's whole-host deadline and Ctrl-C close it; it raises ``Unreachable`` when the
#: host is already aborted. ProxyJump (:mod:`fleetops.core.jump`): ``opener(timeout_s)``
#: returns the stream to use instead of a direct connection (a channel of the previous
#: hop, a :class:`Bastion`), ``via`` names that hop for reasons; the runner connects the
#: hops with the same factory, so a hop the factory returns must be a :class:`Bastion`.
#: Raises :class:`fleetops.core.ssh.Unreachable` with a worded reason.
ConnectFactory = Callable[..., "Transport"]

#: Files moved by ``put`` are created with this mode unless told otherwise.
DEFAULT_MODE = 0o600
#: ``get`` refuses files larger than this many bytes unless told otherwise.
DEFAULT_GET_LIMIT = 64 * 1024 * 1024


class Dialog(Protocol):
    """A command's stdin that depends on its first output (e.g. the zipapp handshake,
    :class:`fleetops.ship.handshake.Handshake`): the transport keeps stdin open and calls
    ``reply`` with the stdout so far, after new output, until it answers; then it sends
    the answer and closes stdin. A dialog may have a ``first`` attribute (bytes): sent
    right after the command starts, before any reply. The transport knows nothing of
    what is said."""

    #: stdout bytes kept beyond ``max_output`` while the dialog has not answered
    room: int

    def reply(self, out: bytearray) -> bytes | None:
        """None: not yet. Bytes: send them, then EOF. May cut what it consumed from
        ``out`` and may raise (the command then fails with that error)."""


class Stream(Protocol):
    """One running command as :class:`fleetops.core.become.SudoHook` talks to it before
    the command's stdin flows: the few ``paramiko.Channel`` methods it uses. The SSH
    transport hands the hook its channel, ``local`` a child process
    (``fleetops.core.local._Process``) and the fake a ``fleetops.core.testing.FakeStream``.
    ``fileno()`` is readable (``select``) when output may be waiting; ``eof_received``:
    the command closed its output; ``recv_exit_status`` blocks for the exit status."""

    eof_received: bool
    closed: bool

    def recv_ready(self) -> bool: ...

    def recv(self, nbytes: int) -> bytes: ...

    def recv_stderr_ready(self) -> bool: ...

    def recv_stderr(self, nbytes: int) -> bytes: ...

    def sendall(self, data: bytes) -> None: ...

    def shutdown_write(self) -> None: ...

    def exit_status_ready(self) -> bool: ...

    def recv_exit_status(self) -> int: ...

    def fileno(self) -> int: ...


class Hook(Protocol):
    """What ``Transport.exec`` does with a ``hook`` (sudo, :mod:`fleetops.core.become`):
    a pty when ``pty`` (stdout and stderr merged, as ``ssh -t``); after the command
    started, ``start(stream, deadline)`` talks to it and returns the :class:`Stream`
    the command's stdin goes to; ``finish(result)`` amends the :class:`Exec`."""

    pty: bool

    def start(self, stream: Stream, deadline: float | None) -> Stream: ...

    def finish(self, result: Exec) -> Exec: ...


@runtime_checkable
class Transport(Protocol):
    """One host's live connection.

    ``exec`` runs one command: ``stdin`` bytes then EOF, or a :class:`Dialog`;
    ``timeout`` seconds for the whole command (None: no limit) past which it raises
    ``CommandTimeout``; at most ``max_output`` bytes of each stream are kept (the rest
    drained and counted in ``Exec.discarded``); a connection lost meanwhile raises
    ``Unreachable``. The sudo ``hook`` is a :class:`Hook`.
    ``bytes_sent`` counts every stdin byte sent (upload accounting); ``sock`` is what
    an abort closes."""

    target: Target
    bytes_sent: int
    max_output: int

    @property
    def sock(self) -> Any: ...

    def exec(self, command: str, stdin: bytes | Dialog | None = None,
             timeout: float | None = None, hook: Hook | None = None) -> Exec: ...

    def put(self, data: bytes, remote_path: str, mode: int = DEFAULT_MODE) -> None:
        """Write ``data`` to ``remote_path`` (relative: to the login directory) with
        ``mode``, atomically: a temporary file beside it, then a rename. OSError."""

    def get(self, remote_path: str, limit: int = DEFAULT_GET_LIMIT) -> bytes:
        """The content of ``remote_path``; OSError if missing or over ``limit`` bytes."""

    def is_active(self) -> bool: ...

    def close(self) -> None: ...


class Bastion(Transport, Protocol):
    """A transport that is a ProxyJump hop: it also opens channels to hosts behind it."""

    def open_channel(self, address: str, port: int, timeout: float) -> Any:
        """A stream to address:port from this host (SSH: a ``direct-tcpip`` channel).
        Raises ``ChannelRefused`` when this host cannot connect there, ``Unreachable``
        when the connection is lost or the channel does not open in ``timeout`` s."""
