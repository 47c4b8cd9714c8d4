"""Ping sweep: which addresses of the given networks answer, and how fast.

Targets: CIDRs (network and broadcast skipped, except /31 and /32), ranges
(10.0.0.5-40, 10.0.0.5-10.0.1.7), single addresses, comma/space lists, or ``auto``
(this host's directly connected IPv4 networks, at most a /22 each). At most --cap
addresses (65536) unless --force.

Backends (--backend auto picks the first usable): dgram (unprivileged ICMP socket,
needs net.ipv4.ping_group_range), raw (ICMP raw socket, needs CAP_NET_RAW), ping
(the ping binary), tcp (connect to --ports; open or refused counts as alive).
Modes: fast (one socket, one event loop, --rate probes per second), pool (thread
pool over a queue, --workers threads), process (--workers processes, each sweeping
a slice). An address that does not answer is reported under ``no_reply``: it may
exist and drop probes, so it is not called down.
"""
import time

from ops._argspec import Arg
from ops._contract import Outcome, Program, ProgramError
from ops._fast import Config, sweep_fast
from ops._icmp import choose_backend
from ops._pools import sweep_pool, sweep_process
from ops._targets import DEFAULT_CAP, TargetError, expand, split_items

BACKENDS = ("auto", "dgram", "raw", "ping", "tcp")
MODES = ("fast", "pool", "process")
DEFAULT_WORKERS = {"fast": 1, "pool": 64, "process": 4}


TARGET_ARGS = (  # shared with arpscan
    Arg("targets", repeat=True, metavar="TARGET",
        help="CIDR, range, address or 'auto'; comma/space lists allowed"),
    Arg("--targets", repeat=True, default=(), dest="target_opts", metavar="LIST",
        help="more targets (repeatable)"),
    Arg("--lenient", "flag",
        help="accept networks with host bits set (10.0.0.7/24 = 10.0.0.0/24)"),
    Arg("--cap", "int", DEFAULT_CAP, help="refuse more addresses than this (default %(default)s)"),
    Arg("--force", "flag", help="lift --cap (to 2^20)"),
)
PROBE_ARGS = (  # probe timing, shared with arpscan
    Arg("--timeout", "float", 0.5,
        help="longest wait for a reply, in seconds (default %(default)s)"),
    Arg("--min-timeout", "float", 0.1,
        help="shortest wait once replies give an RTT estimate: the wait is srtt + 4 rttvar "
             "between the two (default %(default)s)"),
    Arg("--retries", "int", 1, help="probes resent to silent targets (default %(default)s)"),
    Arg("--backoff", "float", 1.5, help="timeout factor per retry (default %(default)s)"),
    Arg("--rate", "float", 2000.0, help="probes per second in fast mode (default %(default)s)"),
    Arg("--deadline", "float", help="stop after this many seconds in total"),
)
ARGS = TARGET_ARGS + (
    Arg("--backend", choices=BACKENDS, default="auto"),
    Arg("--ports", default="22,80", help="TCP ports for --backend tcp (default %(default)s)"),
    Arg("--mode", choices=MODES, default="fast"),
    Arg("--workers", "int",
        help="threads (pool, default 64) or processes (process, default 4)"),
) + PROBE_ARGS


def _check(condition, message):
    if not condition:
        raise ProgramError("bad arguments: %s" % message, rc=2)


def check_probe_arguments(args):
    _check(0 < args.timeout <= 60, "--timeout must be in (0, 60]")
    _check(0 < args.min_timeout <= 60, "--min-timeout must be in (0, 60]")
    _check(0 <= args.retries <= 10, "--retries must be 0..10")
    _check(1 <= args.backoff <= 10, "--backoff must be 1..10")
    _check(1 <= args.rate <= 100000, "--rate must be 1..100000")
    _check(args.deadline is None or 0 < args.deadline <= 3600, "--deadline must be (0, 3600]")


def parse_ports(text):
    try:
        ports = [int(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:
        raise ProgramError("bad arguments: --ports %r is not a list of ports" % text,
                           rc=2) from None
    _check(ports and all(0 < p < 65536 for p in ports) and len(ports) <= 16,
           "--ports takes 1 to 16 ports in 1..65535")
    return sorted(set(ports))


def resolve_targets(args):
    """The expanded address list; a bad list is a one-line rc-2 error."""
    _check(0 < args.cap <= DEFAULT_CAP * 16, "--cap must be 1..%d" % (DEFAULT_CAP * 16))
    try:
        return expand(split_items(list(args.targets) + list(args.target_opts)),
                      lenient=args.lenient, cap=args.cap, force=args.force)
    except TargetError as exc:
        raise ProgramError("bad targets: %s" % exc, rc=2) from None


def sweep(targets, cfg, mode="fast", workers=None):
    """(answered, errors) keyed by target index, in the chosen concurrency mode."""
    workers = workers or DEFAULT_WORKERS[mode]
    if mode == "pool":
        return sweep_pool(targets, cfg, workers)
    if mode == "process":
        return sweep_process(targets, cfg, workers)
    return sweep_fast(targets, cfg)


def report(targets, answered, errors):
    alive, no_reply = [], []
    for idx, ip in enumerate(targets):
        if idx in answered:
            rtt, extra = answered[idx]
            entry = {"ip": ip, "rtt_ms": rtt}
            entry.update(extra or {})
            alive.append(entry)
        else:
            no_reply.append(ip)
    errs = [{"ip": targets[i], "error": errors[i]} for i in sorted(errors) if i not in answered]
    return alive, no_reply, errs


def run(args):
    targets = resolve_targets(args)
    check_probe_arguments(args)
    ports = parse_ports(args.ports)
    _check(args.workers is None or 1 <= args.workers <= 512, "--workers must be 1..512")
    started = time.monotonic()
    backend, why = choose_backend(args.backend)
    if backend is None:
        raise ProgramError("no usable probe backend (%s)" % why)
    deadline = started + args.deadline if args.deadline else None
    cfg = Config(backend, args.timeout, args.retries, args.backoff, args.rate, deadline, ports,
                 args.min_timeout)
    answered, errors = sweep(targets, cfg, args.mode, args.workers)
    alive, no_reply, errs = report(targets, answered, errors)
    data = {
        "backend": backend,
        "mode": args.mode,
        "targets": len(targets),
        "alive": alive,
        "no_reply": no_reply,
        "errors": errs,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if backend == "tcp":
        data["ports"] = ports
    return Outcome(changed=False, data=data)


PROGRAM = Program("sweep", __doc__, ARGS, run)
