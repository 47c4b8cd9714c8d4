"""`invoke play` against the real lab: templating, failures, batches, check mode, reuse.

Files go under /srv (a private tmpfs in every lab host); each test removes what it
wrote. The network playbook only ever scans loopback addresses.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[1]
PLAY_CLI = ("import sys; from invoke import Collection, Program; from fleetops.cli.play import "
            "play; Program(namespace=Collection(play), binary='invoke')"
            ".run(['invoke', 'play', *sys.argv[1:]])")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


def play(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PLAY_CLI, *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, check=False)


def play_json(*args: str, cwd: Path) -> tuple[int, dict]:
    proc = play(*args, "--json", cwd=cwd)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def inventory(lab, tmp_path: Path, host_vars: dict | None = None,
              all_vars: dict | None = None) -> Path:
    """The lab inventory plus host_vars/ files and [all:vars] for this test."""
    text = lab.inventory_path.read_text()
    if all_vars:
        text += "\n[all:vars]\n" + "".join(f"{k}={v}\n" for k, v in all_vars.items())
    path = tmp_path / "inv.ini"
    path.write_text(text)
    (tmp_path / "host_vars").mkdir(exist_ok=True)
    for host, values in (host_vars or {}).items():
        (tmp_path / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(values))
    return path


def book(tmp_path: Path, text: str, name: str = "book.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def sh(lab, host: str, command: str) -> subprocess.CompletedProcess:
    return lab.ns_run(host, ["/bin/sh", "-c", command], capture_output=True, text=True,
                      env=ENV, timeout=30, check=False)


def task_statuses(doc: dict, host: str) -> list[str]:
    return [t["status"] for t in doc["hosts"][host]["tasks"]]


def accepted(lab, host: str) -> int:
    return lab.host(host).log.read_text().count("Accepted publickey")


MOTD = """
- name: motd
  hosts: lab01:lab02
  vars:
    motd_path: /srv/play-motd
  tasks:
    - name: message of the day
      template: {src: motd.j2, dest: "{{ motd_path }}", mode: "0640"}
"""


def test_template_per_host_idempotent_then_check_and_diff(lab, tmp_path):
    inv = inventory(lab, tmp_path, {"lab01": {"motd_role": "web"}, "lab02": {"motd_role": "db"}})
    path = book(tmp_path, MOTD)
    try:
        rc, doc = play_json("-i", str(inv), str(path), cwd=tmp_path)
        assert rc == 0, doc
        assert [doc["hosts"][h]["status"] for h in ("lab01", "lab02")] == ["changed"] * 2
        assert sh(lab, "lab01", "cat /srv/play-motd").stdout == (
            "Welcome to lab01 (web).\nGroups: lab, odd\n"
            "This file is managed by fleetops: local changes are overwritten.\n")
        assert sh(lab, "lab02", "cat /srv/play-motd").stdout.startswith(
            "Welcome to lab02 (db).\nGroups: even, lab\n")
        assert sh(lab, "lab02", "stat -c %a /srv/play-motd").stdout.strip() == "640"

        proc = play("-i", str(inv), str(path), cwd=tmp_path)  # idempotent: nothing changes
        assert proc.returncode == 0, proc.stderr
        for host in ("lab01", "lab02"):
            assert re.search(rf"^{host} : ok=1 changed=0 unreachable=0 failed=0 skipped=0$",
                             proc.stdout, re.M), proc.stdout

        inventory(lab, tmp_path, {"lab02": {"motd_role": "cache"}})
        proc = play("-i", str(inv), str(path), "--check", "--diff", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "lab02 | CHANGED | would change /srv/play-motd: content" in proc.stdout
        assert "lab02 |   -Welcome to lab02 (db).\nlab02 |   +Welcome to lab02 (cache).\n" \
            in proc.stdout
        assert "lab01 | OK | /srv/play-motd" in proc.stdout
        assert "check mode: nothing was changed" in proc.stdout
        assert sh(lab, "lab02", "head -n1 /srv/play-motd").stdout == "Welcome to lab02 (db).\n"
        rc, doc = play_json("-i", str(inv), str(path), "--check", "--diff", cwd=tmp_path)
        (motd,) = doc["hosts"]["lab02"]["tasks"]
        assert motd["status"] == "changed" and "+Welcome to lab02 (cache)." in motd["diff"]
        assert "diff" not in doc["hosts"]["lab01"]["tasks"][0]
    finally:
        for host in ("lab01", "lab02"):
            sh(lab, host, "rm -f /srv/play-motd")


def test_undefined_variable_fails_only_that_host(lab, tmp_path):
    inv = inventory(lab, tmp_path, {"lab03": {"only_here": "yes"}})
    path = book(tmp_path, """
        - hosts: lab03:lab04
          tasks:
            - name: write marker
              copy: {content: "{{ only_here }}\\n", dest: /srv/play-undef}
            - name: afterwards
              run: touch /srv/play-after
        - name: second play
          hosts: lab03:lab04
          tasks:
            - run: "true"
        """)
    retry = tmp_path / "r.retry"
    try:
        rc, doc = play_json("-i", str(inv), str(path), "--retry-file", str(retry), cwd=tmp_path)
        assert rc == 2
        bad = doc["hosts"]["lab04"]
        assert bad["status"] == "failed"
        assert bad["tasks"][0]["reason"] == \
            "task 'write marker' on lab04: undefined variable 'only_here'"
        assert bad["reason"].startswith("task 'write marker': ")
        assert task_statuses(doc, "lab04") == ["failed"]  # skipped its remaining tasks
        assert task_statuses(doc, "lab03") == ["changed", "ok", "ok"]
        assert doc["plays"][1]["hosts"] == ["lab03"]  # a failed host sits out later plays
        assert sh(lab, "lab03", "cat /srv/play-after /srv/play-undef").stdout == "yes\n"
        assert sh(lab, "lab04", "test -e /srv/play-after").returncode == 1
        assert retry.read_text().splitlines()[1:] == ["lab04"]  # after the "#" header
    finally:
        for host in ("lab03", "lab04"):
            sh(lab, host, "rm -f /srv/play-undef /srv/play-after")


def test_serial_batches_run_one_after_the_other(lab, tmp_path):
    path = book(tmp_path, """
        - hosts: lab05:lab06:lab07:lab08
          serial: 2
          tasks:
            - run: date +%s.%N > /srv/play-t1; sleep 0.3
            - run: date +%s.%N > /srv/play-t2
        """)
    hosts = ["lab05", "lab06", "lab07", "lab08"]
    try:
        rc, doc = play_json("-i", str(lab.inventory_path), str(path), cwd=tmp_path)
        assert rc == 0, doc
        t1 = {h: float(sh(lab, h, "cat /srv/play-t1").stdout) for h in hosts}
        t2 = {h: float(sh(lab, h, "cat /srv/play-t2").stdout) for h in hosts}
        first, second = hosts[:2], hosts[2:]
        assert max(t2[h] for h in first) < min(t1[h] for h in second)  # batches don't overlap
        for batch in (first, second):  # linear: all of task 1 before any of task 2
            assert min(t2[h] for h in batch) >= max(t1[h] for h in batch) + 0.3
    finally:
        for host in hosts:
            sh(lab, host, "rm -f /srv/play-t1 /srv/play-t2")


def test_max_fail_percentage_stops_everything(lab, tmp_path):
    path = book(tmp_path, """
        - name: fragile
          hosts: lab09:lab10:lab11:lab12
          max_fail_percentage: 50
          tasks:
            - run: test {{ inventory_hostname }} = lab09
            - run: touch /srv/play-maxfail
        - name: later
          hosts: lab13
          tasks:
            - run: touch /srv/play-maxfail
        """)
    retry = tmp_path / "r.retry"
    rc, doc = play_json("-i", str(lab.inventory_path), str(path), "--retry-file", str(retry),
                        cwd=tmp_path)
    assert rc == 2
    assert doc["plays"][0]["stopped"] == \
        "max_fail_percentage 50% exceeded: 3 of 4 hosts failed (75%)"
    assert len(doc["plays"]) == 1  # the later play never started
    assert task_statuses(doc, "lab09") == ["ok"]
    assert doc["hosts"]["lab13"]["status"] == "skipped"
    assert doc["hosts"]["lab13"]["reason"].startswith("not run: max_fail_percentage")
    for host in ("lab09", "lab13"):
        assert sh(lab, host, "test -e /srv/play-maxfail").returncode == 1
    assert retry.read_text().splitlines()[1:] == ["lab10", "lab11", "lab12"]


def test_check_mode_skips_commands_visibly(lab, tmp_path):
    path = book(tmp_path, """
        - hosts: lab13
          tasks:
            - name: unsafe
              run: touch /srv/play-check-run
            - name: read only
              run: cat /etc/hostname
              check_mode_safe: true
        """)
    proc = play("-i", str(lab.inventory_path), str(path), "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lab13 | SKIPPED | check mode: cannot predict the effect of a command" in proc.stdout
    assert re.search(r"^lab13 : ok=1 changed=0 unreachable=0 failed=0 skipped=1$",
                     proc.stdout, re.M), proc.stdout
    assert sh(lab, "lab13", "test -e /srv/play-check-run").returncode == 1


def test_one_connection_per_host_for_a_four_task_play(lab, tmp_path):
    path = book(tmp_path, """
        - hosts: lab14:lab15
          tasks:
            - run: hostname
            - template: {src: motd.j2, dest: /srv/play-reuse-motd}
            - copy: {content: "x\\n", dest: /srv/play-reuse-copy, backup: true}
            - disk_report: {include: [/srv/data]}
        """)
    hosts = ("lab14", "lab15")
    before = {h: accepted(lab, h) for h in hosts}
    try:
        rc, doc = play_json("-i", str(lab.inventory_path), str(path), cwd=tmp_path)
        assert rc == 0, doc
        assert task_statuses(doc, "lab14") == ["ok", "changed", "changed", "ok"]
        assert [m["mountpoint"] for m in doc["hosts"]["lab15"]["tasks"][3]["data"]["mounts"]] \
            == ["/srv/data"]
        assert {h: accepted(lab, h) - before[h] for h in hosts} == {h: 1 for h in hosts}
    finally:
        for host in hosts:
            sh(lab, host, "rm -f /srv/play-reuse-motd /srv/play-reuse-copy")


def _green_then_check_clean(lab, inv: Path, name: str, limit: str, tmp_path: Path) -> dict:
    playbook = str(REPO / "playbooks" / name)
    rc, first = play_json("-i", str(inv), playbook, "--limit", limit, cwd=tmp_path)
    assert rc == 0, first
    rc, check = play_json("-i", str(inv), playbook, "--limit", limit, "--check", cwd=tmp_path)
    assert rc == 0, check
    assert check["summary"]["changed"] == 0, check
    assert all(t["status"] in ("ok", "skipped") for h in check["hosts"].values()
               for t in h["tasks"])
    return first


def test_nightly_disk_report_playbook(lab, tmp_path):
    home = "/srv/play-fleetops"
    inv = inventory(lab, tmp_path, all_vars={"fleetops_home": home,
                                             "report_dir": f"{home}/reports"})
    hosts = ("lab01", "lab02")
    try:
        rc, check = play_json("-i", str(inv), str(REPO / "playbooks" / "nightly-disk-report.yml"),
                              "--limit", "lab01:lab02", "--check", cwd=tmp_path)
        assert rc == 0, check  # a fresh host: everything would change, nothing does
        assert task_statuses(check, "lab01") == ["changed", "changed", "changed", "ok"]
        assert sh(lab, "lab01", f"test -e {home}").returncode == 1
        assert "fleetops-disk-report" not in sh(lab, "lab01", "crontab -l").stdout
        doc = _green_then_check_clean(lab, inv, "nightly-disk-report.yml", "lab01:lab02",
                                      tmp_path)
        assert task_statuses(doc, "lab01") == ["changed", "changed", "changed", "ok"]
        assert f"{home}/disk-report.sh" in sh(lab, "lab02", "crontab -l").stdout
        job = sh(lab, "lab02", f"{home}/disk-report.sh")
        assert job.returncode in (0, 3), job.stderr
        report = json.loads(sh(lab, "lab02", f"cat {home}/reports/disk-report.json").stdout)
        assert report["ok"] and report["data"]["hostname"] == "lab02"
    finally:
        for host in hosts:
            sh(lab, host, f"crontab -r; rm -rf {home}")


def test_watchers_playbook_starts_then_stops(lab, tmp_path):
    hosts = ("lab03", "lab04")
    try:
        doc = _green_then_check_clean(lab, lab.inventory_path, "watchers.yml", "lab03:lab04",
                                      tmp_path)
        assert task_statuses(doc, "lab03") == ["changed", "ok"]
        data = doc["hosts"]["lab04"]["tasks"][0]["data"]
        assert data["running"] and data["pid"]
        inv = inventory(lab, tmp_path, all_vars={"watcher_state": "stopped"})
        doc = _green_then_check_clean(lab, inv, "watchers.yml", "lab03:lab04", tmp_path)
        assert task_statuses(doc, "lab04") == ["changed", "ok"]
    finally:
        for host in hosts:
            sh(lab, host, f"cd {REPO} && python3 -m ops watcher stop --name fleetops")


def test_network_inventory_playbook_merges_loopback_scans(lab, tmp_path):
    doc = _green_then_check_clean(lab, lab.inventory_path, "network-inventory.yml",
                                  "lab05:lab06", tmp_path)
    network = {entry["ip"]: entry for entry in doc["network"]["addresses"]}  # scan's map
    assert set(network) <= {"127.0.0.1", "127.0.0.2"}
    assert sorted(s["host"] for s in network["127.0.0.1"]["seen_by"]) == ["lab05", "lab06"]
    assert network["127.0.0.1"]["state"] == "answering"
    assert sorted(doc["network"]["vantages"]) == ["lab05", "lab06"]
    assert task_statuses(doc, "lab06") == ["ok", "ok"]
