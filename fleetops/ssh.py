"""One SSH connection per host (Paramiko transport) and command execution with timeouts."""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from fleetops.hostkeys import HostKeyError, KnownHosts

BUFSIZE = 65536
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


class Keys:
    """Private keys loaded once per run (parsing a key costs more than using it)."""

    def __init__(self) -> None:
        self._cache: dict[str, paramiko.PKey] = {}
        self._lock = threading.Lock()

    def load(self, path: str) -> paramiko.PKey:
        with self._lock:
            key = self._cache.get(path)
            if key is None:
                try:
                    key = paramiko.PKey.from_path(Path(path).expanduser())
                except (OSError, paramiko.SSHException) as exc:
                    raise Unreachable(f"cannot load private key {path}: {exc}") from None
                self._cache[path] = key
            return key


class Connection:
    """A connected, authenticated transport; ``exec`` may be called many times."""

    def __init__(self, transport: paramiko.Transport, target: Target) -> None:
        self.transport = transport
        self.target = target
        self.bytes_sent = 0

    def close(self) -> None:
        self.transport.close()

    def exec(
        self,
        command: str,
        stdin: bytes | None = None,
        timeout: float | None = None,
        stdin_on_request: bytes | None = None,
        stdin_after: bytes = b"",
    ) -> Exec:
        """Run ``command``.

        With ``stdin_on_request`` the remote's first stdout line is a handshake:
        ``REQUEST_MARKER`` asks for ``stdin_on_request`` (check-and-upload in one round
        trip), ``READY_MARKER`` does not; either way ``stdin_after`` follows, then EOF."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            chan = self.transport.open_session(timeout=_remaining(deadline, 30.0))
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise Unreachable(f"cannot open a channel: {exc or type(exc).__name__}") from None
        try:
            chan.exec_command(command)
            with contextlib.suppress(OSError, EOFError):  # see _answer_request
                if stdin is not None:
                    self._send(chan, stdin)
                if stdin_on_request is None:
                    chan.shutdown_write()
            return self._collect(chan, deadline, stdin_on_request, stdin_after)
        finally:
            chan.close()

    def _send(self, chan: paramiko.Channel, data: bytes) -> None:
        chan.sendall(data)
        self.bytes_sent += len(data)

    def _collect(self, chan: paramiko.Channel, deadline: float | None,
                 payload: bytes | None, after: bytes) -> Exec:
        started = time.monotonic()
        out, err = bytearray(), bytearray()
        fd = chan.fileno()
        while True:
            self._drain(chan, out, err)
            if payload is not None and b"\n" in out:
                if self._answer_request(chan, out, payload, after):
                    payload = None
            if chan.eof_received or chan.closed:
                self._drain(chan, out, err)  # whatever arrived together with the EOF
                break
            if not self.transport.is_active():
                raise Unreachable("connection lost while the command ran")
            wait = _remaining(deadline, 5.0)
            if wait <= 0:
                raise CommandTimeout(f"command timed out after {time.monotonic() - started:.1f}s")
            select.select([fd], [], [], min(wait, 5.0))
        if not chan.status_event.wait(_remaining(deadline, 5.0)):
            raise CommandTimeout("no exit status from the remote command")
        rc = chan.recv_exit_status()
        if rc == -1 and not self.transport.is_active():
            raise Unreachable("connection lost while the command ran")
        return Exec(None if rc == -1 else rc, bytes(out), bytes(err))

    @staticmethod
    def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray) -> None:
        while chan.recv_ready():
            out += chan.recv(BUFSIZE)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(BUFSIZE)

    def _answer_request(self, chan: paramiko.Channel, out: bytearray, payload: bytes,
                        after: bytes) -> bool:
        """Find the handshake line and answer it; False while it has not arrived yet.

        Shell start-up files (``.bashrc``, ``/etc/bash.bashrc``, ``.cshrc``, ``.profile``)
        run before the command and may print anything: everything before the first line
        that is exactly a marker is their noise and is dropped. The remote prints each
        marker after a newline, so a half line of noise cannot hide it. No marker within
        ``HANDSHAKE_LIMIT`` bytes is a HandshakeError (the host ``failed``)."""
        found = _MARKER_LINE.search(out)
        if found is None:
            if len(out) <= HANDSHAKE_LIMIT:
                return False
            with contextlib.suppress(OSError, EOFError):
                chan.shutdown_write()
            raise HandshakeError(f"no fleetops handshake in the first {HANDSHAKE_LIMIT // 1024} "
                                 "KiB of output: shell start-up files (.bashrc, .cshrc, "
                                 f"/etc/bash.bashrc) print too much? first bytes: {bytes(out[:60])!r}")
        marker = found.group(1)
        del out[: found.end()]
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


class HandshakeError(Exception):
    """The remote never printed its handshake line (too much start-up noise)."""


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
) -> Connection:
    """Connect, check the host key, authenticate: every step bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    sock = _open_socket(target, timeout)
    if on_socket is not None:
        on_socket(sock)
    transport = paramiko.Transport(sock)
    try:
        _handshake(transport, target, known_hosts, deadline, timeout)
        _authenticate(transport, target, keys, deadline)
    except BaseException:
        transport.close()
        raise
    return Connection(transport, target)


class _ProxyCommand(paramiko.ProxyCommand):
    """Paramiko's ProxyCommand spins on a dead proxy (its recv loops on EOF; upstream
    PR #1180): read what is there once, and report EOF as ``b""`` like a socket."""

    def recv(self, size: int) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        if not ready:
            raise TimeoutError()
        return os.read(self.process.stdout.fileno(), size)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                super().close()
        with contextlib.suppress(Exception):
            self.process.wait(1)


def _open_socket(target: Target, timeout: float):
    if target.proxy_command:
        try:
            proxy = _ProxyCommand(target.proxy_command)
        except paramiko.SSHException as exc:
            raise Unreachable(f"ProxyCommand failed: {exc}") from None
        proxy.settimeout(timeout)
        return proxy
    where = f"{target.address}:{target.port}"
    try:
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
    except TimeoutError:
        raise Unreachable(f"connect to {where} timed out after {timeout:g}s") from None
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
    known = known_hosts.known_types(target.address, target.port)
    if known:
        options.key_types = _prefer(options.key_types, known)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=max(deadline - time.monotonic(), 0.1))
        if not transport.is_active():
            raise paramiko.SSHException("connection closed during the handshake")
        server_key = transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        if "banner" in reason.lower() or time.monotonic() >= deadline - 0.05:
            reason = f"no SSH handshake within {timeout:g}s ({reason})"
        raise Unreachable(f"{target.address}:{target.port}: {reason}") from None
    try:
        known_hosts.verify(target.address, target.port, server_key)
    except HostKeyError as exc:
        raise Unreachable(str(exc)) from None


def _authenticate(
    transport: paramiko.Transport, target: Target, keys: Keys, deadline: float
) -> None:
    transport.auth_timeout = max(deadline - time.monotonic(), 0.1)
    errors = []
    for path in target.key_files:
        try:
            transport.auth_publickey(target.user, keys.load(path))
            return
        except Unreachable as exc:
            errors.append(str(exc))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            errors.append(f"{Path(path).name}: {exc or type(exc).__name__}")
    for key in _agent_keys():
        try:
            transport.auth_publickey(target.user, key)
            return
        except (paramiko.SSHException, EOFError, OSError) as exc:
            errors.append(f"agent key: {exc or type(exc).__name__}")
    detail = "; ".join(errors) or "no private key configured and no ssh-agent keys"
    raise Unreachable(f"authentication as {target.user!r} failed: {detail}")


def _agent_keys() -> tuple:
    try:
        return paramiko.Agent().get_keys()
    except (paramiko.SSHException, OSError):
        return ()


def _prefer(available, preferred) -> tuple:
    first = [a for a in preferred if a in available]
    return tuple(first + [a for a in available if a not in first])
