"""ARP for arpscan: raw requests on an AF_PACKET socket, and the kernel's neighbour cache.

:class:`ArpTransport` fits the sweep Scheduler (``room``, ``send``, ``wait``,
``cancel``, ``slack``, ``close``): it broadcasts "who-has <target> tell <us>" on one
interface and reports ARP replies whose sender address is one of the targets, with
the sender hardware address as ``extra["mac"]``.
"""
import fcntl
import select
import socket
import struct
import time

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_REQUEST = 1
ARP_REPLY = 2
ATF_COM = 0x2
NEIGH_FILE = "/proc/net/arp"
_SIOCGIFADDR = 0x8915
_SIOCGIFHWADDR = 0x8927
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_BROADCAST = b"\xff" * 6
_FRAME_MIN = 60


def _ioctl(iface, request):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        return fcntl.ioctl(sock.fileno(), request, struct.pack("256s", iface.encode()[:15]))
    finally:
        sock.close()


def interface_info(iface):
    """(mac bytes, ipv4 string) of ``iface``. Without an IPv4 address on it the
    requests say 0.0.0.0 (an RFC 5227 ARP probe, which hosts answer too)."""
    mac = _ioctl(iface, _SIOCGIFHWADDR)[18:24]
    try:
        ip = socket.inet_ntoa(_ioctl(iface, _SIOCGIFADDR)[20:24])
    except OSError:
        ip = "0.0.0.0"
    return mac, ip


def mac_text(raw):
    return ":".join("%02x" % b for b in bytearray(raw))


def raw_arp_usable():
    """(usable, reason): an AF_PACKET socket needs CAP_NET_RAW."""
    if not hasattr(socket, "AF_PACKET"):
        return False, "no AF_PACKET sockets on this system"
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)).close()
    except OSError as exc:
        return False, "AF_PACKET socket: %s" % (exc.strerror or exc)
    return True, ""


def request_frame(src_mac, src_ip, target_ip):
    arp = _ARP.pack(1, ETH_P_IP, 6, 4, ARP_REQUEST, src_mac, socket.inet_aton(src_ip),
                    b"\0" * 6, socket.inet_aton(target_ip))
    frame = _BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP) + arp
    return frame + b"\0" * max(0, _FRAME_MIN - len(frame))


def parse_reply(frame):
    """(sender ip, sender mac bytes) of an ARP reply frame, or None."""
    if len(frame) < 14 + _ARP.size or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, oper, sha, spa, _tha, _tpa = _ARP.unpack_from(frame, 14)
    if (htype, ptype, hlen, plen, oper) != (1, ETH_P_IP, 6, 4, ARP_REPLY):
        return None
    return socket.inet_ntoa(spa), sha


class ArpTransport(object):
    """Raw ARP requests to ``targets`` (all on-link through ``iface``)."""

    def __init__(self, iface, targets):
        self.iface = iface
        self.targets = targets
        self.index = dict((ip, idx) for idx, ip in enumerate(targets))
        self.mac, self.ip = interface_info(iface)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self.sock.bind((iface, ETH_P_ARP))
        self.sock.setblocking(False)
        self.sent = {}  # idx -> (attempt, time) of the latest request

    def room(self):
        return len(self.targets)

    def slack(self, attempt):
        return 0.0

    def send(self, idx, attempt):
        self.sent[idx] = (attempt, time.monotonic())
        try:
            self.sock.send(request_frame(self.mac, self.ip, self.targets[idx]))
        except OSError as exc:
            return "send: %s" % (exc.strerror or exc)
        return None

    def cancel(self, idx, attempt):
        """Nothing to undo: a late reply still names the address's owner."""

    def wait(self, timeout):
        found = []
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return found
        for _ in range(4096):
            try:
                frame = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            reply = parse_reply(frame)
            idx = self.index.get(reply[0]) if reply else None
            if idx is None or idx not in self.sent:
                continue
            attempt, sent_at = self.sent[idx]
            rtt = (time.monotonic() - sent_at) * 1000.0
            found.append((idx, attempt, rtt, {"mac": mac_text(reply[1])}))
        return found

    def close(self):
        self.sock.close()


def read_neigh_cache(path=NEIGH_FILE):
    """Complete IPv4 neighbour entries: {ip: (mac, device)} (flags with ATF_COM only)."""
    entries = {}
    try:
        with open(path, "r") as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return entries
    for line in lines:
        fields = line.split()
        if len(fields) < 6:
            continue
        ip, _hwtype, flags, mac, _mask, device = fields[:6]
        if int(flags, 16) & ATF_COM and mac != "00:00:00:00:00:00":
            entries[ip] = (mac.lower(), device)
    return entries
