"""Vantage hosts for the scan lab: real sshds that ``invoke scan`` reaches over SSH.

Each vantage is one more network namespace on the scan lab's target network, with
its own veth pair into the targets namespace and its own source address::

    fleetops-scan-vantage<i>-<suffix>           fleetops-scan-targets-<suffix>
      lo        127.0.0.<1+i>  sshd :22           fo-tgt0  the lab's addresses
      fo-van0   10.251.N.<1+i>/32  <-- veth -->   fo-tgt<i> (same MAC as fo-tgt0)
      route <cidr> dev fo-van0                    route 10.251.N.<1+i>/32 dev fo-tgt<i>

The targets side of every vantage link carries the MAC of ``fo-tgt0``, so every
vantage's ARP sees the lab's one target MAC. ``hidden`` makes the lab asymmetric:
the targets namespace drops echo requests from one vantage's address to a few
alive addresses (nft table ``fleetops_vantage``), so only the others see them.

sshd runs in the vantage's namespace under ``unshare --mount`` with a tmpfs over
/root (an empty .bashrc: no shell start-up cost, and a private zipapp cache), as
``sshd -D`` (our child, with a parent-death signal). It listens on loopback only;
the control side reaches it through :mod:`fleetops.lab.netns_relay` as the inventory's
``fleetops_proxy_command``, so nothing of the lab is reachable from the root
namespace and no vantage can send a probe outside the lab.
"""
from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleetops.lab.host import SAFE_PATH, SSHD, LabHost, keygen, write_file
from fleetops.lab.scan import (
    PREFIX,
    REPO,
    TARGETS_IF,
    LabError,
    ScanLab,
    _ip,
    assert_unrouted,
)
from fleetops.lab.scan import (
    cleanup_stale as cleanup_stale_netns,
)
from fleetops.lab.sshd import sshd_config

VANTAGE_IF = "fo-van0"
NFT_TABLE = "fleetops_vantage"
RELAY = REPO / "fleetops" / "lab" / "netns_relay.py"
_NAME = re.compile(r"^fleetops-scan-vantage\d+-(\d+)-\d+$")
PR_SET_PDEATHSIG = 1
MASKED = ("/root", "/run")  # a state dir under these would be hidden from sshd


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the thread that started it ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _netns_pids(ns: str) -> list[int]:
    """Live processes inside ``ns`` (zombies no longer count: they have left it)."""
    return [int(p) for p in _ip("netns", "pids", ns, check=False).stdout.split()]


def _kill_netns_pids(ns: str, timeout: float = 3.0) -> None:
    """SIGTERM, then SIGKILL, every process inside our namespace ``ns``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        end = time.monotonic() + timeout
        while _netns_pids(ns) and time.monotonic() < end:
            time.sleep(0.02)


def cleanup_stale() -> list[str]:
    """Stop and delete vantage namespaces left behind by processes that no longer exist."""
    return cleanup_stale_netns(_NAME, _kill_netns_pids)


@dataclass
class Vantage:
    """One vantage host: its namespace, addresses, sshd files and process."""

    name: str
    index: int
    ns: str
    source_ip: str
    host: LabHost
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def targets_if(self) -> str:
        return f"fo-tgt{self.index}"

    @property
    def log(self) -> Path:
        return self.host.log

    def accepted(self) -> int:
        """How many SSH logins this vantage's sshd has accepted so far."""
        try:
            return self.log.read_text(errors="replace").count("Accepted publickey")
        except OSError:
            return 0


def _sshd_script(vantage: Vantage) -> str:
    q = shlex.quote
    return "\n".join([
        "set -eu",
        "mount -t tmpfs -o size=32m,mode=0700 fleetops-vantage /root",
        ": > /root/.bashrc", ": > /root/.profile",
        "if [ ! -d /run/sshd ]; then",
        "  mount -t tmpfs -o size=1m,mode=0755 fleetops-vantage-run /run",
        "  mkdir -m 0755 /run/sshd",
        "fi",
        f"exec {SSHD} -D -f {q(str(vantage.host.config))} -E {q(str(vantage.log))}",
    ]) + "\n"


@dataclass
class VantageLab:
    """A :class:`ScanLab` plus ``count`` SSH vantage hosts and their inventory."""

    lab: ScanLab
    dir: Path
    vantages: list[Vantage]
    hidden: dict[str, list[str]]
    client_key: Path
    known_hosts: Path
    inventory: Path

    @classmethod
    def up(cls, count: int = 2, state_dir: Path | str | None = None,
           hidden: dict[int, list[str]] | None = None, timeout: float = 10.0,
           **scanlab_args) -> VantageLab:
        """Build the scan lab and start the vantages (from this thread: each sshd gets
        SIGTERM when the starting thread ends). ``hidden`` maps a vantage index
        (1-based) to alive addresses that drop its echo requests; by default, with
        two or more vantages, the last cannot ping ``alive[1]`` and the first cannot
        ping ``alive[2]``."""
        if not 1 <= count <= 8:
            raise LabError("a vantage lab has 1 to 8 vantages")
        base = Path(state_dir or tempfile.mkdtemp(prefix="fleetops-vantage-")).resolve()
        if any(base == Path(m) or Path(m) in base.parents for m in MASKED):
            raise LabError(f"the vantage state dir {base} must not be under {' or '.join(MASKED)}")
        cleanup_stale()
        lab = ScanLab.up(**scanlab_args)
        try:
            vlab = cls._make(lab, base, count, hidden)
        except BaseException:
            lab.down()
            raise
        try:
            vlab._build(timeout)
        except BaseException:
            vlab.down()
            raise
        return vlab

    @classmethod
    def _make(cls, lab: ScanLab, base: Path, count: int,
              hidden: dict[int, list[str]] | None) -> VantageLab:
        scanner = int(ipaddress.ip_address(lab.scanner_ip))
        vantages = []
        for i in range(1, count + 1):
            directory = base / f"vantage{i}"
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            host = LabHost(f"vantage{i}", i, f"127.0.0.{1 + i}", 22, directory)
            vantages.append(Vantage(host.name, i, f"{PREFIX}vantage{i}-{lab.suffix}",
                                    str(ipaddress.ip_address(scanner + i)), host))
        assert_unrouted(*(ipaddress.ip_network(f"{v.source_ip}/32") for v in vantages))
        if hidden is None:
            hidden = {count: [lab.alive[1]], 1: [lab.alive[2]]} if count > 1 else {}
        if any(i not in range(1, count + 1) or set(a) - set(lab.alive)
               for i, a in hidden.items()):
            raise LabError(f"hidden must map vantages 1..{count} to alive lab addresses")
        by_name = {vantages[i - 1].name: sorted(addrs) for i, addrs in hidden.items()}
        return cls(lab, base, vantages, by_name, base / "id_ed25519", base / "known_hosts",
                   base / "vantages.ini")

    # ------------------------------------------------------------------ building

    def _build(self, timeout: float) -> None:
        keygen(self.client_key, "fleetops-vantage-client")
        for vantage in self.vantages:
            self._link(vantage)
        if self.hidden:
            self.lab._exec(self.lab.targets_ns, ["nft", "-f", "-"], stdin=self._nft_rules())
        lines = []
        for vantage in self.vantages:
            keygen(vantage.host.host_key, f"fleetops-{vantage.name}")
            write_file(vantage.host.config,
                       sshd_config(vantage.host, self.client_key.with_suffix(".pub")), 0o644)
            key_type, key = vantage.host.host_key.with_suffix(".pub").read_text().split()[:2]
            lines.append(f"{vantage.address} {key_type} {key}")
        write_file(self.known_hosts, "\n".join(lines) + "\n", 0o600)
        for vantage in self.vantages:
            self._start_sshd(vantage)
        deadline = time.monotonic() + timeout
        for vantage in self.vantages:
            self._wait_listening(vantage, deadline)
        write_file(self.inventory, self.inventory_text(), 0o600)

    def _link(self, vantage: Vantage) -> None:
        lab, ns = self.lab, vantage.ns
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "add", VANTAGE_IF, "type", "veth", "peer", "name",
            vantage.targets_if, "netns", lab.targets_ns)
        _ip("-n", lab.targets_ns, "-batch", "-", stdin="\n".join([
            f"link set {vantage.targets_if} address {lab.target_mac}",
            f"link set {vantage.targets_if} up",
            f"route add {vantage.source_ip}/32 dev {vantage.targets_if}"]) + "\n")
        _ip("-n", ns, "-batch", "-", stdin="\n".join([
            "link set lo up", f"link set {VANTAGE_IF} up",
            f"address add {vantage.source_ip}/32 dev {VANTAGE_IF}",
            f"route add {lab.cidr} dev {VANTAGE_IF} src {vantage.source_ip}"]) + "\n")

    def _nft_rules(self) -> str:
        rules = []
        for vantage in self.vantages:
            addrs = self.hidden.get(vantage.name)
            if addrs:
                rules.append(f"    ip saddr {vantage.source_ip} ip daddr {{ {', '.join(addrs)} }} "
                             "icmp type echo-request drop")
        return (f"table inet {NFT_TABLE} {{\n  chain input {{\n"
                "    type filter hook input priority 0; policy accept;\n"
                + "\n".join(rules) + "\n  }\n}\n")

    def _start_sshd(self, vantage: Vantage) -> None:
        argv = ["ip", "netns", "exec", vantage.ns, "unshare", "--mount", "--propagation",
                "private", "--", "sh", "-c", _sshd_script(vantage), "fleetops-vantage"]
        vantage.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env={"PATH": SAFE_PATH, "LANG": "C"},
            preexec_fn=_die_with_parent)

    def _wait_listening(self, vantage: Vantage, deadline: float) -> None:
        needle = f"Server listening on {vantage.address} port 22"
        while True:
            if vantage.proc is not None and vantage.proc.poll() is not None:
                err = vantage.proc.stderr.read().decode(errors="replace").strip() \
                    if vantage.proc.stderr else ""
                raise LabError(f"{vantage.name}: sshd exited (rc {vantage.proc.returncode}): "
                               f"{err or vantage.host.log_tail()}")
            try:
                if needle in vantage.log.read_text(errors="replace"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LabError(f"{vantage.name}: sshd not listening: {vantage.host.log_tail()}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ using

    def proxy_command(self, vantage: Vantage) -> str:
        """``%h %p`` are the inventory's ansible_host/port, expanded by fleetops."""
        return f"{sys.executable} -I {RELAY} {vantage.ns} %h %p"

    def inventory_text(self) -> str:
        lines = ["[vantages]"]
        for v in self.vantages:
            lines.append(
                f"{v.name} ansible_host={v.address} ansible_port=22 ansible_user=root "
                f"ansible_ssh_private_key_file={self.client_key} "
                f"fleetops_known_hosts={self.known_hosts} "
                f"fleetops_proxy_command='{self.proxy_command(v)}'")
        return "\n".join(lines) + "\n"

    def seen_by(self, ip: str) -> list[str]:
        """The vantages whose echo requests ``ip`` answers (sorted names)."""
        if ip not in self.lab.alive:
            return []
        return sorted(v.name for v in self.vantages if ip not in self.hidden.get(v.name, []))

    # ------------------------------------------------------------------ teardown

    def down(self) -> None:
        """Stop the sshds and their sessions, delete the vantage namespaces and the
        scan lab; safe to repeat. The state dir (keys, logs) is left for the caller."""
        names = _ip("netns", "list", check=False).stdout.split()
        for vantage in self.vantages:
            proc = vantage.proc
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
                if proc.stderr:
                    proc.stderr.close()
                vantage.proc = None
            if vantage.ns in names:
                _kill_netns_pids(vantage.ns)
                _ip("netns", "del", vantage.ns, check=False)
        self.lab.down()

    def namespaces(self) -> list[str]:
        return [self.lab.scanner_ns, self.lab.targets_ns, *(v.ns for v in self.vantages)]

    def __enter__(self) -> VantageLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def targets_link_macs(lab: ScanLab) -> dict[str, str]:
    """{interface: MAC} of every ``fo-tgt*`` link in the targets namespace."""
    links = json.loads(_ip("-n", lab.targets_ns, "-j", "link").stdout or "[]")
    return {link["ifname"]: link["address"] for link in links
            if link.get("ifname", "").startswith(TARGETS_IF[:-1])}
