"""The scan-target lab: a private network whose every address, and answer, is known.

Two network namespaces joined by one veth pair, and to nothing else::

    fleetops-scan-scanner-<suffix>            fleetops-scan-targets-<suffix>
      fo-scan0  10.251.N.1/32                   fo-tgt0  every alive and silent address
      route <cidr> dev fo-scan0  <--- veth --->          of <cidr> (as /32s)
                                                         nft: silent = icmp echo dropped,
                                                              absent = not assigned, and
                                                              ARP/IP to them dropped

The range 10.250.N.0/<prefix> is chosen so that the root namespace has no route and
no address overlapping it (checked at :meth:`ScanLab.up`, which refuses otherwise):
it exists only inside these namespaces, and every probe a test sends there stays
there. Scanners run in the scanner namespace through :meth:`ScanLab.run`.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleetops.errors import FleetopsError

REPO = Path(__file__).resolve().parents[2]
PREFIX = "fleetops-scan-"
SCANNER_IF = "fo-scan0"
TARGETS_IF = "fo-tgt0"
NFT_TABLE = "fleetops_scanlab"
_NAME = re.compile(r"^fleetops-scan-(?:targets|scanner)-(\d+)-\d+$")
_counter = [0]

LISTENER = r"""
import select, socket, sys, time
port, life = int(sys.argv[1]), float(sys.argv[2])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port)); srv.listen(128)
print("ready", flush=True)
end = time.monotonic() + life
while time.monotonic() < end:
    ready, _, _ = select.select([srv, sys.stdin], [], [], max(0.0, end - time.monotonic()))
    if sys.stdin in ready and not sys.stdin.buffer.read1(64):
        break
    if srv in ready:
        conn, _ = srv.accept(); conn.close()
"""


class LabError(FleetopsError):
    """The lab cannot be set up here (not root, tool missing, range routed...)."""


def _ip(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *argv], input=stdin, capture_output=True, text=True,
                          timeout=30, check=False)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(argv[:6])}: {done.stderr.strip()}")
    return done


def _root_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route destination (all tables, but the default) and address network
    of the root namespace."""
    nets = []
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default":
            nets.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(_ip("-j", "-4", "addr").stdout or "[]"):
        for info in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    return nets


def assert_unrouted(*nets: ipaddress.IPv4Network) -> None:
    """Refuse a range the root namespace routes or holds (apart from its default route)."""
    taken = _root_networks()
    for net in nets:
        clash = [str(other) for other in taken if other.overlaps(net)]
        if clash:
            raise LabError(f"{net} overlaps the root namespace's {', '.join(clash)}: refusing")


def _lab_nets(cidr: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    """The scanned range, the scanner's /32 (10.251...) and the routed-away range (10.252...)."""
    base = int(cidr.network_address)
    scanner = ipaddress.ip_network(f"{ipaddress.ip_address(base + (1 << 16) + 1)}/32")
    routed = ipaddress.ip_network(f"{ipaddress.ip_address(base + (2 << 16))}/{cidr.prefixlen}")
    return [cidr, scanner, routed]


def _pick_cidr(prefix: int) -> ipaddress.IPv4Network:
    taken = _root_networks()
    start = os.getpid() % 200
    for step in range(256):
        cidr = ipaddress.ip_network(f"10.250.{(start + step) % 256}.0/{prefix}")
        if not any(o.overlaps(n) for o in taken for n in _lab_nets(cidr)):
            return cidr
    raise LabError("no free 10.250.N.0 range: the root namespace routes all of them")


def unavailable_reason() -> str | None:
    """Why the lab cannot run here (for test skips), or None."""
    if os.geteuid() != 0:
        return "the scan lab needs root (network namespaces)"
    for tool in ("ip", "nft", "sysctl"):
        if not shutil.which(tool):
            return f"the scan lab needs {tool}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(pattern: re.Pattern = _NAME, before_delete=None) -> list[str]:
    """Delete lab namespaces (names matching ``pattern``, group 1 the owner's pid) left
    behind by processes that no longer exist; ``before_delete(name)`` runs first."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = pattern.match(name)
        if match and not _pid_alive(int(match.group(1))):
            if before_delete is not None:
                before_delete(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _roles(cidr: ipaddress.IPv4Network, silent_every: int, absent_every: int):
    alive, silent, absent = [], [], []
    for number, addr in enumerate(cidr.hosts(), start=1):
        if number % absent_every == 3:
            absent.append(str(addr))
        elif number % silent_every == 2:
            silent.append(str(addr))
        else:
            alive.append(str(addr))
    return alive, silent, absent


def _nft_rules(silent: list[str], absent: list[str]) -> str:
    def elements(addrs: list[str]) -> str:
        return f"elements = {{ {', '.join(addrs)} }}" if addrs else ""

    return f"""table inet {NFT_TABLE} {{
  set silent {{ type ipv4_addr; {elements(silent)} }}
  set absent {{ type ipv4_addr; {elements(absent)} }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr @silent icmp type echo-request drop
    ip daddr @absent drop
  }}
}}
table arp {NFT_TABLE} {{
  set absent {{ type ipv4_addr; {elements(absent)} }}
  chain input {{
    type filter hook input priority 0; policy accept;
    arp daddr ip @absent drop
  }}
}}
"""


@dataclass
class ScanLab:
    """A running lab (see the module doc); build it with :meth:`up`."""

    suffix: str
    cidr: ipaddress.IPv4Network
    scanner_ip: str
    alive: list[str]
    silent: list[str]
    absent: list[str]
    target_mac: str = ""
    tcp_port: int | None = None
    listener: subprocess.Popen | None = field(default=None, repr=False)
    _down: bool = field(default=False, repr=False)

    @property
    def scanner_ns(self) -> str:
        return f"{PREFIX}scanner-{self.suffix}"

    @property
    def targets_ns(self) -> str:
        return f"{PREFIX}targets-{self.suffix}"

    @property
    def routed(self) -> ipaddress.IPv4Network:
        """A lab-only network the scanner reaches through a gateway (a lab target, which
        does not forward): its addresses are never on link."""
        return _lab_nets(self.cidr)[2]

    @property
    def responding(self) -> list[str]:
        """Addresses that exist (answer ARP and TCP): alive + silent, sorted."""
        return sorted(self.alive + self.silent, key=lambda a: ipaddress.ip_address(a))

    @classmethod
    def up(cls, prefix: int = 27, cidr: str | None = None, silent_every: int = 5,
           absent_every: int = 7, tcp_port: int | None = None,
           allow_dgram: bool = True) -> ScanLab:
        if os.geteuid() != 0:
            raise LabError("the scan lab needs root (network namespaces)")
        cleanup_stale()
        if cidr:
            net = ipaddress.ip_network(cidr)
            assert_unrouted(*_lab_nets(net))
        else:
            net = _pick_cidr(prefix)
        scanner = _lab_nets(net)[1].network_address
        _counter[0] += 1
        alive, silent, absent = _roles(net, silent_every, absent_every)
        lab = cls(f"{os.getpid()}-{_counter[0]}", net, str(scanner), alive, silent, absent)
        try:
            lab._build(allow_dgram)
            if tcp_port:
                lab._start_listener(tcp_port)
        except BaseException:
            lab.down()
            raise
        return lab

    def _build(self, allow_dgram: bool) -> None:
        scan, tgt = self.scanner_ns, self.targets_ns
        _ip("netns", "add", scan)
        _ip("netns", "add", tgt)
        _ip("-n", scan, "link", "add", SCANNER_IF, "type", "veth", "peer", "name", TARGETS_IF,
            "netns", tgt)
        batch = [f"address add {a}/32 dev {TARGETS_IF}" for a in self.alive + self.silent]
        batch += ["link set lo up", f"link set {TARGETS_IF} up",
                  f"route add {self.scanner_ip}/32 dev {TARGETS_IF}"]
        _ip("-n", tgt, "-batch", "-", stdin="\n".join(batch) + "\n")
        _ip("-n", scan, "-batch", "-", stdin="\n".join([
            "link set lo up", f"link set {SCANNER_IF} up",
            f"address add {self.scanner_ip}/32 dev {SCANNER_IF}",
            f"route add {self.cidr} dev {SCANNER_IF} src {self.scanner_ip}",
            f"route add {self.routed} via {self.alive[0]} dev {SCANNER_IF}"]) + "\n")
        self._exec(tgt, ["nft", "-f", "-"], stdin=_nft_rules(self.silent, self.absent))
        groups = "0 2147483647" if allow_dgram else "1 0"
        self._exec(scan, ["sysctl", "-q", "-w", f"net.ipv4.ping_group_range={groups}"])
        link = json.loads(_ip("-n", tgt, "-j", "link", "show", "dev", TARGETS_IF).stdout)
        self.target_mac = link[0]["address"]

    def _exec(self, ns: str, argv: list[str], stdin: str | None = None) -> str:
        done = _ip("netns", "exec", ns, *argv, stdin=stdin, check=False)
        if done.returncode != 0:
            raise LabError(f"{argv[0]} in {ns}: {done.stderr.strip()}")
        return done.stdout

    def _start_listener(self, port: int, life_s: float = 900.0) -> None:
        self.listener = subprocess.Popen(
            ["ip", "netns", "exec", self.targets_ns, sys.executable, "-c", LISTENER,
             str(port), str(life_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.listener.stdout.readline() if self.listener.stdout else b""
        if line.strip() != b"ready":
            raise LabError(f"the TCP listener on port {port} did not start")
        self.tcp_port = port

    def run(self, argv: list[str], timeout: float = 60.0, cwd: Path | str | None = REPO,
            **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` (a list, no shell) inside the scanner namespace."""
        if self._down:
            raise LabError("the scan lab is down")
        return subprocess.run(["ip", "netns", "exec", self.scanner_ns, *argv], cwd=cwd,
                              capture_output=True, text=True, timeout=timeout, check=False,
                              **kwargs)

    def down(self) -> None:
        """Remove the listener, nft tables, veth pair and namespaces; safe to repeat."""
        self._down = True
        if self.listener is not None:
            if self.listener.stdin:
                self.listener.stdin.close()
            try:
                self.listener.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.listener.kill()
                self.listener.wait(timeout=5)
            if self.listener.stdout:
                self.listener.stdout.close()
            self.listener = None
        names = _ip("netns", "list", check=False).stdout.split()
        if self.targets_ns in names:
            for family in ("inet", "arp"):
                _ip("netns", "exec", self.targets_ns, "nft", "delete", "table", family,
                    NFT_TABLE, check=False)
        if self.scanner_ns in names:
            _ip("-n", self.scanner_ns, "link", "del", SCANNER_IF, check=False)
        for name in (self.scanner_ns, self.targets_ns):
            if name in names:
                _ip("netns", "del", name, check=False)

    def __enter__(self) -> ScanLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def wait_gone(lab: ScanLab, timeout: float = 5.0) -> bool:
    """True once neither of the lab's namespaces is listed any more."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        names = _ip("netns", "list", check=False).stdout.split()
        if lab.scanner_ns not in names and lab.targets_ns not in names:
            return True
        time.sleep(0.05)
    return False
