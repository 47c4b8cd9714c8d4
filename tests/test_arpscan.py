"""arpscan against the scan lab: MACs must be the lab interface's, read via ip -j link."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetops.lab.scan import TARGETS_IF, ScanLab, unavailable_reason

FAST = ["--timeout", "0.3", "--min-timeout", "0.1"]


@pytest.fixture(scope="module")
def scanlab():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    the_lab = ScanLab.up(prefix=27)
    try:
        yield the_lab
    finally:
        the_lab.down()


def link_mac(lab: ScanLab) -> str:
    done = subprocess.run(["ip", "-n", lab.targets_ns, "-j", "link", "show", "dev", TARGETS_IF],
                          capture_output=True, text=True, timeout=10, check=True)
    return json.loads(done.stdout)[0]["address"]


def arpscan(lab: ScanLab, *args: str) -> dict:
    done = lab.run([sys.executable, "-m", "ops", "arpscan", *args], timeout=60)
    doc = json.loads(done.stdout)
    assert doc["ok"] and done.returncode == 0, (doc, done.stderr)
    return doc["data"]


@pytest.mark.parametrize("method, label", [("raw", "arp-raw"), ("cache", "neigh-cache"),
                                           ("auto", "arp-raw")])
def test_arpscan_maps_every_existing_lab_address_to_the_lab_mac(scanlab, method, label):
    beyond = str(scanlab.routed.network_address + 5)  # a lab address behind a gateway
    data = arpscan(scanlab, str(scanlab.cidr), beyond, "--method", method, *FAST)
    mac = link_mac(scanlab)
    assert data["method"] == label
    # ICMP-silent addresses still answer ARP; absent ones never do
    assert [e["ip"] for e in data["entries"]] == scanlab.responding
    assert {e["mac"] for e in data["entries"]} == {mac}
    assert {e["method"] for e in data["entries"]} == {label}
    assert data["no_reply"] == scanlab.absent
    assert data["not_on_link"] == [beyond]
    assert data["targets"] == scanlab.cidr.num_addresses - 1
    assert data["interfaces"] == ["fo-scan0"]


def test_arpscan_never_guesses_for_addresses_off_link(scanlab):
    routed = scanlab.routed
    data = arpscan(scanlab, f"{routed.network_address + 1}-{routed.network_address + 4}")
    assert data["entries"] == [] and data["no_reply"] == []
    assert len(data["not_on_link"]) == 4


def test_arpscan_rejects_bad_targets_in_one_line(scanlab):
    done = scanlab.run([sys.executable, "-m", "ops", "arpscan", f"{scanlab.cidr[5]}/27"])
    doc = json.loads(done.stdout)
    assert done.returncode == 2 and "has host bits set" in doc["error"]
    assert len(done.stdout.splitlines()) == 1
