"""One SSH connection per host (Paramiko transport) and command execution with timeouts."""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from dataclasses import dataclass, field

import paramiko

from fleetops.auth import AuthFailed, Keys, authenticate
from fleetops.hostkeys import HostKeyError, KnownHosts

BUFSIZE = 65536
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024  # bytes kept per stream (RunOptions.max_output)
DRAIN_CHUNKS = 64  # reads per drain before deadlines are checked again (a flood never ends)
HANDSHAKE_ROOM = 65536  # stdout kept beyond the cap until the upload handshake line is seen
# Key exchange and host-key algorithms OpenSSH picks by default, fastest first.
PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")


class Unreachable(Exception):
    """Connecting, verifying the host key or authenticating failed."""


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


class Connection:
    """A connected, authenticated transport; ``exec`` may be called many times."""

    def __init__(self, transport: paramiko.Transport, target: Target) -> None:
        self.transport = transport
        self.target = target
        self.bytes_sent = 0
        self.max_output = DEFAULT_MAX_OUTPUT

    def close(self) -> None:
        self.transport.close()

    def exec(
        self,
        command: str,
        stdin: bytes | None = None,
        timeout: float | None = None,
        stdin_on_request: bytes | None = None,
        stdin_after: bytes = b"",
        hook=None,
    ) -> Exec:
        """Run ``command``.

        With ``stdin_on_request`` the remote's first stdout line is a handshake:
        ``REQUEST_MARKER`` asks for ``stdin_on_request`` (check-and-upload in one round
        trip), ``READY_MARKER`` does not; either way ``stdin_after`` follows, then EOF.
        A ``hook`` (fleetops.become) may ask for a pty, talk to the channel before any
        stdin is sent (``start`` returns the channel to use) and amend the result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            chan = self.transport.open_session(timeout=_remaining(deadline, 30.0))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"cannot open a channel: {exc or type(exc).__name__}") from None
        try:
            if hook is not None and hook.pty:
                chan.get_pty()
            chan.exec_command(command)
            if hook is not None:
                chan = hook.start(chan, deadline)
            with contextlib.suppress(OSError, EOFError):  # see _answer_request
                if stdin is not None:
                    self._send(chan, stdin)
                if stdin_on_request is None:
                    chan.shutdown_write()
            result = self._collect(chan, deadline, stdin_on_request, stdin_after)
            return result if hook is None else hook.finish(result)
        finally:
            chan.close()

    def _send(self, chan: paramiko.Channel, data: bytes) -> None:
        chan.sendall(data)
        self.bytes_sent += len(data)

    def _collect(self, chan: paramiko.Channel, deadline: float | None,
                 payload: bytes | None, after: bytes) -> Exec:
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
            room = 0 if payload is None else HANDSHAKE_ROOM
            busy = self._drain(chan, out, err, limit, cut, room)
            if payload is not None and b"\n" in out:
                if self._answer_request(chan, out, payload, after):
                    payload = None
                    if len(out) > limit:  # the handshake's room is not the program's
                        cut["stdout"] = cut.get("stdout", 0) + len(out) - limit
                        del out[limit:]
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
                select.select([fd], [], [], min(wait, 5.0))
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
            room = cap - len(buf)
            if room >= len(chunk):
                buf += chunk
                continue
            if room > 0:
                buf += chunk[:room]
            if cut is not None:
                cut[stream] = cut.get(stream, 0) + len(chunk) - max(room, 0)
        return True

    def _answer_request(self, chan: paramiko.Channel, out: bytearray, payload: bytes,
                        after: bytes) -> bool:
        """Find the handshake line and answer it; False while it has not arrived yet.

        Shell start-up files (``.bashrc``, ``/etc/bash.bashrc``, ``.cshrc``, ``.profile``)
        run before the command and may print anything: everything before the first line
        that is exactly a marker is their noise and is dropped. The remote prints each
        marker after a newline, so a half line of noise cannot hide it. No marker within
        ``HANDSHAKE_LIMIT`` bytes is a FramingError (the host ``failed``)."""
        try:
            marker = take_handshake(out)
        except FramingError:
            with contextlib.suppress(OSError, EOFError):
                chan.shutdown_write()
            raise
        if marker is None:
            return False
        # The remote may exit without reading its stdin (a python3 that cannot start, a
        # program failing early): then its output and exit status tell what happened,
        # not the failed write.
        with contextlib.suppress(OSError, EOFError):
            if marker == REQUEST_MARKER:
                self._send(chan, payload)
            if after and marker != ABORT_MARKER:
                self._send(chan, after)
            chan.shutdown_write()
        return True


class FramingError(Exception):
    """The remote never printed the shipping handshake line (too much start-up noise)."""


def take_handshake(out: bytearray) -> bytes | None:
    """The first marker line in ``out`` (noise before it and the line itself are removed
    from ``out``); None while none has arrived; FramingError past ``HANDSHAKE_LIMIT``."""
    found = _MARKER_LINE.search(out)
    if found is None:
        if len(out) <= HANDSHAKE_LIMIT:
            return None
        raise FramingError(f"no fleetops handshake in the first {HANDSHAKE_LIMIT // 1024} "
                           "KiB of output: shell start-up files (.bashrc, .cshrc, "
                           f"/etc/bash.bashrc) print too much? first bytes: {bytes(out[:60])!r}")
    marker = bytes(found.group(1))  # before the del: a match reads its buffer lazily
    del out[: found.end()]
    return marker


REQUEST_MARKER = b"FLEETOPS-SEND-STDIN"
READY_MARKER = b"FLEETOPS-READY"
ABORT_MARKER = b"FLEETOPS-ABORT"
HANDSHAKE_LIMIT = 64 * 1024
_MARKER_LINE = re.compile(rb"^(%s|%s|%s)\r?\n" % (REQUEST_MARKER, READY_MARKER, ABORT_MARKER),
                          re.M)


def _remaining(deadline: float | None, default: float) -> float:
    if deadline is None:
        return default
    return deadline - time.monotonic()


def connect(
    target: Target,
    known_hosts: KnownHosts,
    keys: Keys,
    timeout: float,
    on_socket=None,
    **how,
) -> Connection:
    """Connect, check the host key, authenticate: see :func:`fleetops.connect.connect`."""
    from fleetops.connect import connect as _connect

    return _connect(target, known_hosts, keys, timeout, on_socket, **how)


class HandshakeError(Unreachable):
    """The SSH transport failed before it was up; ``cause`` is the underlying error
    (``EOFError``, ``ConnectionResetError``, ``TimeoutError``, ``SSHException``...) and
    ``banner`` the server's version line ("" when none arrived). The caller words it."""

    def __init__(self, where: str, cause: BaseException, banner: str) -> None:
        super().__init__(f"{where}: {cause or type(cause).__name__}")
        self.where = where
        self.cause = cause
        self.banner = banner
        self.proxy: str | None = None  # what a ProxyCommand said (fleetops.proxy), if any


def _open_socket(target: Target, timeout: float):
    """A TCP socket to the target, or its ProxyCommand child (``fleetops.proxy``)."""
    if target.proxy_command:
        from fleetops.proxy import ProxyCommand

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
    """OpenSSH's order of credentials (see fleetops.auth); failure is Unreachable."""
    try:
        authenticate(transport, target, keys, deadline)
    except AuthFailed as exc:
        raise Unreachable(str(exc)) from None


def _prefer(available, preferred) -> tuple:
    first = [a for a in preferred if a in available]
    return tuple(first + [a for a in available if a not in first])
