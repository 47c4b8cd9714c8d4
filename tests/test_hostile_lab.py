"""Hostile hosts on the real lab (issue 11): a host that prints terminal escapes, one
that floods, one that never ends, and hosts whose program returns crafted JSON (a
fake ``python3`` set with ``fleetops_python``). The other hosts' results, the recap,
the exit code and the retry file are what the run must still get right."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.lab

ESCAPES = (r"printf '\033]0;pwned\007\033[2J\033[H\033]52;c;cm0gLXJmIH4=\007fake\rlab09 | OK\n"
           r"\342\200\256evil\377\376\n'")
FLOOD_BYTES = 50_000_000


def invoke(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False)


def roles_command() -> str:
    return ("case \"$(uname -n)\" in "
            f"lab01) {ESCAPES} ;; "
            f"lab02) head -c {FLOOD_BYTES} /dev/zero | base64 ;; "
            "lab03) sleep 600 ;; "
            "*) echo fine ;; esac")


def assert_terminal_safe(text: str) -> None:
    for line in text.split("\n"):
        bad = [c for c in line if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]
        assert not bad, (line, bad)


def test_escapes_flood_and_hang_do_not_harm_the_run_or_the_terminal(lab_inventory, tmp_path):
    retry = tmp_path / "retry"
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab[0:5]", "--command-timeout", "3",
                  "--max-output", "64K", "--retry-file", str(retry), roles_command())
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout
    assert_terminal_safe(out)
    assert "lab01 | \\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x1b]52;c;cm0gLXJmIH4=\\x07fake\\rlab09 | OK" \
        in out
    assert "lab01 | \\u202eevil\\xff\\xfe" in out
    assert not any(line.startswith("lab09") for line in out.splitlines())
    body = [line for line in out.split("RECAP")[0].splitlines() if line]
    assert all(line.split(" | ")[0] in {f"lab0{i}" for i in range(1, 7)} for line in body)
    assert "lab02 | OK | rc=0 | stdout cut at --max-output" in out
    assert sum(line.startswith("lab02 | ") for line in out.splitlines()) < 64 * 1024 // 76 + 10
    assert "lab03 | FAILED | command timed out" in out
    for name in ("lab04", "lab05", "lab06"):
        assert f"{name} | fine" in out
    assert "6 hosts in" in out and "ok=5" in out and "failed=1" in out
    assert "output cut at --max-output (the rest was read and discarded): lab02 (stdout)" in out
    assert retry.read_text().splitlines()[1:] == ["lab03"]


def test_json_keeps_exact_text_and_reports_truncation(lab_inventory, tmp_path):
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab[0:5]", "--json",
                  "--command-timeout", "3", "--max-output", "64K",
                  "--retry-file", str(tmp_path / "r"), roles_command())
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    hosts = doc["hosts"]
    assert hosts["lab01"]["stdout"].startswith("\x1b]0;pwned\x07\x1b[2J")
    assert "\u202eevil\udcff\udcfe" in hosts["lab01"]["stdout"]  # non-UTF-8 kept: surrogateescape
    flood = hosts["lab02"]
    assert flood["status"] == "ok" and flood["truncated"] == ["stdout"]
    assert len(flood["stdout"]) == 64 * 1024
    assert len(flood["stdout"]) + flood["discarded_bytes"]["stdout"] > FLOOD_BYTES * 4 // 3
    assert hosts["lab03"]["status"] == "failed"
    assert all(hosts[n]["stdout"] == "fine\n" for n in ("lab04", "lab05", "lab06"))
    assert doc["summary"]["ok"] == 5 and doc["summary"]["failed"] == 1


# -- crafted program results ----------------------------------------------------------------

@pytest.fixture
def fake_python(lab, lab_ssh, tmp_path):
    """``fake(host, stdout_text, sleep=False)``: ``host`` runs a fake python3 that prints
    ``stdout_text``; returns an inventory where that host uses it (others are real)."""
    hosts: list[str] = []
    inventory = tmp_path / "inv.ini"
    inventory.write_text(Path(lab.inventory_path).read_text())
    (tmp_path / "host_vars").mkdir()

    def fake(host: str, text: str, sleep: bool = False, body: str | None = None) -> Path:
        # the launcher's handshake first (cached: nothing to upload), then the lie
        script = "#!/bin/sh\nprintf '\\nFLEETOPS-READY\\n'\ncat >/dev/null\n" + \
            ("sleep 600\n" if sleep else "") + \
            (body or f"printf '%s\\n' {shlex.quote(text)}\n")
        done = lab_ssh(host, f"printf '%s' {shlex.quote(script)} > /root/fakepy && "
                             "chmod 755 /root/fakepy")
        assert done.returncode == 0, done.stderr
        (tmp_path / "host_vars" / f"{host}.yml").write_text("fleetops_python: /root/fakepy\n")
        hosts.append(host)
        return inventory

    yield fake
    for host in hosts:
        lab_ssh(host, "rm -f /root/fakepy")


def result(data, ok=True, error=None) -> str:
    return json.dumps({"ok": ok, "changed": False, "data": data, "error": error})


MOUNT = {"mountpoint": "/x", "device": "/dev/x", "fstype": "ext4", "size_bytes": 100,
         "used_bytes": 95, "avail_bytes": 5, "use_pct": 95, "inodes_total": 10,
         "inodes_used": 1, "inodes_pct": 10, "level": "crit", "over": ["space_crit"],
         "error": None}


def test_disk_report_goes_on_when_hosts_lie_or_hang(fake_python, tmp_path):
    fake_python("lab07", result({"mounts": [dict(MOUNT, size_bytes="abc")]}))
    fake_python("lab08", result({"mounts": [dict(MOUNT, mountpoint="/x\udcff\n\x1b[2J")]}))
    inventory = fake_python("lab09", result({}), sleep=True)
    retry = tmp_path / "retry"
    args = ["disk-report", "-i", str(inventory), "-p", "lab06:lab07:lab08:lab09",
            "--command-timeout", "4", "--retry-file", str(retry)]
    proc = invoke(*args)
    assert proc.returncode == 2, proc.stderr
    assert_terminal_safe(proc.stdout)
    assert 'lab07  failed: bad result: result.data.mounts[0].size_bytes: expected an integer, ' \
           'got "abc"' in proc.stdout
    assert "lab09  failed: command timed out" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("CRIT", "WARN", "OK", "UNKNOWN"))]
    assert any("lab08" in r and "/x\\xff\\n\\x1b[2J" in r for r in rows)
    assert any("lab06" in r for r in rows)
    assert sorted(retry.read_text().splitlines()[1:]) == ["lab07", "lab09"]

    for fmt in ("html", "csv", "table"):
        out = tmp_path / f"report.{fmt}"
        proc = invoke(*args, "--format", fmt, "--output", str(out))
        assert proc.returncode == 2, proc.stderr
        text = out.read_text(encoding="utf-8")  # strict UTF-8: the non-UTF-8 byte is escaped
        assert "\\xff" in text and "\x1b" not in text

    proc = invoke(*args, "--format", "json")
    doc = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert doc["hosts"]["lab08"]["mounts"][0]["mountpoint"] == "/x\udcff\n\x1b[2J"
    assert doc["hosts"]["lab07"]["status"] == "failed"
    assert doc["hosts"]["lab06"]["mounts"]


def test_cron_and_watcher_fail_only_the_lying_hosts(fake_python, tmp_path):
    fake_python("lab07", json.dumps({"ok": "false", "changed": False, "data": {},
                                     "error": None}))
    inventory = fake_python("lab08", result("s"))
    retry = tmp_path / "retry"
    proc = invoke("cron.list", "-i", str(inventory), "-p", "lab06:lab07:lab08",
                  "--retry-file", str(retry))
    assert proc.returncode == 2, proc.stderr
    assert 'lab07 | FAILED | bad result: result.ok: expected a boolean, got "false"' in proc.stdout
    assert 'lab08 | FAILED | bad result: result.data: expected an object, got "s"' in proc.stdout
    assert "lab06 | OK |" in proc.stdout and "failed=2" in proc.stdout
    assert sorted(retry.read_text().splitlines()[1:]) == ["lab07", "lab08"]

    inventory = fake_python("lab07", result({"running": True, "pid": 5, "last_event": "boom"}))
    proc = invoke("watcher.status", "-i", str(inventory), "-p", "lab06:lab07", "--json",
                  "--retry-file", str(retry))
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert "result.data.last_event: expected an object" in doc["hosts"]["lab07"]["reason"]
    assert doc["hosts"]["lab06"]["status"] == "ok" and doc["hosts"]["lab06"]["running"] is False
    assert retry.read_text().splitlines()[1:] == ["lab07"]


def test_program_output_over_the_cap_is_a_clear_failure(fake_python, tmp_path):
    body = ("""printf '{"ok": true, "changed": false, "error": null, "data": {"mounts": ['\n"""
            """i=0; while [ $i -lt 3000 ]; do printf '{"mountpoint": "/m%d"}, ' $i; """
            """i=$((i+1)); done\nprintf '{"mountpoint": "/"}]}}\\n'\n""")
    inventory = fake_python("lab07", "", body=body)
    proc = invoke("disk-report", "-i", str(inventory), "-p", "lab06:lab07", "--max-output", "16K",
                  "--retry-file", str(tmp_path / "r"), "--format", "json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    bad = doc["hosts"]["lab07"]
    assert bad["status"] == "failed" and "program output is over --max-output" in bad["reason"]
    assert bad["truncated"] == ["stdout"]
    assert doc["hosts"]["lab06"]["status"] == "ok"


def test_schedule_output_has_no_trace_of_the_smtp_settings(lab_inventory):
    """Issue 11 point 10: no hash, size or prefix of the secret file in any output."""
    import hashlib
    import os

    from fleetops.jobs.disk.schedule import mail_config_text

    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT="2525",
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SMTP_PASSWORD="hunter2-secret")
    config = mail_config_text(None, env)
    digest = hashlib.sha256(config).hexdigest()
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "disk-report.schedule",
                           "-i", str(lab_inventory), "-p", "lab05", "--json", "--check",
                           "--retry-file", "", "--email", "ops@lab.test"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert digest[:8] not in text and "hunter2" not in text
    steps = json.loads(proc.stdout)["hosts"]["lab05"]["steps"]
    assert len(steps) == 3
    secret_step = steps[1]["data"]
    assert secret_step["path"] == "/etc/fleetops/disk-report-mail.conf"
    assert not {"sha256", "size", "diff"} & secret_step.keys()
    assert "sha256" in steps[0]["data"]  # the zipapp is no secret: its digest stays


def test_a_tiny_cap_never_hangs_the_upload_handshake(lab_inventory, tmp_path):
    """The zipapp's check-and-upload line is read even when --max-output is 1 byte."""
    proc = invoke("disk-report", "-i", str(lab_inventory), "-p", "lab10", "--max-output", "1",
                  "--command-timeout", "30", "--format", "json", "--retry-file", "",
                  timeout=60)
    host = json.loads(proc.stdout)["hosts"]["lab10"]
    assert host["status"] == "failed" and "over --max-output" in host["reason"]
    assert len(host["stdout"]) == 1
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab10", "--max-output", "3", "--json",
                  "--retry-file", "", "echo hello")
    host = json.loads(proc.stdout)["hosts"]["lab10"]
    assert host["stdout"] == "hel" and host["discarded_bytes"] == {"stdout": 3}
