"""ProxyJump (ssh(1) ``-J``, ssh_config(5) ``ProxyJump``): SSH to a host through bastions.

``Target.jump`` lists the hops, first hop first. The first hop is reached like any
host (TCP or its ProxyCommand), each next hop and finally the target through a
``direct-tcpip`` channel of the previous hop's transport (RFC 4254 7.2; what
``ssh -W`` asks for), and the next SSH transport runs over that channel. Every hop's
host key is checked and every hop is authenticated exactly like a target.

A bastion is a :class:`~fleetops.core.transport.Transport` that also opens channels
(:class:`~fleetops.core.transport.Bastion`: ``open_channel(address, port, timeout)``),
and hops are connected by the run's own connect factory with ``opener``/``via``, so the
fake transport (:mod:`fleetops.core.testing`) tests all of this without an sshd.

One transport per bastion chain is shared by all hosts behind it in a run (many
channels on one connection keeps a bastion's ``MaxStartups`` happy and saves a
handshake per host). It is made once under a lock; if it cannot be made, every host
behind it is ``unreachable`` with that reason, naming the bastion. Never a direct
connection: a host with hops is only ever reached through them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from fleetops.core.ssh import ChannelRefused, Target, Unreachable
from fleetops.core.transport import Bastion

#: ``connect_hop(hop, opener, via, on_socket) -> Bastion``: connect one hop (``opener``
#: None for the first hop, which is reached directly or by its ProxyCommand).
ConnectHop = Callable[[Target, Any, "str | None", Callable[[Any], None]], Bastion]


def hop_label(hop: Target) -> str:
    """``name (user@address:port)``, or ``user@address:port`` when the name says it."""
    spec = f"{hop.user}@{hop.address}:{hop.port}"
    return spec if hop.name in (spec, hop.address) else f"{hop.name} ({spec})"


def _key(hops: tuple[Target, ...]) -> tuple:
    return tuple((h.name, h.address, h.port, h.user, h.key_files, h.proxy_command)
                 for h in hops)


class Bastions:
    """The shared hop transports of one run; ``close()`` ends them (last hop first)."""

    def __init__(self, connect_hop: ConnectHop) -> None:
        self._connect_hop = connect_hop
        self._conns: dict[tuple, Bastion] = {}
        self._failed: dict[tuple, str] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._sockets: set[Any] = set()  # sockets of hops being connected (for close)
        self._lock = threading.Lock()
        self._closed = False

    def opener(self, target: Target) -> Callable[[float], Any]:
        """``open(timeout_s)`` for ``target``: a channel to it through its last hop.

        Connects the hops first if needed; raises :class:`Unreachable` naming the
        bastion that failed."""
        hops = tuple(target.jump)
        self.connection(hops)  # fail now, before any attempt at the target

        def open_channel(timeout: float) -> Any:
            return channel(self.connection(hops), hops[-1], target.address, target.port,
                           timeout)

        return open_channel

    def connection(self, hops: tuple[Target, ...]) -> Bastion:
        """The live transport to ``hops[-1]`` (through ``hops[:-1]``), made once."""
        key = _key(hops)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            conn = self._conns.get(key)
            if conn is not None and conn.is_active():
                return conn
            if key in self._failed:
                raise Unreachable(self._failed[key])
            if self._closed:
                raise Unreachable("the run is stopping")
            try:
                conn = self._connect(hops)
            except Unreachable as exc:
                reason, hop = str(exc), hops[-1]
                if not reason.startswith("bastion "):  # (an earlier hop's reason is kept)
                    reason = reason.removeprefix(f"{hop.address}:{hop.port}: ")
                    reason = f"bastion {hop_label(hop)}: {reason}"
                self._failed[key] = reason
                raise Unreachable(reason) from None
            with self._lock:
                stopping = self._closed
                if not stopping:
                    self._conns[key] = conn
            if stopping:  # close() ran while this hop connected: do not leak it
                conn.close()
                raise Unreachable(f"bastion {hop_label(hops[-1])}: the run is stopping")
            return conn

    def _connect(self, hops: tuple[Target, ...]) -> Bastion:
        hop = hops[-1]
        opener = via = None
        if len(hops) > 1:
            before = hops[:-1]
            via = hop_label(before[-1])

            def opener(timeout: float) -> Any:
                return channel(self.connection(before), before[-1], hop.address, hop.port,
                               timeout)

        sockets: list[Any] = []

        def track(sock: Any) -> None:
            with self._lock:
                if self._closed:
                    raise Unreachable("the run is stopping")
                self._sockets.add(sock)
            sockets.append(sock)

        try:
            return self._connect_hop(hop, opener, via, track)
        finally:
            with self._lock:
                self._sockets.difference_update(sockets)

    def close(self) -> None:
        """Close every hop transport and any hop still connecting (unblocks workers)."""
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns.values()), {}
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(Exception):
                if isinstance(sock, socket.socket):  # close() alone does not wake a recv
                    sock.shutdown(socket.SHUT_RDWR)
                else:
                    sock.close()
        for conn in reversed(conns):  # made first hop first: close the last hops first
            with contextlib.suppress(Exception):
                conn.close()


def channel(via: Bastion, hop: Target, address: str, port: int, timeout: float) -> Any:
    """A ``direct-tcpip`` channel from ``hop`` (connected as ``via``) to address:port."""
    try:
        return via.open_channel(address, port, timeout)
    except ChannelRefused as exc:
        raise Unreachable(f"{address}:{port}: bastion {hop_label(hop)} could not connect "
                          f"to it ({exc})") from None
    except Unreachable as exc:
        raise Unreachable(f"{address}:{port}: bastion {hop_label(hop)} lost or did not open "
                          f"the channel ({exc})") from None
