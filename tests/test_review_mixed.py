"""The mixed lab's own inventory works as written: a new user's first
``invoke run -i inventory/lab.ini -p mixed`` reaches the hosts behind the bastion (the
hop takes its key from the lab's ssh_config, as ssh's own ``-J`` hop would), and its disk
report leaves out the lab's housekeeping mounts like the default profile's does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def _invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_hidden_hosts_reached_through_the_bastion_from_the_lab_inventory(mixed_lab):
    proc = _invoke("run", "-i", str(mixed_lab.inventory_path), "-p", "behind_bastion",
                   "--retry-file", "", "--json", "hostname")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    hosts = json.loads(proc.stdout)["hosts"]
    assert {n: h["stdout"] for n, h in hosts.items()} == {
        "hidden01": "hidden01\n", "hidden02": "hidden02\n"}


def test_mixed_disk_report_leaves_out_the_lab_state_dir(mixed_lab):
    proc = _invoke("disk-report", "-i", str(mixed_lab.inventory_path), "-p",
                   "noisy_rc:maxstartups", "--retry-file", "", "--format", "json")
    doc = json.loads(proc.stdout)
    mounts = [m["mountpoint"] for h in doc["hosts"].values() for m in h["mounts"]]
    assert mounts and str(mixed_lab.state_dir) not in mounts, mounts
