"""One SSH connection per host (Paramiko transport) and command execution with timeouts."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import paramiko

from fleetops.core.auth import AuthFailed, Keys, authenticate
from fleetops.core.hostkeys import HostKeyError, KnownHosts
from fleetops.core.pollfd import readable

if TYPE_CHECKING:
    from fleetops.core.transport import Dialog

BUFSIZE = 65536
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024  # bytes kept per stream (RunOptions.max_output)
DRAIN_CHUNKS = 64  # reads per drain before deadlines are checked again (a flood never ends)
# Key exchange and host-key algorithms OpenSSH picks by default, fastest first.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
# AEAD ciphers of OpenSSH's default Ciphers list (ssh_config(5); its first choice,
# chacha20-poly1305, is not in Paramiko): no separate MAC, whose check Paramiko does
# in pure Python for every packet. A server without them gets Paramiko's order.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class Unreachable(Exception):
    """Connecting, verifying the host key or authenticating failed."""


class ChannelRefused(Unreachable):
    """A bastion could not open a channel to the host behind it (``str()``: its words)."""


class CommandTimeout(Exception):
    """A command ran past its timeout; the channel was closed."""


@dataclass(slots=True)
class Target:
    """Everything needed to reach one host, resolved once from inventory and ssh_config.

    Field names follow ssh_config(5). ``source`` names where each setting came from
    (``file:line``) so a refusal can point at it. Secrets (``password``,
    ``become_password``) are never printed, logged or hashed."""

    name: str
    address: str                                  # HostName, tokens expanded
    port: int = 22
    user: str = "root"
    key_files: tuple[str, ...] = ()               # IdentityFile, in order, ~ expanded
    proxy_command: str | None = None              # ProxyCommand, tokens expanded and quoted
    known_hosts: str | None = None                # first UserKnownHostsFile (kept for callers)
    # --- added for real fleets (issue 10) ---
    user_known_hosts: tuple[str, ...] = ()        # UserKnownHostsFile, all of them
    global_known_hosts: tuple[str, ...] = ("/etc/ssh/ssh_known_hosts",
                                           "/etc/ssh/ssh_known_hosts2")
    host_key_alias: str | None = None             # HostKeyAlias
    strict_host_key_checking: str = "yes"         # yes | accept-new | no | ask
    hash_known_hosts: bool = False                # HashKnownHosts
    identities_only: bool = False                 # IdentitiesOnly
    identity_agent: str | None = None             # IdentityAgent: socket path, or "none"
    certificate_files: tuple[str, ...] = ()       # CertificateFile
    jump: tuple[Target, ...] = ()                 # ProxyJump hops, first hop first
    connect_timeout: float | None = None          # ConnectTimeout (None: the run's --timeout)
    connection_attempts: int | None = None        # ConnectionAttempts (None: the run's)
    password: str | None = field(default=None, repr=False)  # ansible_password / ssh_pass
    connection: str = "ssh"                       # ansible_connection: ssh | local
    become: bool | None = None                    # ansible_become (None: the run's --become)
    become_user: str | None = None                # ansible_become_user
    become_method: str = "sudo"                   # ansible_become_method (only sudo)
    become_password: str | None = field(default=None, repr=False)
    source: dict[str, str] = field(default_factory=dict)  # setting -> "file:line"


@dataclass(slots=True)
class Exec:
    rc: int | None
    stdout: bytes
    stderr: bytes
    discarded: dict[str, int] = field(default_factory=dict)  # stream -> bytes over the cap


def keep_capped(buf: bytearray, chunk: bytes, cap: int, stream: str,
                cut: dict[str, int]) -> None:
    """Append ``chunk`` to ``buf`` up to ``cap`` bytes (``--max-output``), trimming ``buf``
    if it is already over; what is dropped is counted in ``cut[stream]``. Every transport
    (SSH, local, the test fake) keeps output through this."""
    room = cap - len(buf)
    if room >= len(chunk):
        buf += chunk
        return
    dropped = len(chunk) - max(room, 0)
    if room > 0:
        buf += chunk[:room]
    elif room < 0:
        dropped -= room
        del buf[cap:]
    cut[stream] = cut.get(stream, 0) + dropped


class Connection:
    """A connected, authenticated transport; ``exec`` may be called many times.
    ``remote_kill``: a command that times out keeps running on the host unless killed
    there (no pty: no signal reaches it), see :mod:`fleetops.core.reap`."""

    remote_kill = True

    def __init__(self, transport: paramiko.Transport, target: Target) -> None:
        self.transport = transport
        self.target = target
        self.bytes_sent = 0
        self.max_output = DEFAULT_MAX_OUTPUT

    def close(self) -> None:
        self.transport.close()

    def is_active(self) -> bool:
        return self.transport.is_active()

    @property
    def sock(self):
        """The socket (or ProxyCommand, or ProxyJump channel) under the transport."""
        return self.transport.sock

    def open_channel(self, address: str, port: int, timeout: float):
        """A ``direct-tcpip`` channel from this host to address:port (RFC 4254 7.2, what
        ``ssh -W`` asks for): a socket-like stream for the next hop's transport.
        ChannelRefused when this host cannot connect there, Unreachable when the
        connection is lost or the channel does not open within ``timeout`` seconds."""
        try:
            return self.transport.open_channel("direct-tcpip", (address, port),
                                               ("127.0.0.1", 0), timeout=max(timeout, 0.1))
        except paramiko.ChannelException as exc:
            raise ChannelRefused(exc.text or str(exc.code)) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None

    def put(self, data: bytes, remote_path: str, mode: int = 0o600) -> None:
        """Write a file over SFTP (see :mod:`fleetops.core.transfer`)."""
        from fleetops.core.transfer import sftp_put

        sftp_put(self.transport, data, remote_path, mode)

    def get(self, remote_path: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """Read a file over SFTP (see :mod:`fleetops.core.transfer`)."""
        from fleetops.core.transfer import sftp_get

        return sftp_get(self.transport, remote_path, limit)

    def exec(
        self,
        command: str,
        stdin: bytes | Dialog | None = None,
        timeout: float | None = None,
        hook=None,
    ) -> Exec:
        """Run ``command``: ``stdin`` bytes then EOF, or a :class:`~fleetops.core.transport.Dialog`
        that sees stdout until it answers (the answer is sent, then EOF).

        A ``hook`` (fleetops.core.become) may ask for a pty, talk to the channel before any
        stdin is sent (``start`` returns the channel to use) and amend the result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            chan = self.transport.open_session(timeout=_remaining(deadline, 30.0))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"cannot open a channel: {exc or type(exc).__name__}") from None
        dialog = None if stdin is None or isinstance(stdin, bytes | bytearray) else stdin
        try:
            if hook is not None and hook.pty:
                chan.get_pty()
            chan.exec_command(command)
            if hook is not None:
                chan = hook.start(chan, deadline)
            with contextlib.suppress(OSError, EOFError):  # see _answer
                if stdin is not None and dialog is None:
                    self._send(chan, stdin)
                if dialog is None:
                    chan.shutdown_write()
                elif getattr(dialog, "first", b""):  # sent before any answer
                    self._send(chan, dialog.first)
            result = self._collect(chan, deadline, dialog)
            return result if hook is None else hook.finish(result)
        finally:
            chan.close()

    def _send(self, chan: paramiko.Channel, data: bytes) -> None:
        chan.sendall(data)
        self.bytes_sent += len(data)

    def _collect(self, chan: paramiko.Channel, deadline: float | None,
                 dialog: Dialog | None) -> Exec:
        """Read stdout/stderr until EOF and the exit status.

        At most ``self.max_output`` bytes of each stream are kept; the rest is read
        and discarded (the remote is never blocked on a full window) and counted in
        ``Exec.discarded``. Deadlines are checked between bounded drains, so a
        command that never stops printing still times out."""
        started = time.monotonic()
        out, err = bytearray(), bytearray()
        cut: dict[str, int] = {}
        limit = self.max_output
        fd = chan.fileno()
        while True:
            room = 0 if dialog is None else dialog.room
            busy = self._drain(chan, out, err, limit, cut, room)
            if dialog is not None and out and self._answer(chan, out, dialog):
                dialog = None
                keep_capped(out, b"", limit, "stdout", cut)  # the dialog's room is not kept
            if chan.eof_received or chan.closed:
                while self._drain(chan, out, err, limit, cut):  # what came with the EOF
                    pass
                break
            if not self.transport.is_active():
                raise Unreachable("connection lost while the command ran")
            wait = _remaining(deadline, 5.0)
            if wait <= 0:
                raise CommandTimeout(f"command timed out after {time.monotonic() - started:.1f}s")
            if not busy:
                readable([fd], min(wait, 5.0))
        if not chan.status_event.wait(_remaining(deadline, 5.0)):
            raise CommandTimeout("no exit status from the remote command")
        rc = chan.recv_exit_status()
        if rc == -1 and not self.transport.is_active():
            raise Unreachable("connection lost while the command ran")
        return Exec(None if rc == -1 else rc, bytes(out), bytes(err), cut)

    @staticmethod
    def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray,
               limit: int = DEFAULT_MAX_OUTPUT, cut: dict[str, int] | None = None,
               out_room: int = 0) -> bool:
        """Move what is ready into ``out``/``err`` (up to ``limit`` bytes each, stdout
        ``out_room`` more; the excess counted in ``cut[stream]``); True if more may be
        ready (the read budget was spent)."""
        for _ in range(DRAIN_CHUNKS):
            if chan.recv_ready():
                chunk = chan.recv(BUFSIZE)
                buf, stream, cap = out, "stdout", limit + out_room
            elif chan.recv_stderr_ready():
                chunk = chan.recv_stderr(BUFSIZE)
                buf, stream, cap = err, "stderr", limit
            else:
                return False
            keep_capped(buf, chunk, cap, stream, cut if cut is not None else {})
        return True

    def _answer(self, chan: paramiko.Channel, out: bytearray, dialog: Dialog) -> bool:
        """Ask ``dialog`` about the stdout so far; once it answers, send that and EOF.
        A dialog that gives up (raises) ends stdin too, and its error fails the command."""
        try:
            answer = dialog.reply(out)
        except Exception:
            with contextlib.suppress(OSError, EOFError):
                chan.shutdown_write()
            raise
        if answer is None:
            return False
        # The remote may exit without reading its stdin (a python3 that cannot start, a
        # program failing early): then its output and exit status tell what happened,
        # not the failed write.
        with contextlib.suppress(OSError, EOFError):
            if answer:
                self._send(chan, answer)
            chan.shutdown_write()
        return True


def _remaining(deadline: float | None, default: float) -> float:
    if deadline is None:
        return default
    return deadline - time.monotonic()


class HandshakeError(Unreachable):
    """The SSH transport failed before it was up; ``cause`` is the underlying error
    (``EOFError``, ``ConnectionResetError``, ``TimeoutError``, ``SSHException``...) and
    ``banner`` the server's version line ("" when none arrived). The caller words it."""

    def __init__(self, where: str, cause: BaseException, banner: str) -> None:
        super().__init__(f"{where}: {cause or type(cause).__name__}")
        self.where = where
        self.cause = cause
        self.banner = banner
        self.proxy: str | None = None  # what a ProxyCommand said (fleetops.core.proxy), if any


def _open_socket(target: Target, timeout: float):
    """A TCP socket to the target, or its ProxyCommand child (``fleetops.core.proxy``)."""
    if target.proxy_command:
        from fleetops.core.proxy import ProxyCommand

        try:
            proxy = ProxyCommand(target.proxy_command)
        except (paramiko.SSHException, OSError, ValueError) as exc:
            raise Unreachable(f"ProxyCommand failed to start: {exc}") from None
        proxy.settimeout(timeout)
        return proxy
    where = f"{target.address}:{target.port}"
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
    except TimeoutError:
        raise Unreachable(f"connect to {where} timed out after {round(timeout, 1):g}s") from None
    except OSError as exc:
        raise Unreachable(f"connect to {where}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _handshake(
    transport: paramiko.Transport,
    target: Target,
    known_hosts: KnownHosts,
    deadline: float,
    timeout: float,
) -> None:
    options = transport.get_security_options()
    options.kex = _prefer(options.kex, PREFERRED_KEX)
    options.ciphers = _prefer(options.ciphers, PREFERRED_CIPHERS)
    # Known key types (and certificates when a @cert-authority applies) first, exactly as
    # OpenSSH's order_hostkeyalgs: no false "changed key" for a host with several keys.
    options.key_types = known_hosts.host_key_algorithms(target, transport._key_info)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=max(deadline - time.monotonic(), 0.1))
        if not transport.is_active():
            raise paramiko.SSHException("connection closed during the handshake")
        server_key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        where = f"{target.address}:{target.port}"
        raise HandshakeError(where, exc, transport.remote_version or "") from None
    try:
        known_hosts.verify(target, server_key)
    except HostKeyError as exc:
        raise Unreachable(str(exc)) from None


def _authenticate(
    transport: paramiko.Transport, target: Target, keys: Keys, deadline: float
) -> None:
    """OpenSSH's order of credentials (see fleetops.core.auth); failure is Unreachable."""
    try:
        authenticate(transport, target, keys, deadline)
    except AuthFailed as exc:
        raise Unreachable(str(exc)) from None


def _prefer(available, preferred) -> tuple:
    first = [a for a in preferred if a in available]
    return tuple(first + [a for a in available if a not in first])
