"""`invoke disk-report` on the lab: real figures, shipping, failures, formats, email."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MOUNT_KEYS = {"mountpoint", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes",
              "use_pct", "inodes_total", "inodes_used", "inodes_pct", "level"}

pytestmark = pytest.mark.lab


def disk_report(inventory: Path, *args: str, env: dict | None = None,
                timeout: float = 90) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), "disk-report", "-i", str(inventory),
            "--retry-file", "", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env, check=False)


def report_json(inventory: Path, *args: str) -> tuple[int, dict]:
    proc = disk_report(inventory, "--format", "json", *args)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def data_mount(doc: dict, host: str) -> dict:
    return next(m for m in doc["hosts"][host]["mounts"] if m["mountpoint"] == "/srv/data")


def df_p(lab, host: str, path: str, inodes: bool = False) -> list[str]:
    argv = ["df", "-P", "-i" if inodes else "-B1", path]
    out = lab.ns_run(host, argv, capture_output=True, text=True, check=True).stdout
    return out.splitlines()[1].split()


def test_figures_agree_with_df_on_each_host(lab, lab_inventory):
    rc, doc = report_json(lab_inventory, "-p", "lab[0:5]", "--warn", "99", "--crit", "100")
    assert rc == 0, doc
    for host in ("lab01", "lab03", "lab06"):
        mount = data_mount(doc, host)
        assert set(mount) >= MOUNT_KEYS
        _, size, used, avail, pct, _ = df_p(lab, host, "/srv/data")
        assert (mount["size_bytes"], mount["used_bytes"], mount["avail_bytes"]) == (
            int(size), int(used), int(avail))
        assert f"{mount['use_pct']}%" == pct
        _, inodes, iused, _, ipct, _ = df_p(lab, host, "/srv/data", inodes=True)
        assert (mount["inodes_total"], mount["inodes_used"]) == (int(inodes), int(iused))
        assert f"{mount['inodes_pct']}%" == ipct


def test_each_host_reports_its_own_data_mount(lab_inventory):
    rc, doc = report_json(lab_inventory, "--include", "/srv/data", "--warn", "99",
                          "--crit", "100")
    assert rc == 0
    fills = {name: data_mount(doc, name)["use_pct"] for name in doc["hosts"]}
    assert len(fills) == 16
    assert len(set(fills.values())) >= 10, fills
    for host in doc["hosts"].values():
        assert [m["mountpoint"] for m in host["mounts"]] == ["/srv/data"]


def test_levels_and_crit_exit_code(lab_inventory):
    rc, doc = report_json(lab_inventory, "--include", "/srv/data", "--warn", "40",
                          "--crit", "60")
    assert rc == 8
    levels = {}
    for name in doc["hosts"]:
        mount = data_mount(doc, name)
        levels[name] = mount["level"]
        expected = ("crit" if max(mount["use_pct"], mount["inodes_pct"]) >= 60 else
                    "warn" if max(mount["use_pct"], mount["inodes_pct"]) >= 40 else "ok")
        assert mount["level"] == expected, (name, mount)
    assert {"ok", "warn", "crit"} <= set(levels.values())
    assert doc["report"]["worst_level"] == "crit"


def test_zipapp_uploaded_once_then_reused(lab, lab_inventory):
    from fleetops.ship.zipapp import build_zipapp

    size = build_zipapp().size
    for host in ("lab07", "lab08"):
        lab.ns_run(host, ["rm", "-rf", "/root/.cache/fleetops"], check=True)
    _, first = report_json(lab_inventory, "-p", "lab07:lab08")
    _, second = report_json(lab_inventory, "-p", "lab07:lab08")
    for host in ("lab07", "lab08"):
        assert first["hosts"][host]["uploaded_bytes"] == size
        assert second["hosts"][host]["uploaded_bytes"] == 0
        assert second["hosts"][host]["status"] == "ok"
    mode = lab.ns_run("lab07", ["stat", "-c", "%a", "/root/.cache/fleetops"],
                      capture_output=True, text=True, check=True).stdout.strip()
    assert mode == "700"
    leftovers = lab.ns_run("lab07", ["sh", "-c", "ls -A /root/.cache/fleetops"],
                           capture_output=True, text=True, check=True).stdout.split()
    name = build_zipapp().name
    assert sorted(leftovers) == [name, name + ".ok"]  # no temp file; the hash check's stamp


def test_host_without_python_falls_back_to_df(lab, lab_inventory, tmp_path):
    lab.fault("lab09", "nopython")
    rc, doc = report_json(lab_inventory, "-p", "lab09:lab10", "--crit", "100", "--history",
                          str(tmp_path / "h.sqlite"))
    assert rc == 0, doc
    fallback, program = doc["hosts"]["lab09"], doc["hosts"]["lab10"]
    assert fallback["status"] == "ok" and fallback["source"] == "df"
    assert program["source"] == "program"
    # the same mounts and the same figures as df itself, with the same exclusions
    assert [m["mountpoint"] for m in fallback["mounts"]] == \
        [m["mountpoint"] for m in program["mounts"]]
    _, size, used, avail, pct, _ = df_p(lab, "lab09", "/srv/data")
    mount = data_mount(doc, "lab09")
    assert (mount["size_bytes"], mount["used_bytes"], mount["avail_bytes"]) == (
        int(size), int(used), int(avail))  # 4 KiB-block filesystem: whole KiB, exact
    assert f"{mount['use_pct']}%" == pct


def test_broken_zipapp_cache_is_replaced_in_the_same_run(lab, lab_inventory):
    from fleetops.ship.zipapp import build_zipapp

    report_json(lab_inventory, "-p", "lab12")
    cached = f"/root/.cache/fleetops/{build_zipapp().name}"
    lab.ns_run("lab12", ["sh", "-c", f"printf 'garbage' > {cached}"], check=True)
    try:  # its SHA-256 is checked before it runs: removed, uploaded again, run
        rc, doc = report_json(lab_inventory, "-p", "lab12:lab13")
        assert rc == 0 and doc["hosts"]["lab13"]["status"] == "ok"
        assert doc["hosts"]["lab12"]["status"] == "ok"
        assert doc["hosts"]["lab12"]["uploaded_bytes"] == build_zipapp().size
        assert "failed its check: removed it" in doc["hosts"]["lab12"]["stderr"]
    finally:
        lab.ns_run("lab12", ["rm", "-rf", "/root/.cache/fleetops"])


def test_unreachable_hosts_are_listed_not_dropped(lab, lab_inventory, tmp_path):
    lab.fault("lab14", "stop")
    out = tmp_path / "r.csv"
    proc = disk_report(lab_inventory, "-p", "lab14:lab15", "--format", "csv", "--output", str(out))
    assert proc.returncode == 3, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    by_host = {r["host"]: r for r in rows}
    assert by_host["lab14"]["host_status"] == "unreachable"
    assert "refused" in by_host["lab14"]["host_reason"].lower()
    assert any(r["host"] == "lab15" and r["mountpoint"] == "/srv/data" for r in rows)


def test_html_report_file(lab_inventory, tmp_path):
    out = tmp_path / "report.html"
    proc = disk_report(lab_inventory, "-p", "lab[0:3]", "--format", "html", "--output", str(out))
    assert proc.returncode in (0, 8), proc.stderr
    html = out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    for host in ("lab01", "lab02", "lab03", "lab04"):
        assert host in html
    assert "/srv/data" in html and not re.search(r"(src|href)=\"https?://", html)


def test_table_is_default(lab_inventory):
    proc = disk_report(lab_inventory, "-p", "lab01", "--include", "/srv/data")
    assert proc.returncode in (0, 8)
    assert re.search(r"lab01\s+/srv/data\s+tmpfs", proc.stdout), proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format must be one of"),
        (["--warn", "95", "--crit", "90"], "--warn (95) must not be above --crit (90)"),
        (["--crit", "lots"], "--crit must be a percentage"),
        (["--output", "/nonexistent-dir/r.html"], "does not exist"),
        (["--fill-warn-days", "soon"], "--fill-warn-days must be a number of days"),
        (["--growth-window", "0"], "--growth-window must be between 0 and 3650"),
    ],
)
def test_bad_options_are_one_line_errors(lab_inventory, args, message):
    proc = disk_report(lab_inventory, *args)
    assert proc.returncode == 5
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_email_sent_once_from_control(lab_inventory, smtp_server):
    import os

    received, port = smtp_server
    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT=str(port),
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SMTP_FROM="fleetops@lab.test")
    proc = disk_report(lab_inventory, "-p", "lab[0:2]", "--include", "/srv/data",
                       "--warn", "99", "--crit", "100", "--email", "ops@lab.test", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(received) == 1
    msg = received[0]
    assert msg["To"] == "ops@lab.test" and msg["Message-ID"] and msg["Date"]
    types = {part.get_content_type() for part in msg.walk()}
    assert {"text/plain", "text/html"} <= types
    body = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(
        decode=True).decode()
    for host in ("lab01", "lab02", "lab03"):
        assert host in body


def test_mail_failure_keeps_the_report_on_disk(lab_inventory, tmp_path):
    import os
    import socket

    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, FLEETOPS_SMTP_HOST="127.0.0.1", FLEETOPS_SMTP_PORT=str(port),
               FLEETOPS_SMTP_SECURITY="none", FLEETOPS_SPOOL_DIR=str(tmp_path / "spool"))
    proc = disk_report(lab_inventory, "-p", "lab01", "--include", "/srv/data", "--warn", "99",
                       "--crit", "100", "--email", "ops@lab.test", env=env)
    assert proc.returncode == 6, proc.stderr
    assert "mail to ops@lab.test failed" in proc.stderr
    saved = list((tmp_path / "spool").glob("disk-report-*.txt"))
    assert len(saved) == 1 and "lab01" in saved[0].read_text()
    assert oct(saved[0].stat().st_mode & 0o777) == "0o600"
