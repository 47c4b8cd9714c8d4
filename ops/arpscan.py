"""ARP scan: the MAC address behind each on-link IPv4 target.

Targets use the sweep syntax and caps (CIDRs, ranges, lists, ``auto``). Each target
is looked up in the routing table: if its longest-prefix route is not directly
connected it is reported under ``not_on_link`` and never guessed. The others are
asked by raw ARP requests on the route's interface (``--method raw``, needs
CAP_NET_RAW), or pinged with the sweep code and looked up in the kernel's
neighbour cache, complete entries only (``--method cache``). ``auto`` picks raw
when allowed. Every entry names its method: ``arp-raw`` or ``neigh-cache``.
"""
import time

from ops._argspec import Arg
from ops._arp import ArpTransport, raw_arp_usable, read_neigh_cache
from ops._contract import Outcome, Program, ProgramError
from ops._fast import Config, Scheduler
from ops._icmp import choose_backend
from ops._targets import onlink_route, read_routes
from ops.sweep import (
    PROBE_ARGS,
    TARGET_ARGS,
    check_probe_arguments,
    resolve_targets,
    sweep,
)

METHODS = ("auto", "raw", "cache")


ARGS = TARGET_ARGS + (
    Arg("--method", choices=METHODS, default="auto",
        help="raw ARP requests, or ping + neighbour cache (default auto)"),
) + PROBE_ARGS


def group_on_link(targets):
    """({iface: [ip...]}, [not on link ip...]) from one read of the routing table."""
    routes = read_routes()
    by_iface, off_link = {}, []
    for ip in targets:
        hit = onlink_route(ip, routes)
        if hit is None:
            off_link.append(ip)
        else:
            by_iface.setdefault(hit[0], []).append(ip)
    return by_iface, off_link


def scan_raw(by_iface, cfg):
    """{ip: entry} from raw ARP requests, one Scheduler per interface."""
    found = {}
    for iface, ips in sorted(by_iface.items()):
        try:
            transport = ArpTransport(iface, ips)
        except OSError as exc:
            raise ProgramError("cannot ARP on %s: %s" % (iface, exc.strerror or exc)) from None
        answered, _errors = Scheduler(transport, len(ips), cfg).run()
        for idx, (rtt, extra) in answered.items():
            found[ips[idx]] = {"ip": ips[idx], "mac": extra["mac"], "iface": iface,
                               "method": "arp-raw", "rtt_ms": rtt}
    return found


def scan_cache(by_iface, cfg):
    """{ip: entry}: ping every on-link target (sweep, fast mode), then read the cache."""
    backend, why = choose_backend("auto")
    if backend is None:
        raise ProgramError("cannot fill the neighbour cache: no ping backend (%s)" % why)
    ips = sorted(ip for group in by_iface.values() for ip in group)
    sweep(ips, cfg.derive(backend=backend))
    cache = read_neigh_cache()
    found = {}
    for iface, group in by_iface.items():
        for ip in group:
            mac, device = cache.get(ip, (None, None))
            if mac and device == iface:
                found[ip] = {"ip": ip, "mac": mac, "iface": iface, "method": "neigh-cache"}
    return found


def run(args):
    targets = resolve_targets(args)
    check_probe_arguments(args)
    started = time.monotonic()
    method = args.method
    if method in ("auto", "raw"):
        usable, why = raw_arp_usable()
        if not usable and method == "raw":
            raise ProgramError("raw ARP unavailable: %s" % why)
        method = "raw" if usable else "cache"
    deadline = started + args.deadline if args.deadline else None
    cfg = Config("arp", args.timeout, args.retries, args.backoff, args.rate, deadline,
                 min_timeout=args.min_timeout)
    by_iface, off_link = group_on_link(targets)
    found = scan_raw(by_iface, cfg) if method == "raw" else scan_cache(by_iface, cfg)
    on_link = [ip for ip in targets if ip not in off_link]
    data = {
        "method": "arp-raw" if method == "raw" else "neigh-cache",
        "targets": len(targets),
        "entries": [found[ip] for ip in on_link if ip in found],
        "no_reply": [ip for ip in on_link if ip not in found],
        "not_on_link": off_link,
        "interfaces": sorted(by_iface),
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    return Outcome(changed=False, data=data)


PROGRAM = Program("arpscan", __doc__, ARGS, run)
