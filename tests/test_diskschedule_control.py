"""`invoke disk-report.schedule --on control`: a real crontab entry on this machine.

The crontab belongs to a throwaway user (``fleetops-dc<pid>``, home under a temp dir)
and goes through the real ``crontab`` binary: root's own crontab is never touched. The
installed command is then run as cron would run it, against the lab.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ops import _crontab as ct

REPO = Path(__file__).resolve().parents[1]
USER = f"fleetops-dc{os.getpid()}"
SPOOL = Path("/var/spool/cron/crontabs")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crontab") or not SPOOL.is_dir(),
    reason="needs root and Debian's cron (crontab, /var/spool/cron/crontabs)")


def crontab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["crontab", "-u", USER, *args], capture_output=True, text=True,
                          check=False, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    home = tmp_path_factory.mktemp("dchome")
    try:
        pwd.getpwnam(USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", str(home),
                        "--shell", "/usr/sbin/nologin", USER], check=True)
        created = True
    crontab("-r")
    yield USER
    crontab("-r")
    if created:
        subprocess.run(["userdel", USER], check=False)


def invoke(*args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO,
                          check=False)


def schedule(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    return invoke("disk-report.schedule", "--on", "control", "--user", USER, "-i",
                  str(inventory), *args)


def test_install_check_idempotence_and_removal(user, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1 ansible_host=127.0.0.1\n")
    before = crontab("-l").stdout
    proc = schedule(inventory, "--check")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("control | CHANGED | created crontab:" + USER + " (check)")
    assert "+#Ansible: fleetops-disk-report" in proc.stdout
    assert crontab("-l").stdout == before  # --check changed nothing
    proc = schedule(inventory, "--when", "30 6 * * *", "--history", str(tmp_path / "h.sqlite"),
                    "--json")
    doc = json.loads(proc.stdout)["control"]
    assert (doc["status"], doc["action"]) == ("changed", "created")
    lines = ct.split_lines(crontab("-l").stdout)
    entries = [e for e in ct.entries(lines) if e.name == "fleetops-disk-report"]
    assert len(entries) == 1 and entries[0].style == "ansible"
    job = lines[entries[0].job]
    assert job.startswith("30 6 * * * /usr/bin/env SHELL=/bin/sh PATH=")
    assert "flock -n /run/lock/fleetops-fleetops-disk-report@" + USER in job
    proc = schedule(inventory, "--when", "30 6 * * *", "--history", str(tmp_path / "h.sqlite"))
    assert proc.stdout.startswith("control | OK | none"), proc.stdout
    proc = schedule(inventory, "--when", "@daily", "--history", str(tmp_path / "h.sqlite"),
                    "--diff")
    assert proc.stdout.startswith("control | CHANGED | updated")
    assert "-30 6 * * *" in proc.stdout and "+@daily" in proc.stdout
    # an entry Ansible wrote by hand elsewhere in the file stays in place with its marker
    text = crontab("-l").stdout
    crontab_input = "MAILTO=ops\n" + text + "# a comment\n"
    subprocess.run(["crontab", "-u", USER, "-"], input=crontab_input, text=True, check=True)
    proc = invoke("disk-report.unschedule", "--on", "control", "--user", USER)
    assert proc.stdout.startswith("control | CHANGED | removed"), proc.stdout + proc.stderr
    assert crontab("-l").stdout.splitlines()[-2:] == ["MAILTO=ops", "# a comment"]
    proc = invoke("disk-report.unschedule", "--on", "control", "--user", USER)
    assert proc.stdout.startswith("control | OK | none")


@pytest.mark.parametrize(("args", "message"), [
    (["--on", "moon"], "--on must be hosts or control"),
    (["--on", "control", "--email", "ops@example.com"], "needs --mail-config"),
    (["--on", "control", "--when", "61 * * * *"], "minute"),
])
def test_bad_options(user, tmp_path, args, message):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("web1\n")
    proc = invoke("disk-report.schedule", "--user", USER, "-i", str(inventory), *args)
    assert proc.returncode == 5 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.lab
def test_the_installed_job_runs_the_fleet_report(user, lab_inventory, tmp_path):
    history = tmp_path / "h.sqlite"
    proc = schedule(lab_inventory, "-p", "lab01:lab02", "--history", str(history))
    assert proc.returncode == 0, proc.stderr
    lines = ct.split_lines(crontab("-l").stdout)
    entry = next(e for e in ct.entries(lines) if e.name == "fleetops-disk-report")
    command = ct.unescape_command(lines[entry.job].split(" ", 1)[1])
    for _ in range(2):  # as cron runs it (as root here: the lab's keys are root's)
        run = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": "/root"})
        assert run.returncode in (0, 8), run.stderr
    state = Path(pwd.getpwnam(USER).pw_dir) / ".local/share/fleetops"
    html = (state / "disk-report-latest.html").read_text()
    assert "lab01" in html and "lab02" in html and "History: " + str(history) in html
    assert "(2 run(s))" in html
    crontab("-r")


def test_relative_history_and_limit_file_are_made_absolute(tmp_path, monkeypatch):
    from fleetops.jobs.disk.schedule_control import report_command

    monkeypatch.chdir(tmp_path)
    command = report_command("inv.ini", "all", "web,@retry.txt", [], [], None, "h.sqlite",
                             tmp_path / "state")
    assert f"--history {tmp_path}/h.sqlite " in command  # cron runs in $HOME, not here
    assert f"--limit web,@{tmp_path}/retry.txt " in command
