"""The sweep benchmark behind ``invoke bench.sweep``.

One scan lab with a /24 (254 addresses: alive, ICMP-silent and absent ones), every
contender run inside its scanner namespace, interleaved run by run; median wall
time and CPU (rusage of the reaped child) per contender, and whether every run
found exactly the expected set. nmap's plain ``-sn -PE`` uses ARP for on-link
targets (as root), so its expected set is alive + silent; ``--send-ip`` forces
ICMP echo and expects the alive set, like the others.
"""

from __future__ import annotations

import ipaddress
import json
import re
import sys
from collections.abc import Callable

NMAP_HOST = re.compile(rb"^Nmap scan report for (\S+)$", re.M)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _sorted(ips: list[str]) -> list[str]:
    return sorted(ips, key=ipaddress.ip_address)


def parse_ops(stdout: bytes) -> list[str]:
    try:
        doc = json.loads(stdout)
    except ValueError:
        return []
    return _sorted([a["ip"] for a in doc.get("data", {}).get("alive", [])])


def parse_lines(stdout: bytes) -> list[str]:
    return _sorted(stdout.decode().split())


def parse_nmap(stdout: bytes) -> list[str]:
    return _sorted([m.decode() for m in NMAP_HOST.findall(stdout)])


def contenders(lab) -> list[tuple[str, list[str], Callable[[bytes], list[str]], list[str]]]:
    cidr = str(lab.cidr)
    ops = [sys.executable, "-m", "ops", "sweep", cidr]
    return [
        ("fast", ops, parse_ops, lab.alive),
        ("pool", [*ops, "--mode", "pool"], parse_ops, lab.alive),
        ("fping", ["fping", "-a", "-r", "0", "-g", cidr], parse_lines, lab.alive),
        ("nmap", ["nmap", "-sn", "-n", "-PE", cidr], parse_nmap, lab.responding),
        ("nmap-ip", ["nmap", "-sn", "-n", "-PE", "--send-ip", cidr], parse_nmap, lab.alive),
    ]


def bench(runs: int = 5) -> dict[str, float | bool]:
    from fleetops.lab.bench import Series, interleave, measure
    from fleetops.lab.scan import ScanLab

    lab = ScanLab.up(prefix=24)
    try:
        log(f"lab {lab.cidr}: {len(lab.alive)} alive, {len(lab.silent)} ICMP-silent, "
            f"{len(lab.absent)} absent (namespace {lab.scanner_ns})")
        plan = []
        for name, argv, parse, expected in contenders(lab):
            netns_argv = ["ip", "netns", "exec", lab.scanner_ns, *argv]
            plan.append((Series(name), (lambda a=netns_argv: measure(a, timeout=120)),
                         parse, expected))
        interleave([(series, run) for series, run, _, _ in plan], runs, log=log)
    finally:
        lab.down()
    return report(plan)


def report(plan) -> dict[str, float | bool]:
    rows = [f"{'contender':<9} {'wall_s':>7} {'cpu_s':>6}  found/expected  exact"]
    figures: dict[str, float | bool] = {"exact": True}
    for series, _run, parse, expected in plan:
        exact = all(parse(s.stdout) == expected for s in series.samples)
        found = min(len(parse(s.stdout)) for s in series.samples)
        figures["exact"] = figures["exact"] and exact
        figures[f"{series.name}_s"] = series.median_s
        figures[f"{series.name}_cpu_s"] = series.median_cpu_s
        rows.append(f"{series.name:<9} {series.median_s:>7.3f} {series.median_cpu_s:>6.3f}  "
                    f"{found:>5}/{len(expected):<8}  {'yes' if exact else 'NO'}")
    print("\n".join(rows))
    fast, nmap = figures["fast_s"], min(figures["nmap_s"], figures["nmap-ip_s"])
    print(f"fast <= fastest nmap ({nmap:.3f}s): {'yes' if fast <= nmap else 'no'}; "
          f"fast CPU <= 0.2s: {'yes' if figures['fast_cpu_s'] <= 0.2 else 'no'}")
    print(f"RESULT bench.sweep fast_s={figures['fast_s']:.3f} "
          f"fast_cpu_s={figures['fast_cpu_s']:.3f} pool_s={figures['pool_s']:.3f} "
          f"nmap_s={figures['nmap_s']:.3f} fping_s={figures['fping_s']:.3f} "
          f"exact={'yes' if figures['exact'] else 'no'}", flush=True)
    return figures
