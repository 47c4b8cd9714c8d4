"""sweep against the scan lab: real namespaces, real packets, known answers.

Every probe goes to the lab's own range, from inside its scanner namespace.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fleetops.lab.scan import (
    LabError,
    ScanLab,
    assert_unrouted,
    unavailable_reason,
    wait_gone,
)

TCP_PORT = 8022
CLOSED_PORT = 8023
FAST = ["--timeout", "0.3", "--min-timeout", "0.1"]


@pytest.fixture(scope="module")
def scanlab():
    reason = unavailable_reason() or (None if shutil.which("ping") else "no ping binary")
    if reason:
        pytest.skip(reason)
    the_lab = ScanLab.up(prefix=27, tcp_port=TCP_PORT)
    try:
        yield the_lab
    finally:
        the_lab.down()
        the_lab.down()  # safe twice
        assert wait_gone(the_lab)


def sweep(scanlab: ScanLab, *args: str, program: list[str] | None = None) -> dict:
    argv = program or [sys.executable, "-m", "ops"]
    done = scanlab.run([*argv, "sweep", *args], timeout=60)
    doc = json.loads(done.stdout)
    assert doc["ok"], (doc, done.stderr)
    assert done.returncode == 0
    return doc["data"]


def alive_ips(data: dict) -> list[str]:
    return [a["ip"] for a in data["alive"]]


def test_lab_range_exists_only_inside_the_lab(scanlab):
    assert scanlab.cidr.subnet_of(ipaddress.ip_network("10.250.0.0/16"))
    assert scanlab.alive and scanlab.silent and scanlab.absent
    assert len(scanlab.alive) + len(scanlab.silent) + len(scanlab.absent) == scanlab.cidr.num_addresses - 2
    assert_unrouted(scanlab.cidr)  # the root namespace still knows nothing of it


def test_lab_refuses_a_range_the_root_namespace_routes(scanlab):
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=True).stdout
    with pytest.raises(LabError, match="overlaps the root namespace"):
        ScanLab.up(cidr="127.0.0.0/24")  # the root namespace's loopback
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          check=True).stdout == before


@pytest.mark.parametrize("mode", ["fast", "pool", "process"])
@pytest.mark.parametrize("backend", ["dgram", "raw", "ping"])
def test_icmp_backends_and_modes_classify_the_lab_exactly(scanlab, backend, mode):
    data = sweep(scanlab, str(scanlab.cidr), "--backend", backend, "--mode", mode, *FAST)
    assert (data["backend"], data["mode"]) == (backend, mode)
    assert data["targets"] == scanlab.cidr.num_addresses - 2
    assert alive_ips(data) == scanlab.alive
    assert data["no_reply"] == sorted(scanlab.silent + scanlab.absent, key=_key)
    assert data["errors"] == []
    assert all(a["rtt_ms"] >= 0 for a in data["alive"])


@pytest.mark.parametrize("mode", ["fast", "pool", "process"])
def test_tcp_backend_finds_the_icmp_silent_hosts_too(scanlab, mode):
    data = sweep(scanlab, str(scanlab.cidr), "--backend", "tcp", "--ports", str(TCP_PORT),
                 "--mode", mode, *FAST)
    # silent addresses drop ICMP only: a TCP connect reaches them
    assert alive_ips(data) == scanlab.responding
    assert {a["tcp"] for a in data["alive"]} == {"open"}
    assert data["no_reply"] == scanlab.absent


def test_tcp_connection_refused_counts_as_alive(scanlab):
    data = sweep(scanlab, ",".join(scanlab.silent + scanlab.absent[:1]), "--backend", "tcp",
                 "--ports", str(CLOSED_PORT), *FAST)
    assert alive_ips(data) == scanlab.silent
    assert {(a["tcp"], a["port"]) for a in data["alive"]} == {("refused", CLOSED_PORT)}
    assert data["no_reply"] == scanlab.absent[:1]


def test_auto_backend_prefers_dgram_then_raw(scanlab):
    assert sweep(scanlab, scanlab.alive[0], *FAST)["backend"] == "dgram"
    key = "net.ipv4.ping_group_range"
    try:
        assert scanlab.run(["sysctl", "-q", "-w", f"{key}=1 0"]).returncode == 0
        data = sweep(scanlab, str(scanlab.cidr), *FAST)
        assert data["backend"] == "raw" and alive_ips(data) == scanlab.alive
        done = scanlab.run([sys.executable, "-m", "ops", "sweep", scanlab.alive[0], "--backend", "dgram"])
        assert done.returncode == 1 and "ping_group_range" in json.loads(done.stdout)["error"]
    finally:
        scanlab.run(["sysctl", "-q", "-w", f"{key}=0 2147483647"])


def test_auto_targets_are_the_connected_networks_only(scanlab):
    data = sweep(scanlab, "auto", *FAST)
    # the on-link route to the scanlab range; not the range behind a gateway, not loopback
    assert data["targets"] == scanlab.cidr.num_addresses - 2
    assert alive_ips(data) == scanlab.alive


def test_concurrent_raw_sweeps_ignore_each_others_replies(scanlab):
    def one(_):
        return sweep(scanlab, str(scanlab.cidr), "--backend", "raw", *FAST)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(one, range(3)))
    for data in results:
        assert alive_ips(data) == scanlab.alive
        assert data["no_reply"] == sorted(scanlab.silent + scanlab.absent, key=_key)


def test_deadline_stops_the_sweep(scanlab):
    started = time.monotonic()
    data = sweep(scanlab, ",".join(scanlab.absent), "--timeout", "5", "--retries", "3",
                 "--deadline", "0.4")
    assert time.monotonic() - started < 3
    assert data["elapsed_s"] < 1.0 and data["no_reply"] == scanlab.absent


def test_process_mode_from_the_real_zipapp(scanlab, tmp_path):
    from fleetops.ship.zipapp import build_zipapp

    app = build_zipapp(tmp_path)
    data = sweep(scanlab, str(scanlab.cidr), "--mode", "process", "--workers", "3", *FAST,
                 program=["python3", str(app.path)])
    assert data["mode"] == "process" and alive_ips(data) == scanlab.alive


def _key(ip: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ip.split("."))
