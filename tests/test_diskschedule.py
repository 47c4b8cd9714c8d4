"""`invoke disk-report.schedule|unschedule` on lab hosts: files, modes, cron entry, a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CRON_FILE = "/etc/cron.d/fleetops-disk-report"
ZIPAPP = "/usr/local/lib/fleetops/fleetops.pyz"
MAIL_CONF = "/etc/fleetops/disk-report-mail.conf"
SECRET = "s3cret-never-printed"

pytestmark = pytest.mark.lab


def task(inventory: Path, name: str, *args: str, env: dict | None = None):
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), name, "-i", str(inventory),
            "-p", "lab03:lab04", "--json", "--retry-file", "", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
                          check=False)
    assert SECRET not in proc.stdout + proc.stderr
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else proc.stderr


def statuses(doc: dict) -> set[str]:
    return {h["status"] for h in doc["hosts"].values()}


def exists(lab, host: str, path: str) -> bool:
    return lab.ns_run(host, ["test", "-e", path]).returncode == 0


def test_schedule_then_unschedule(lab, lab_inventory, smtp_server):
    inbox, port = smtp_server
    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT=str(port),
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SMTP_PASSWORD=SECRET)
    args = ("--when", "*/10 * * * *", "--email", "ops@lab.test", "--warn", "60", "--crit", "95")
    try:
        rc, doc = task(lab_inventory, "disk-report.schedule", *args, "--check", env=env)
        assert rc == 0 and statuses(doc) == {"changed"}
        assert not exists(lab, "lab03", CRON_FILE) and not exists(lab, "lab03", ZIPAPP)

        rc, doc = task(lab_inventory, "disk-report.schedule", *args, env=env)
        assert rc == 0 and statuses(doc) == {"changed"}, doc
        rc, doc = task(lab_inventory, "disk-report.schedule", *args, env=env)
        assert rc == 0 and statuses(doc) == {"ok"}, doc

        modes = lab.ns_run("lab03", ["stat", "-c", "%a %U %n", ZIPAPP, MAIL_CONF, CRON_FILE],
                           capture_output=True, text=True, check=True).stdout.split("\n")
        assert modes[:3] == [f"644 root {ZIPAPP}", f"600 root {MAIL_CONF}",
                             f"644 root {CRON_FILE}"]
        cron = lab.ns_run("lab03", ["cat", CRON_FILE], capture_output=True, text=True).stdout
        line = next(x for x in cron.splitlines() if x.startswith("*/10 * * * * root "))
        assert SECRET not in cron and "--mail-config /etc/fleetops/disk-report-mail.conf" in line
        assert not os.path.exists(ZIPAPP), "the lab host wrote to the real machine"

        # what cron would run, run now inside the host: it mails its own report
        job = line.split(" root ", 1)[1]
        run = lab.ns_run("lab03", ["sh", "-c", job], capture_output=True, text=True, timeout=60)
        assert run.returncode in (0, 3), run.stderr
        assert len(inbox) == 1 and inbox[0]["To"] == "ops@lab.test"
        body = next(p for p in inbox[0].walk() if p.get_content_type() == "text/plain")
        assert "/srv/data" in body.get_payload(decode=True).decode()
    finally:
        rc, doc = task(lab_inventory, "disk-report.unschedule")
    assert rc == 0 and statuses(doc) == {"changed"}, doc
    for path in (CRON_FILE, ZIPAPP, MAIL_CONF):
        assert not exists(lab, "lab04", path)
    rc, doc = task(lab_inventory, "disk-report.unschedule")
    assert rc == 0 and statuses(doc) == {"ok"}


def test_schedule_rejects_bad_input_before_contacting_hosts(lab_inventory):
    rc, err = task(lab_inventory, "disk-report.schedule", "--when", "61 * * * *")
    assert rc == 5 and ("minute" in err.lower() or "61" in err)
    rc, err = task(lab_inventory, "disk-report.schedule", "--email", "x@y",
                   env={k: v for k, v in os.environ.items() if not k.startswith("FLEETOPS_SMTP")})
    assert rc == 5 and "SMTP host" in err
