"""ICMP echo probes: packets, backend detection, and the socket transports.

Two socket kinds carry echo requests:

* ``dgram``: ``socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)``, the unprivileged "ping
  socket", allowed when ``net.ipv4.ping_group_range`` holds one of the process'
  groups. The kernel owns the identifier (it rewrites it to the socket's port) and
  only hands this socket its own replies, without the IP header.
* ``raw``: ``socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)``, needs CAP_NET_RAW. It sees
  every ICMP packet of the host, so replies are matched on identifier, sequence and
  a per-run token in the payload, and an ICMP_FILTER lets only echo replies through.

In both cases the payload carries the target index and the attempt number, and a
reply only counts when it comes from the address that index names.
"""
import errno
import os
import random
import select
import shutil
import socket
import struct
import time

ECHO_REQUEST = 8
ECHO_REPLY = 0
SOL_RAW = 255
ICMP_FILTER = 1
PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"
_HEADER = struct.Struct("!BBHHH")
_PAYLOAD = struct.Struct("!8sIH")
_RCVBUF = 1 << 20


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident, seq, payload):
    header = _HEADER.pack(ECHO_REQUEST, 0, 0, ident, seq)
    csum = checksum(header + payload)
    return _HEADER.pack(ECHO_REQUEST, 0, csum, ident, seq) + payload


def parse_echo_reply(packet, has_ip_header):
    """(ident, seq, payload) of an echo reply, or None for anything else."""
    if has_ip_header:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < _HEADER.size:
        return None
    kind, code, _csum, ident, seq = _HEADER.unpack_from(packet)
    if kind != ECHO_REPLY or code != 0:
        return None
    return ident, seq, packet[_HEADER.size:]


# ---------------------------------------------------------------- capabilities

def ping_group_allows():
    """True when ping_group_range covers the process' effective or supplementary gid."""
    try:
        with open(PING_GROUP_RANGE, "r") as handle:
            low, high = (int(v) for v in handle.read().split())
    except (OSError, ValueError):
        return False
    groups = set(os.getgroups()) | {os.getegid()}
    return any(low <= gid <= high for gid in groups)


def open_socket(kind):
    """An ICMP socket of ``kind`` ('dgram' or 'raw'); raises OSError when not allowed."""
    sock_type = socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_RAW
    sock = socket.socket(socket.AF_INET, sock_type, socket.IPPROTO_ICMP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        if kind == "raw":
            only_echo_reply = ~(1 << ECHO_REPLY) & 0xFFFFFFFF
            sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", only_echo_reply))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def backend_usable(name):
    """(usable, reason) for one backend on this host and process."""
    if name in ("dgram", "raw"):
        if name == "dgram" and not ping_group_allows():
            return False, "net.ipv4.ping_group_range excludes gid %d" % os.getegid()
        try:
            open_socket(name).close()
        except OSError as exc:
            return False, "%s ICMP socket: %s" % (name, exc.strerror or exc)
        return True, ""
    if name == "ping":
        return (True, "") if shutil.which("ping") else (False, "no ping binary on PATH")
    if name == "tcp":
        return True, ""
    return False, "unknown backend %r" % name


def choose_backend(requested):
    """The backend to use: ``requested`` if usable, or the first usable for 'auto'.
    Returns (name, None) or (None, reason)."""
    order = ("dgram", "raw", "ping") if requested == "auto" else (requested,)
    reasons = []
    for name in order:
        usable, reason = backend_usable(name)
        if usable:
            return name, None
        reasons.append(reason)
    return None, "; ".join(reasons)


# ---------------------------------------------------------------- transport

class IcmpTransport(object):
    """Echo requests to ``targets`` over one dgram or raw socket (see Scheduler)."""

    def __init__(self, kind, targets):
        self.kind = kind
        self.targets = targets
        self.sock = open_socket(kind)
        self.ident = random.getrandbits(16)
        self.token = os.urandom(8)
        self.sent = {}
        self._by_ip = None

    def room(self):
        return len(self.targets)

    def slack(self, attempt):
        return 0.0

    def send(self, idx, attempt):
        """Send one echo request; returns None or a one-line error."""
        seq = (idx * 8 + attempt) & 0xFFFF
        packet = echo_request(self.ident, seq, _PAYLOAD.pack(self.token, idx, attempt))
        self.sent[(idx, attempt)] = time.monotonic()
        try:
            self.sock.sendto(packet, (self.targets[idx], 0))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ENOBUFS):
                return "send buffer full"
            return "send: %s" % (exc.strerror or exc)
        return None

    def cancel(self, idx, attempt):
        """Nothing to undo: a late reply to an expired attempt still proves life."""

    def wait(self, timeout):
        """Replies within ``timeout`` s: list of (idx, attempt, rtt_ms, extra-or-None)."""
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        return self._drain() if ready else []

    def _drain(self):
        found = []
        for _ in range(4096):
            try:
                packet, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            now = time.monotonic()
            hit = self._match(packet, addr[0])
            if hit is not None:
                idx, attempt = hit
                sent_at = self.sent.get((idx, attempt))
                if sent_at is not None:
                    found.append((idx, attempt, (now - sent_at) * 1000.0, None))
        return found

    def _match(self, packet, source):
        reply = parse_echo_reply(packet, self.kind == "raw")
        if reply is None or len(reply[2]) < _PAYLOAD.size:
            return None
        ident, seq, payload = reply
        token, idx, attempt = _PAYLOAD.unpack_from(payload)
        if token != self.token or idx >= len(self.targets):
            return None
        if self.kind == "raw" and ident != self.ident:
            return None
        if seq != (idx * 8 + attempt) & 0xFFFF or self.targets[idx] != source:
            return None
        return idx, attempt

    def close(self):
        self.sock.close()
