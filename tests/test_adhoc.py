"""`invoke run` against the real lab: results, faults, host keys, patterns, retry files."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOST_KEYS = {"status", "rc", "stdout", "stderr", "duration", "reason"}

pytestmark = pytest.mark.lab


def invoke(*args: str, timeout: float = 60, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)


def run_json(inventory: Path, *args: str, command: str = "hostname", **kw) -> tuple[int, dict]:
    proc = invoke("run", "-i", str(inventory), "--json", *args, command, **kw)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_eight_hosts_ok_with_their_hostnames(lab_inventory, tmp_path):
    rc, doc = run_json(lab_inventory, "-p", "lab[0:7]", "--retry-file", str(tmp_path / "r"))
    assert rc == 0
    assert sorted(doc["hosts"]) == [f"lab0{i}" for i in range(1, 9)]
    for name, host in doc["hosts"].items():
        assert HOST_KEYS <= host.keys()
        assert host["status"] == "ok" and host["rc"] == 0 and host["reason"] is None
        assert host["stdout"].strip() == name
    assert doc["summary"] == {"ok": 8, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    assert not (tmp_path / "r").exists()


def test_text_output_prefixes_and_recap(lab_inventory, tmp_path):
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab01:lab02",
                  "--retry-file", str(tmp_path / "r"), "echo one; echo two")
    assert proc.returncode == 0, proc.stderr
    assert "lab01 | one\nlab01 | two\n" in proc.stdout
    assert re.search(r"^lab02 +: ok=1 changed=0 unreachable=0 failed=0", proc.stdout, re.M)


def test_stopped_host_is_unreachable_and_others_ok(lab, lab_inventory, tmp_path):
    lab.fault("lab03", "stop")
    retry = tmp_path / "retry"
    rc, doc = run_json(lab_inventory, "--retry-file", str(retry))
    assert rc == 3
    bad = doc["hosts"]["lab03"]
    assert bad["status"] == "unreachable" and "refused" in bad["reason"].lower()
    assert doc["summary"]["ok"] == len(lab.hosts) - 1
    assert retry.read_text().splitlines()[1:] == ["lab03"]  # after the "#" header line
    lab.heal("lab03")
    rc, doc = run_json(lab_inventory, "--limit", f"@{retry}", "--retry-file", str(retry))
    assert rc == 0 and list(doc["hosts"]) == ["lab03"]
    assert not retry.exists()


def test_frozen_host_times_out_within_its_deadline(lab, lab_inventory, tmp_path):
    lab.fault("lab05", "freeze")
    started = time.monotonic()
    rc, doc = run_json(lab_inventory, "--timeout", "2", "--retry-file", str(tmp_path / "r"))
    elapsed = time.monotonic() - started
    assert rc == 3
    frozen = doc["hosts"]["lab05"]
    assert frozen["status"] == "unreachable"
    assert frozen["duration"] < 4.0, frozen
    assert elapsed < 10
    assert doc["summary"]["ok"] == len(lab.hosts) - 1


def test_command_timeout_fails_only_that_host(lab_inventory, tmp_path):
    command = 'case "$(hostname)" in lab02) sleep 30;; esac; hostname'
    rc, doc = run_json(lab_inventory, "-p", "lab01:lab02", "--command-timeout", "1.5",
                       "--retry-file", str(tmp_path / "r"), command=command)
    assert rc == 2
    assert doc["hosts"]["lab01"]["status"] == "ok"
    slow = doc["hosts"]["lab02"]
    assert slow["status"] == "failed" and "timed out" in slow["reason"]
    assert slow["duration"] < 5


def test_rekeyed_host_is_refused_without_running_anything(lab, lab_inventory, tmp_path):
    lab.fault("lab04", "rekey")
    marker = "/tmp/fleetops-rekey-ran"
    rc, doc = run_json(lab_inventory, "-p", "lab04:lab06", "--accept-new",
                       "--retry-file", str(tmp_path / "r"), command=f"touch {marker}")
    assert rc == 3
    refused = doc["hosts"]["lab04"]
    assert refused["status"] == "unreachable"
    assert "HOST KEY CHANGED" in refused["reason"]
    assert lab.ns_run("lab04", ["test", "-e", marker]).returncode == 1
    assert lab.ns_run("lab06", ["test", "-e", marker]).returncode == 0


def _inventory_with_known_hosts(lab, tmp_path: Path, known_hosts: Path) -> Path:
    text = lab.inventory_path.read_text()
    text = re.sub(r"fleetops_known_hosts=\S+", f"fleetops_known_hosts={known_hosts}", text)
    path = tmp_path / "inv.ini"
    path.write_text(text)
    return path


def test_accept_new_records_new_keys_and_refuses_changed_ones(lab, tmp_path):
    known = tmp_path / "known_hosts"
    inventory = _inventory_with_known_hosts(lab, tmp_path, known)
    retry = ("--retry-file", str(tmp_path / "r"))
    rc, doc = run_json(inventory, "-p", "lab[0:3]", *retry)
    assert rc == 3
    assert all("unknown host key" in h["reason"] for h in doc["hosts"].values())
    assert not known.exists()

    rc, doc = run_json(inventory, "-p", "lab[0:3]", "--accept-new", *retry)
    assert rc == 0, doc
    lines = known.read_text().splitlines()
    assert len(lines) == 4 and oct(known.stat().st_mode & 0o777) == "0o600"
    # names are hashed when ssh_config says HashKnownHosts yes (Debian's /etc/ssh does)
    wanted = {line.split()[2] for line in lab.known_hosts.read_text().splitlines()
              if line.split()[0] in {f"[{h.address}]:{h.port}" for h in lab.hosts[:4]}}
    assert {line.split()[2] for line in lines} == wanted

    rc, _ = run_json(inventory, "-p", "lab[0:3]", *retry)
    assert rc == 0
    lab.fault("lab02", "rekey")
    rc, doc = run_json(inventory, "-p", "lab[0:3]", "--accept-new", *retry)
    assert rc == 3
    assert "HOST KEY CHANGED" in doc["hosts"]["lab02"]["reason"]
    assert known.read_text().splitlines() == lines


@pytest.mark.parametrize(
    ("pattern", "limit", "expected"),
    [
        ("even:&lab0*", None, ["lab02", "lab04", "lab06", "lab08"]),
        ("lab:!odd:!lab1*", None, ["lab02", "lab04", "lab06", "lab08"]),
        ("lab01:lab03:lab16", "lab0*", ["lab01", "lab03"]),
        ("lab16,lab03,lab01", "lab0*", ["lab03", "lab01"]),  # the pattern's order, as Ansible
        ("all", "odd:&lab1*", ["lab11", "lab13", "lab15"]),
    ],
)
def test_patterns_and_limits_select_the_right_hosts(lab_inventory, tmp_path, pattern, limit,
                                                     expected):
    args = ["-p", pattern, "--retry-file", str(tmp_path / "r")]
    if limit:
        args += ["--limit", limit]
    rc, doc = run_json(lab_inventory, *args, command="true")
    assert rc == 0
    assert list(doc["hosts"]) == expected


def test_become_runs_through_sudo(lab_inventory, tmp_path):
    rc, doc = run_json(lab_inventory, "-p", "lab01", "--become", "--become-user", "nobody",
                       "--retry-file", str(tmp_path / "r"), command="id -un")
    assert rc == 0, doc
    assert doc["hosts"]["lab01"]["stdout"].strip() == "nobody"


def test_ctrl_c_stops_cleanly_and_keeps_finished_hosts(lab_inventory, tmp_path):
    command = 'case "$(hostname)" in lab01) sleep 30;; esac; hostname'
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(lab_inventory),
         "--json", "--retry-file", str(tmp_path / "r"), command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 99, err
    doc = json.loads(out)
    assert doc["hosts"]["lab01"]["status"] == "failed"
    assert "interrupted" in doc["hosts"]["lab01"]["reason"]
    assert doc["hosts"]["lab02"]["status"] == "ok"


BAD_INVENTORIES = {
    "syntax.ini": ("[web\nh1\n", r"syntax\.ini:1: "),
    "undef.ini": ("[a:children]\nnever\n", r"undef\.ini:2: .*undefined group 'never'"),
    "bad.yml": ("all:\n  hosts: [h1\n", r"bad\.yml:\d+: "),
}


@pytest.mark.parametrize("name", sorted(BAD_INVENTORIES))
def test_bad_inventory_is_one_line_exit_4(tmp_path, name):
    text, expected = BAD_INVENTORIES[name]
    (tmp_path / name).write_text(text)
    proc = invoke("run", "-i", str(tmp_path / name), "true")
    assert proc.returncode == 4
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(expected, proc.stderr), proc.stderr


def test_missing_inventory_and_unknown_group_exit_4(tmp_path, monkeypatch):
    proc = invoke("run", "-i", str(tmp_path / "nope.ini"), "true")
    assert proc.returncode == 4 and "nope.ini" in proc.stderr
    (tmp_path / "ok.ini").write_text("[web]\nh1\n")
    proc = invoke("run", "-i", str(tmp_path / "ok.ini"), "-p", "dbs", "true")
    assert proc.returncode == 4  # Ansible: a warning, then nothing selected
    assert proc.stderr.splitlines()[0].startswith("fleetops: warning: 'dbs' matches no host")
    assert proc.stderr.splitlines()[1].endswith("pattern 'dbs' selects no host")
    monkeypatch.setenv("ANSIBLE_HOST_PATTERN_MISMATCH", "error")  # strict, as Ansible's option
    proc = invoke("run", "-i", str(tmp_path / "ok.ini"), "-p", "web:dbs", "true")
    assert proc.returncode == 4
    assert "'dbs'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_option_values_exit_5(tmp_path):
    (tmp_path / "ok.ini").write_text("[web]\nh1\n")
    for args in (["--forks", "0"], ["--timeout", "soon"]):
        proc = invoke("run", "-i", str(tmp_path / "ok.ini"), *args, "true")
        assert proc.returncode == 5, (args, proc.stderr)


def test_one_connection_per_host_for_many_steps(lab):
    from fleetops.cli.common import target_for
    from fleetops.core.runner import Fleet, RunOptions
    from fleetops.inventory.load import load_inventory
    from fleetops.results import HostResult

    hosts = load_inventory(lab.inventory_path).select("lab07")

    def work(session):
        outputs = [session.exec("echo $PPID").stdout for _ in range(3)]
        ssh_client = session.exec("echo $SSH_CLIENT").stdout
        return HostResult(session.host.name, "ok", stdout=repr((outputs, ssh_client)))

    with Fleet(RunOptions(), target_for) as fleet:
        before = _accepted(lab, "lab07")
        run = fleet.run(hosts, work)
        run2 = fleet.run(hosts, work)
    assert run.hosts["lab07"].status == "ok" and run2.hosts["lab07"].status == "ok"
    assert _accepted(lab, "lab07") - before == 1


def _accepted(lab, name: str) -> int:
    return lab.host(name).log.read_text().count("Accepted publickey")


def test_proxy_command_reaches_a_host_through_a_bastion(lab, tmp_path):
    bastion, inner = lab.host("lab01"), lab.host("lab02")
    jump = (f"ssh -F /dev/null -i {lab.client_key} -o BatchMode=yes "
            f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes "
            f"-p {bastion.port} -W %h:%p root@{bastion.address}")
    inventory = tmp_path / "inv.ini"
    inventory.write_text(
        f"inner ansible_host={inner.address} ansible_port={inner.port} ansible_user=root "
        f"ansible_ssh_private_key_file={lab.client_key} fleetops_known_hosts={lab.known_hosts} "
        f"fleetops_proxy_command='{jump}'\n")
    before = lab.host("lab01").log.read_text().count("Accepted publickey")
    rc, doc = run_json(inventory, "--retry-file", str(tmp_path / "r"))
    assert rc == 0, doc
    assert doc["hosts"]["inner"]["stdout"].strip() == "lab02"
    assert lab.host("lab01").log.read_text().count("Accepted publickey") == before + 1
