"""`invoke disk-report` on the lab with its history: runs counted, forecast fields,
changes, a damaged history file, --no-history, --format prometheus."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_diskreport_fleet import disk_report

pytestmark = pytest.mark.lab


def run_json(inventory, *args: str) -> tuple[int, dict, str]:
    proc = disk_report(inventory, "--format", "json", *args)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_history_grows_and_changes_are_reported(lab, lab_inventory, tmp_path):
    path = str(tmp_path / "hist" / "disk.sqlite")
    rc, doc, _ = run_json(lab_inventory, "-p", "lab01:lab02", "--history", path)
    assert rc == 0 and doc["history"] == {"path": path, "runs": 1} and doc["changes"] == []
    lab.fault("lab02", "stop")
    rc, doc, _ = run_json(lab_inventory, "-p", "lab01:lab02", "--history", path)
    assert rc == 3 and doc["history"]["runs"] == 2
    assert [(c["kind"], c["host"]) for c in doc["changes"]] == [("host_down", "lab02")]
    mount = next(m for m in doc["hosts"]["lab01"]["mounts"] if m["mountpoint"] == "/srv/data")
    assert mount["growth_bytes_per_day"] is not None and "full_in_days" in mount
    assert doc["report"]["summary"]["levels"]["ok"] >= 1
    proc = disk_report(lab_inventory, "-p", "lab01:lab02", "--history", path)
    head = proc.stdout.split("LEVEL")[0]
    assert head.startswith("Summary: ") and "Changes since the previous run (0)" not in head
    assert "GROWTH/D" in proc.stdout and "History: " + path in proc.stdout


def test_damaged_history_is_one_line_and_the_report_is_still_made(lab_inventory, tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite " * 500)
    rc, doc, err = run_json(lab_inventory, "-p", "lab03", "--history", str(bad))
    assert rc == 0 and doc["hosts"]["lab03"]["status"] == "ok" and doc["history"] is None
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert len(lines) == 1 and "report produced without history" in lines[0]
    assert "Traceback" not in err
    rc, doc, _ = run_json(lab_inventory, "-p", "lab03", "--no-history")
    assert rc == 0 and doc["history"] is None


def test_prometheus_format_on_the_lab(lab_inventory, tmp_path):
    proc = disk_report(lab_inventory, "-p", "lab04:lab05", "--format", "prometheus",
                       "--history", str(tmp_path / "h.sqlite"))
    assert proc.returncode == 0, proc.stderr
    families = {f.name: f for f in text_string_to_metric_families(proc.stdout)}
    size = [s for s in families["node_filesystem_size_bytes"].samples
            if s.labels["mountpoint"] == "/srv/data"]
    assert sorted(s.labels["host"] for s in size) == ["lab04", "lab05"]
    assert all(s.value > 0 for s in size)


def test_shared_network_source_counted_once(lab, lab_inventory, tmp_path):
    hosts = ["lab06", "lab07", "lab08"]
    for host in hosts:
        lab.ns_run(host, ["mkdir", "-p", "/mnt/shared"], check=True)
        lab.ns_run(host, ["mount", "-t", "tmpfs", "-o", "size=64m", "labnfs:/export/shared",
                          "/mnt/shared"], check=True)
    try:
        rc, doc, _ = run_json(lab_inventory, "-p", ":".join(hosts), "--no-history",
                              "--crit", "100")
        _, alone, _ = run_json(lab_inventory, "-p", ":".join(hosts), "--no-history",
                               "--crit", "100", "--exclude", "/mnt/shared")
    finally:
        for host in hosts:
            lab.ns_run(host, ["umount", "/mnt/shared"])
    assert rc == 0
    shared = doc["report"]["summary"]["shared"]
    assert len(shared) == 1 and shared[0]["source"] == "labnfs:/export/shared"
    assert shared[0]["hosts"] == hosts and shared[0]["size_bytes"] == 64 << 20
    with_fs, without = doc["report"]["totals"], alone["report"]["totals"]
    assert with_fs["mounts"] == without["mounts"] + 3
    assert with_fs["filesystems"] == without["filesystems"] + 1
    assert with_fs["size_bytes"] == without["size_bytes"] + (64 << 20)


def test_warm_disk_report_costs_no_round_trip_more_than_adhoc(lab, lab_inventory, tmp_path):
    """At an added RTT of 200 ms (a delaying ProxyCommand), fastest of 5 on one open
    connection: a warm diskreport takes as many round trips as `df -P` (it took one more
    when its arguments waited for the READY line)."""
    from fleetops.cli.diskbench import _exec_times

    relay = Path(__file__).resolve().parents[1] / "fleetops" / "lab" / "delayrelay.py"
    delayed = tmp_path / "delayed.ini"
    delayed.write_text(lab_inventory.read_text()
                       + f"fleetops_proxy_command={sys.executable} {relay} %h %p 100\n")
    direct, slow = _exec_times(lab_inventory, "lab05", 5), _exec_times(delayed, "lab05", 5)
    trips = {kind: (slow[kind] - direct[kind]) / 0.2 for kind in direct}
    assert 1.5 < trips["adhoc"] < 3.5, trips
    assert trips["disk"] - trips["adhoc"] < 0.5, trips
