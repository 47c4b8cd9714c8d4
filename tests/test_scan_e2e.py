"""`invoke scan` end to end: the real CLI, real SSH to two vantage hosts, real probes.

The vantages are sshds inside their own network namespaces on the scan lab's
target network (fleetops/lab/scan_vantage.py), reached through the netns relay
ProxyCommand. Every probe goes to the lab range, from inside a vantage namespace;
the root namespace routes none of it.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetops.lab.scan import _ip, assert_unrouted, unavailable_reason, wait_gone
from fleetops.lab.scan_vantage import RELAY, VantageLab, cleanup_stale

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def vlab(tmp_path_factory):
    reason = unavailable_reason() or next(
        (f"no {tool}" for tool in ("/usr/sbin/sshd", "unshare", "ssh-keygen")
         if not shutil.which(tool)), None)
    if reason:
        pytest.skip(reason)
    the_lab = VantageLab.up(2, state_dir=tmp_path_factory.mktemp("vantages"))
    try:
        yield the_lab
    finally:
        the_lab.down()
        assert wait_gone(the_lab.lab)
        listed = _ip("netns", "list", check=False).stdout.split()
        assert not set(the_lab.namespaces()) & set(listed)
        assert all(v.proc is None for v in the_lab.vantages)


def scan(vlab: VantageLab, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "scan", "-i", str(vlab.inventory),
         "--retry-file", str(tmp_path / "retry"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)


def scan_json(vlab: VantageLab, tmp_path: Path, *args: str) -> dict:
    done = scan(vlab, tmp_path, "--targets", str(vlab.lab.cidr), "--json", *args)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    doc = json.loads(done.stdout)
    assert doc["summary"] == {"ok": 2, "changed": 0, "failed": 0, "unreachable": 0,
                              "skipped": 0}
    for name, host in doc["hosts"].items():
        assert host["status"] == "ok" and host["reason"] is None, (name, host)
    return doc


def by_ip(doc: dict) -> dict[str, dict]:
    return {entry["ip"]: entry for entry in doc["network"]["addresses"]}


def sort_ips(ips) -> list[str]:
    return sorted(ips, key=ipaddress.ip_address)


def test_the_lab_stays_in_its_namespaces(vlab):
    lab = vlab.lab
    assert_unrouted(lab.cidr, *(ipaddress.ip_network(f"{v.source_ip}/32")
                                for v in vlab.vantages))
    assert len({v.source_ip for v in vlab.vantages}) == 2
    for vantage in vlab.vantages:  # sshd listens on the vantage's loopback only
        assert vantage.proc is not None and vantage.proc.poll() is None
        listening = lab._exec(vantage.ns, ["ss", "-Hltn"]).split()
        assert f"{vantage.address}:22" in listening
    assert all(v.address.startswith("127.") for v in vlab.vantages)
    assert len(vlab.hidden) == 2  # each vantage misses one address the other sees


def test_relay_reaches_the_vantage_sshd_and_reports_failures_in_one_line(vlab):
    vantage = vlab.vantages[0]
    banner = subprocess.run([sys.executable, "-I", str(RELAY), vantage.ns, vantage.address,
                             "22"], input=b"", capture_output=True, timeout=10, check=False)
    assert banner.stdout.startswith(b"SSH-2.0-OpenSSH"), banner
    missing = subprocess.run([sys.executable, "-I", str(RELAY), "fleetops-scan-no-such-ns",
                              "127.0.0.1", "22"], capture_output=True, text=True, timeout=10,
                             check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("netns_relay: cannot open /run/netns/fleetops-scan-no")
    assert missing.stderr.count("\n") == 1
    usage = subprocess.run([sys.executable, "-I", str(RELAY), "../x", "127.0.0.1"],
                           capture_output=True, text=True, timeout=10, check=False)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_vantage_sessions_run_in_their_namespace_with_a_lean_private_home(vlab, tmp_path):
    command = ("findmnt -n -o FSTYPE /root; wc -c < /root/.bashrc; "
               "ip -4 -o addr show dev fo-van0; command -v python3")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(vlab.inventory),
         "--json", "--retry-file", str(tmp_path / "retry"), command],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    hosts = json.loads(done.stdout)["hosts"]
    for vantage in vlab.vantages:
        lines = hosts[vantage.name]["stdout"].splitlines()
        assert lines[0] == "tmpfs" and lines[1].strip() == "0", lines
        assert f"inet {vantage.source_ip}/32" in lines[2]
        assert lines[3] == "/usr/bin/python3"


def test_scan_merges_both_vantages_into_the_exact_lab_map(vlab, tmp_path):
    lab = vlab.lab
    before = {v.name: v.accepted() for v in vlab.vantages}
    started = time.monotonic()
    doc = scan_json(vlab, tmp_path)
    elapsed = time.monotonic() - started
    network, table = doc["network"], by_ip(doc)
    for vantage in vlab.vantages:  # each vantage was reached over SSH, once
        assert vantage.accepted() == before[vantage.name] + 1
        view = network["vantages"][vantage.name]
        assert view["swept"] and view["targets"] == lab.cidr.num_addresses - 2
        assert view["alive"] == len(lab.alive) - len(vlab.hidden[vantage.name])
    answering = {ip for ip, entry in table.items() if entry["state"] == "answering"}
    assert answering == set(lab.alive)
    assert sort_ips(table) == sort_ips(lab.alive + lab.silent + lab.absent)  # probed by both
    for ip in lab.silent + lab.absent:
        assert table[ip]["state"] == "no-reply" and table[ip]["seen_by"] == []
        assert table[ip]["no_reply_from"] == ["vantage1", "vantage2"]
    for ip in lab.alive:
        entry = table[ip]
        assert sorted(s["host"] for s in entry["seen_by"]) == vlab.seen_by(ip), ip
        assert all(s["rtt_ms"] is not None and s["rtt_ms"] >= 0 for s in entry["seen_by"])
        missing = sorted(set(["vantage1", "vantage2"]) - set(vlab.seen_by(ip)))
        assert entry["no_reply_from"] == missing, ip
    one_sided = {ip: vlab.seen_by(ip) for ip in lab.alive if len(vlab.seen_by(ip)) == 1}
    assert one_sided == {vlab.hidden["vantage2"][0]: ["vantage1"],
                         vlab.hidden["vantage1"][0]: ["vantage2"]}
    assert network["summary"]["answering"] == len(lab.alive)
    assert network["summary"]["with_mac"] == 0  # no --arp
    assert elapsed < 10, elapsed


def target_mac(vlab: VantageLab) -> str:
    links = json.loads(_ip("-n", vlab.lab.targets_ns, "-j", "link").stdout)
    return next(link["address"] for link in links if link["ifname"] == "fo-tgt0")


def test_scan_with_arp_names_the_target_mac_for_every_existing_address(vlab, tmp_path):
    lab, mac = vlab.lab, target_mac(vlab)
    doc = scan_json(vlab, tmp_path, "--arp")
    table = by_ip(doc)
    for name, host in doc["hosts"].items():
        arp = host["arp"]
        assert arp["method"] == "arp-raw", name
        assert sort_ips(e["ip"] for e in arp["entries"]) == lab.responding
        assert {e["mac"].lower() for e in arp["entries"]} == {mac}
    assert {ip for ip, e in table.items() if e["state"] == "answering"} == set(lab.alive)
    for ip in lab.responding:
        assert table[ip]["mac"] == mac, ip
        assert table[ip]["macs"] == [{"mac": mac, "hosts": ["vantage1", "vantage2"]}]
    for ip in lab.silent:  # drops pings, answers ARP
        assert table[ip]["state"] == "arp-only" and table[ip]["seen_by"] == []
    for ip in lab.absent:
        assert table[ip]["state"] == "no-reply" and table[ip]["macs"] == []
    for vantage, hidden in vlab.hidden.items():  # pings dropped from one side only
        for ip in hidden:
            assert table[ip]["state"] == "answering" and table[ip]["mac"] == mac
            assert table[ip]["no_reply_from"] == [vantage]
    summary = doc["network"]["summary"]
    assert summary["mac_conflicts"] == 0 and summary["with_mac"] == len(lab.responding)
    assert summary["arp-only"] == len(lab.silent)


@pytest.mark.parametrize("bad", ["host-bits", "not-an-address"])
def test_bad_targets_are_refused_before_any_vantage_is_contacted(vlab, tmp_path, bad):
    net = vlab.lab.cidr
    value = f"{net.network_address + 5}/{net.prefixlen}" if bad == "host-bits" else bad
    logs = {v.name: v.log.read_text() for v in vlab.vantages}
    done = scan(vlab, tmp_path, "--targets", value, "--json")
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert done.stdout == "" and done.stderr.count("\n") == 1
    assert "--targets" in done.stderr
    assert {v.name: v.log.read_text() for v in vlab.vantages} == logs  # no connection at all
    assert not (tmp_path / "retry").exists()


def test_cleanup_stale_stops_and_removes_a_dead_sessions_vantage_namespace():
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    gone = subprocess.Popen(["true"])
    gone.wait()
    name = f"fleetops-scan-vantage1-{gone.pid}-1"
    _ip("netns", "add", name)
    sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while not _ip("netns", "pids", name).stdout.split() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert name in cleanup_stale()
        assert sleeper.wait(timeout=5) != 0  # killed
        assert name not in _ip("netns", "list", check=False).stdout.split()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
        _ip("netns", "del", name, check=False)


def test_an_unreachable_vantage_is_reported_and_the_others_still_map_the_lab(vlab, tmp_path):
    """The third vantage's ProxyCommand names a namespace that does not exist: the relay
    fails before any connection, so this sends nothing anywhere. (Paramiko's
    ProxyCommand does not see the relay's EOF and waits out the connect timeout,
    hence the short --timeout.)"""
    ghost = vlab.inventory_text().splitlines()[1].replace("vantage1 ", "ghost ", 1)
    ghost = ghost.replace(vlab.vantages[0].ns, "fleetops-scan-vantage9-0-0")
    inventory = tmp_path / "with-ghost.ini"
    inventory.write_text(vlab.inventory_text() + ghost + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "scan", "-i", str(inventory),
         "--targets", str(vlab.lab.cidr), "--json", "--timeout", "2",
         "--retry-file", str(tmp_path / "retry")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, (done.stdout[-2000:], done.stderr[-2000:])
    doc = json.loads(done.stdout)
    assert doc["summary"]["ok"] == 2 and doc["summary"]["unreachable"] == 1
    assert doc["hosts"]["ghost"]["status"] == "unreachable" and doc["hosts"]["ghost"]["reason"]
    assert doc["network"]["vantages"]["ghost"] == {"swept": False}
    table = by_ip(doc)
    assert {ip for ip, e in table.items() if e["state"] == "answering"} == set(vlab.lab.alive)
    assert all("ghost" not in e["no_reply_from"] for e in table.values())
    assert (tmp_path / "retry").read_text().splitlines()[1:] == ["ghost"]  # after "#" header
