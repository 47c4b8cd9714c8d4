"""Opening one SSH connection: socket (TCP, ProxyCommand or a ProxyJump channel),
handshake, host key, authentication, with retries when the server drops us early.

Retries (``ConnectionAttempts``, ``--connection-attempts``, default 3): a connection
the server closes or resets *before its SSH banner* is tried again after a jittered
exponential backoff, all within the one connect timeout. That is what sshd does past
``MaxStartups`` and what busy bastions do; it is immediate, so retrying is cheap and
usually succeeds. Not retried, because retrying cannot help or would hammer a server:
connection refused or no route (immediate and definite), a timeout (the budget is
spent), anything after the banner (key exchange, host key, authentication), a channel
the bastion cannot open, and ProxyCommand failures (the proxy's own ssh has its own
``ConnectionAttempts``; rerunning it repeats e.g. a failing login on the bastion).

Reasons say what happened and only say "timed out"/"within Ns" when the time ran out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import paramiko

from fleetops.core.hostkeys import HostKeyTransport, KnownHosts
from fleetops.core.ssh import (
    Connection,
    HandshakeError,
    Keys,
    Target,
    Unreachable,
    _authenticate,
    _handshake,
    _open_socket,
)

BACKOFF_S = 0.2          # first retry after 0.1-0.3 s, then 0.2-0.6 s, ... (x2 each)
BACKOFF_MAX_S = 2.0
MIN_ATTEMPT_S = 0.5      # do not start an attempt with less time than this left
DROPPED = (EOFError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)

#: ``opener(timeout_s) -> socket-like``: how a ProxyJump target's stream is opened.
Opener = Callable[[float], Any]


def connect(
    target: Target,
    known_hosts: KnownHosts,
    keys: Keys,
    timeout: float,
    on_socket: Callable[[Any], None] | None = None,
    attempts: int | None = None,
    opener: Opener | None = None,
    via: str | None = None,
) -> Connection:
    """Connect, check the host key, authenticate; everything within ``timeout`` seconds.

    ``opener`` replaces the TCP connect/ProxyCommand (a ProxyJump channel, see
    :mod:`fleetops.core.jump`; ``via`` names the bastion in reasons). ``attempts`` (default
    ``target.connection_attempts`` or 3) bounds the tries of a connection dropped before
    the SSH banner. ``on_socket(sock)`` sees every socket before it is used and may raise
    to stop (an aborted host). Raises :class:`Unreachable` with a worded reason."""
    if attempts is None:
        attempts = target.connection_attempts or 3
    attempts = max(1, attempts)
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            return _connect_once(target, known_hosts, keys, deadline, on_socket, opener)
        except HandshakeError as exc:
            failure = exc
        left = deadline - time.monotonic()
        delay = min(BACKOFF_S * 2 ** (attempt - 1), BACKOFF_MAX_S) * random.uniform(0.5, 1.5)
        retry = (attempt < attempts and _dropped(failure) and failure.proxy is None
                 and left > delay + MIN_ATTEMPT_S)
        if not retry:
            raise Unreachable(describe(failure, attempt, timeout, deadline, via)) from None
        time.sleep(delay)


def _connect_once(target: Target, known_hosts: KnownHosts, keys: Keys, deadline: float,
                  on_socket: Callable[[Any], None] | None,
                  opener: Opener | None) -> Connection:
    left = max(deadline - time.monotonic(), 0.1)
    sock = opener(left) if opener is not None else _open_socket(target, left)
    proxy = sock if hasattr(sock, "failure") else None
    transport = None
    try:
        if on_socket is not None:
            on_socket(sock)
        transport = HostKeyTransport(sock)  # offers host certificates in OpenSSH's order
        try:
            _handshake(transport, target, known_hosts, deadline,
                       max(deadline - time.monotonic(), 0.1))
        except HandshakeError as exc:
            if proxy is not None:
                exc.proxy = proxy.failure(min(0.5, max(deadline - time.monotonic(), 0.05)))
            raise
        _authenticate(transport, target, keys, deadline)
    except BaseException:
        if transport is not None:
            transport.close()
        else:
            sock.close()
        raise
    return Connection(transport, target)


def _cause(exc: HandshakeError) -> BaseException:
    """The innermost error (paramiko wraps banner read errors in SSHException)."""
    cause: BaseException = exc.cause
    while cause.__context__ is not None and isinstance(cause, paramiko.SSHException):
        cause = cause.__context__
    return cause


def _dropped(exc: HandshakeError) -> bool:
    return not exc.banner and isinstance(_cause(exc), DROPPED)


def describe(exc: HandshakeError, attempts: int, timeout: float, deadline: float,
             via: str | None = None) -> str:
    """One honest line for a failed handshake (see the module docstring)."""
    where = exc.where + (f" via {via}" if via else "")
    cause = _cause(exc)
    tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
    timed_out = time.monotonic() >= deadline - 0.05
    if exc.proxy is not None:
        if timed_out:
            what = f"no SSH handshake through the ProxyCommand within {timeout:g}s"
        elif not exc.banner:
            what = "the ProxyCommand closed the connection before the SSH banner"
        else:
            what = "the ProxyCommand connection failed during the SSH handshake"
        return f"{where}: {what} ({exc.proxy or _text(cause)})"
    if timed_out:
        if not exc.banner:
            return f"{where}: no SSH banner within {timeout:g}s ({tries})"
        return f"{where}: SSH handshake not finished within {timeout:g}s"
    if isinstance(cause, DROPPED):
        how = "reset" if isinstance(cause, ConnectionResetError) else "closed"
        if not exc.banner:
            return (f"{where}: connection {how} by the server before the SSH banner "
                    f"({tries}; sshd MaxStartups or a busy bastion?)")
        return f"{where}: connection {how} by the server during the SSH handshake"
    return f"{where}: {_text(cause)}"


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
