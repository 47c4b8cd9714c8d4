"""Target lists for the scanners: parsing, validation, caps, ``auto`` and on-link lookup.

Syntax (items separated by commas and/or spaces, any mix)::

    10.0.0.0/24          a network: network and broadcast addresses are skipped
                         (as ``fping -g`` does), except for /31 and /32
    10.0.0.5-40          a range in the last octet, both ends included
    10.0.0.5-10.0.1.7    a full range, both ends included
    10.0.0.7             one address
    auto                 this host's directly connected IPv4 networks (each capped
                         at a /22, loopback never included)

Everything is validated with :mod:`ipaddress`; a network with host bits set is an
error unless ``lenient``. The total is checked against ``cap`` *before* anything is
expanded, so a mistyped /8 costs nothing.
"""
import ipaddress
import re
import socket
import struct

DEFAULT_CAP = 65536
HARD_CAP = 1 << 20  # even --force never expands more than this many addresses
AUTO_MAX_PREFIX = 22
ROUTE_FILE = "/proc/net/route"
_RTF_UP = 0x1
_RTF_GATEWAY = 0x2
_SIOCGIFADDR = 0x8915
_SHORT_RANGE = re.compile(r"^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$")


class TargetError(ValueError):
    """A one-line reason why a target list is unusable."""


def _address(text):
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise TargetError("%r is not an IPv4 address" % text) from None
    if addr.version != 4:
        raise TargetError("%s: only IPv4 targets are supported" % text)
    return addr


def _network(text, lenient):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" not in str(exc):
            raise TargetError("%r is not a valid network: %s" % (text, exc)) from None
        if not lenient:
            fixed = ipaddress.ip_network(text, strict=False)
            raise TargetError("%s has host bits set (did you mean %s? --lenient accepts it)"
                              % (text, fixed)) from None
        net = ipaddress.ip_network(text, strict=False)
    if net.version != 4:
        raise TargetError("%s: only IPv4 targets are supported" % text)
    return net


def _span_of_network(net):
    """(first, last) integers of the addresses a sweep of ``net`` probes."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.prefixlen <= 30:
        first, last = first + 1, last - 1
    return first, last


def _span_of_range(text):
    short = _SHORT_RANGE.match(text)
    if short:
        start = _address(short.group(1) + short.group(2))
        end_octet = int(short.group(3))
        if end_octet > 255:
            raise TargetError("%s: range end %d is not an octet" % (text, end_octet))
        end = _address(short.group(1) + str(end_octet))
    else:
        left, _, right = text.partition("-")
        start, end = _address(left.strip()), _address(right.strip())
    if int(end) < int(start):
        raise TargetError("%s: range end is below its start" % text)
    return int(start), int(end)


def split_items(values):
    """All items of a list of strings that may each hold comma/space separated items."""
    items = []
    for value in values:
        items.extend(part for part in re.split(r"[,\s]+", value or "") if part)
    return items


def spans(items, lenient=False, auto_networks=None):
    """Parse ``items`` into (first, last, source) integer spans; ``auto`` expands via
    ``auto_networks()`` (a callable returning networks)."""
    out = []
    for item in items:
        if item.lower() == "auto":
            nets = (auto_networks or connected_networks)()
            out.extend(_span_of_network(net) + ("auto:%s" % net,) for net in nets)
        elif "/" in item:
            out.append(_span_of_network(_network(item, lenient)) + (item,))
        elif "-" in item:
            out.append(_span_of_range(item) + (item,))
        else:
            value = int(_address(item))
            out.append((value, value, item))
    return out


def expand(items, lenient=False, cap=DEFAULT_CAP, force=False, auto_networks=None):
    """Sorted, de-duplicated list of IPv4 address strings; raises TargetError."""
    if not items:
        raise TargetError("no targets given")
    parts = spans(items, lenient, auto_networks)
    total = sum(last - first + 1 for first, last, _ in parts)
    limit = HARD_CAP if force else cap
    if total > limit:
        hint = "" if force else " (--force raises the cap to %d)" % HARD_CAP
        raise TargetError("%d addresses exceed the cap of %d%s" % (total, limit, hint))
    numbers = set()
    for first, last, _ in parts:
        numbers.update(range(first, last + 1))
    if not numbers:
        raise TargetError("the targets hold no address")
    return [socket.inet_ntoa(struct.pack("!I", n)) for n in sorted(numbers)]


def sort_key(ip):
    return struct.unpack("!I", socket.inet_aton(ip))[0]


# ---------------------------------------------------------------- routing table

def read_routes(path=ROUTE_FILE):
    """Main-table IPv4 routes: list of dicts (iface, network, gateway, onlink)."""
    routes = []
    try:
        with open(path, "r") as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        iface, dest, gateway, flags, mask = fields[0], fields[1], fields[2], fields[3], fields[7]
        flags = int(flags, 16)
        if not flags & _RTF_UP:
            continue
        dest_ip = socket.inet_ntoa(struct.pack("<I", int(dest, 16)))
        mask_ip = socket.inet_ntoa(struct.pack("<I", int(mask, 16)))
        net = ipaddress.ip_network("%s/%s" % (dest_ip, mask_ip), strict=False)
        routes.append({
            "iface": iface,
            "network": net,
            "gateway": socket.inet_ntoa(struct.pack("<I", int(gateway, 16))),
            "onlink": not flags & _RTF_GATEWAY,
        })
    return routes


def interface_address(iface):
    """The primary IPv4 address of ``iface`` (SIOCGIFADDR), or None."""
    import fcntl

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        request = struct.pack("256s", iface.encode()[:15])
        answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        return socket.inet_ntoa(answer[20:24])
    except OSError:
        return None
    finally:
        sock.close()


def _capped(net, iface):
    if net.prefixlen >= AUTO_MAX_PREFIX:
        return net
    own = interface_address(iface)
    if own and ipaddress.ip_address(own) in net:
        return ipaddress.ip_network("%s/%d" % (own, AUTO_MAX_PREFIX), strict=False)
    return next(net.subnets(new_prefix=AUTO_MAX_PREFIX))


def connected_networks(routes=None):
    """This host's directly connected networks (link routes, no loopback, /22 cap)."""
    nets = []
    for route in read_routes() if routes is None else routes:
        net = route["network"]
        if not route["onlink"] or route["iface"] == "lo" or net.prefixlen == 0:
            continue
        if net.is_loopback or net.is_multicast or net.is_link_local:
            continue
        net = _capped(net, route["iface"])
        if net not in nets:
            nets.append(net)
    return nets


def onlink_route(ip, routes=None):
    """(iface, network) when the longest-prefix route to ``ip`` is directly connected,
    else None (reached through a gateway, loopback, or no route at all)."""
    addr = ipaddress.ip_address(ip)
    best = None
    for route in read_routes() if routes is None else routes:
        if addr in route["network"] and (
                best is None or route["network"].prefixlen > best["network"].prefixlen):
            best = route
    if best is None or not best["onlink"] or best["iface"] == "lo":
        return None
    return best["iface"], best["network"]
