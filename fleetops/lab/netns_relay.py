"""A ProxyCommand that reaches a TCP port inside a named network namespace.

Usage (as root)::

    python3 -m fleetops.lab.netns_relay NSNAME HOST PORT [--timeout SECONDS]

It enters ``/run/netns/NSNAME`` with setns(2) (network namespace only), connects
to HOST:PORT there, and copies stdin to the socket and the socket to stdout until
both directions have ended. Stdlib only: it also runs as a plain script
(``python3 -I .../netns_relay.py``), so no import path is needed.
Exit status: 0 after a normal end, 2 on bad arguments, 1 when the namespace
cannot be entered or the connection fails (one line on stderr).
"""
from __future__ import annotations

import ctypes
import os
import select
import socket
import sys

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
BUFSIZE = 65536


class RelayError(Exception):
    """Entering the namespace or connecting failed."""


def enter_netns(name: str) -> None:
    """Move this (single-threaded) process into the named network namespace."""
    if not name or "/" in name or name in (".", ".."):
        raise RelayError(f"bad namespace name {name!r}")
    path = os.path.join(NETNS_DIR, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise RelayError(f"cannot open {path}: {exc.strerror}") from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise RelayError(f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise RelayError(f"connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def pump(sock: socket.socket, fd_in: int, fd_out: int) -> None:
    """Copy fd_in -> sock and sock -> fd_out until the socket side has ended."""
    inputs = [fd_in, sock]
    while sock in inputs:
        ready, _, _ = select.select(inputs, [], [])
        if fd_in in ready:
            data = os.read(fd_in, BUFSIZE)
            if data:
                sock.sendall(data)
            else:  # our stdin ended: half-close, keep reading the answer
                inputs.remove(fd_in)
                sock.shutdown(socket.SHUT_WR)
        if sock in ready:
            data = sock.recv(BUFSIZE)
            if not data:
                break
            _write_all(fd_out, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def parse(argv: list[str]) -> tuple[str, str, int, float]:
    timeout = 10.0
    if len(argv) == 5 and argv[3] == "--timeout":
        timeout = float(argv[4])
        argv = argv[:3]
    if len(argv) != 3 or not argv[2].isdigit() or not 0 < int(argv[2]) < 65536:
        raise ValueError("usage: netns_relay NSNAME HOST PORT [--timeout SECONDS]")
    if not 0 < timeout <= 300:
        raise ValueError("--timeout must be in (0, 300]")
    return argv[0], argv[1], int(argv[2]), timeout


def main(argv: list[str] | None = None) -> int:
    try:
        ns, host, port, timeout = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"netns_relay: {exc}", file=sys.stderr)
        return 2
    try:
        enter_netns(ns)
        sock = connect(host, port, timeout)
    except RelayError as exc:
        print(f"netns_relay: {exc}", file=sys.stderr)
        return 1
    with sock:
        try:
            pump(sock, sys.stdin.fileno(), sys.stdout.fileno())
        except (BrokenPipeError, ConnectionError):
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
