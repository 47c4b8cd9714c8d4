"""Diffs where a program changes files, on the real lab (issue 12, point 6): ``play
--diff`` for a template/copy (unified diff, before/after headers) and a cron entry in
a real crontab (``crontab -l`` on the host agrees), a vault value masked in text and
JSON (and a removed line, which may hold an old secret), a large or binary file as
one line, and an ``ops/dirsync`` sync's itemized changes as a diff of the target.
Files go under /srv (each lab host's private tmpfs) and are removed afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[1]
VAULT = REPO / "tests" / "data" / "inventories" / "syn-vault"
SECRET = "s3cret-db-password"  # tests/data/inventories/syn-vault: v1's db_password
OLD = "old-password-nobody-remembers"
PLAY_CLI = ("import sys; from invoke import Collection, Program; from fleetops.cli.play import "
            "play; Program(namespace=Collection(play), binary='invoke')"
            ".run(['invoke', 'play', *sys.argv[1:]])")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
HOST = "lab05"


def _vault_block() -> str:
    """v1's ``db_password: !vault |`` block from the vault corpus."""
    lines = (VAULT / "hosts.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "db_password: !vault" in line)
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith(" " * 16):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)) + "\n"


def play(lab, tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    inv = tmp_path / "inv.ini"
    inv.write_text(lab.inventory_path.read_text())
    (tmp_path / "host_vars").mkdir(exist_ok=True)
    (tmp_path / "host_vars" / f"{HOST}.yml").write_text(_vault_block())
    book = tmp_path / "book.yml"
    book.write_text(textwrap.dedent(text).lstrip("\n"))
    return subprocess.run([sys.executable, "-c", PLAY_CLI, "-i", str(inv), str(book),
                           "--vault-password-file", str(VAULT / "vault-pass.txt"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)


def sh(lab, command: str) -> subprocess.CompletedProcess:
    return lab.ns_run(HOST, ["/bin/sh", "-c", command], capture_output=True, text=True,
                      env=ENV, timeout=30, check=False)


FILES = f"""
- hosts: {HOST}
  tasks:
    - name: app config
      copy: {{content: "user=app\\npassword={{{{ db_password }}}}\\n", dest: /srv/diff-app.conf}}
    - name: big file
      copy: {{content: "{{{{ 'x' * 600000 }}}}", dest: /srv/diff-big}}
    - name: binary file
      copy: {{src: "{{{{ playbook_dir }}}}/bin.dat", dest: /srv/diff-bin}}
"""


def test_play_diff_masks_vault_values_and_caps_large_and_binary(lab, tmp_path):
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    sh(lab, f"printf 'user=app\\npassword={OLD}\\n' > /srv/diff-app.conf; "
            "printf 'small\\n' > /srv/diff-big; printf 'old\\n' > /srv/diff-bin")
    try:
        proc = play(lab, tmp_path, FILES, "--check", "--diff")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        out = proc.stdout
        assert f"{HOST} |   --- before/srv/diff-app.conf\n{HOST} |   +++ after/srv/diff-app.conf\n" \
            in out
        assert f"{HOST} |   -********\n{HOST} |   +password=********\n" in out
        assert SECRET not in out and OLD not in out
        assert out.count("binary or large content differs") == 2
        assert "x" * 100 not in out

        proc = play(lab, tmp_path, FILES, "--diff", "--json")
        doc = json.loads(proc.stdout)
        tasks = doc["hosts"][HOST]["tasks"]
        assert [t["status"] for t in tasks] == ["changed"] * 3
        assert tasks[0]["diff"].endswith(" user=app\n-********\n+password=********\n")
        assert SECRET not in proc.stdout and OLD not in proc.stdout
        assert tasks[1]["diff"].startswith("binary or large content differs: 6 -> 600000 bytes")
        assert "diff" not in tasks[0]["data"]  # the diff lives in the task, once
        assert sh(lab, "cat /srv/diff-app.conf").stdout == f"user=app\npassword={SECRET}\n"

        again = json.loads(play(lab, tmp_path, FILES, "--diff", "--json").stdout)
        assert all("diff" not in t for t in again["hosts"][HOST]["tasks"])  # no change
    finally:
        sh(lab, "rm -f /srv/diff-app.conf /srv/diff-big /srv/diff-bin")


CRON = f"""
- hosts: {HOST}
  tasks:
    - name: nightly dump
      cron:
        name: pytest-diff
        schedule: "0 3 * * *"
        job: "pg_dump --password={{{{ db_password }}}} app"
        state: "{{{{ cron_state }}}}"
"""


def test_play_diff_of_a_real_crontab_masks_the_secret(lab, tmp_path):
    try:
        proc = play(lab, tmp_path, CRON, "--diff", "-e", "cron_state=present")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        assert f"{HOST} |   --- a/crontab." in proc.stdout
        assert "+++ b/crontab." in proc.stdout and SECRET not in proc.stdout
        added = [line for line in proc.stdout.splitlines() if "|   +" in line
                 and "pg_dump" in line]
        assert added and all("--password=********" in line for line in added), proc.stdout
        crontab = sh(lab, "crontab -l").stdout
        assert f"--password={SECRET} app" in crontab  # the host got the real value

        proc = play(lab, tmp_path, CRON, "--diff", "--json", "-e", "cron_state=absent")
        (task,) = json.loads(proc.stdout)["hosts"][HOST]["tasks"]
        assert task["status"] == "changed" and SECRET not in proc.stdout
        assert "\n-********\n" in task["diff"] and task["diff"].startswith("--- a/crontab.")
        assert "pytest-diff" not in sh(lab, "crontab -l").stdout
    finally:
        play(lab, tmp_path, CRON, "-e", "cron_state=absent")


def test_dirsync_run_reports_its_changes_as_a_diff(lab):
    from fleetops.cli import common
    from fleetops.ship.data import DirsyncData
    from fleetops.ship.run import fleet_program

    sh(lab, "rm -rf /srv/diff-src /srv/diff-dst; mkdir -p /srv/diff-src/sub /srv/diff-dst; "
            "echo new > /srv/diff-src/new; echo same > /srv/diff-src/same; "
            "echo x > /srv/diff-src/sub/x; echo old > /srv/diff-dst/gone; "
            "echo same > /srv/diff-dst/same; touch -r /srv/diff-src/same /srv/diff-dst/same; "
            "echo changed > /srv/diff-dst/sub 2>/dev/null; rm -f /srv/diff-dst/sub")
    hosts = common.targets(str(lab.inventory_path), HOST, None)
    argv = ["run", "--name=pytest-diff", "--", "--source=/srv/diff-src",
            "--target=/srv/diff-dst", "--max-delete-share=100"]
    try:
        run = fleet_program(hosts, "dirsync", argv, common.runner_options(forks=1))
        result = run.hosts[HOST]
        assert result.status == "changed", result.reason
        assert isinstance(result.data, DirsyncData) and result.data.result == "ok"
        assert result.data.diff_text() == ("--- before: /srv/diff-dst\n+++ after: /srv/diff-dst\n"
                                           "-gone\n+new\n+sub/\n+sub/x\n")
        entry = json.dumps(result.to_json())
        assert entry.startswith('{"data": {') and '"uploaded_bytes": ' in entry
        assert json.loads(entry)["data"] == json.loads(result.stdout)["data"]
        again = fleet_program(hosts, "dirsync", argv, common.runner_options(forks=1))
        assert again.hosts[HOST].status == "ok" and again.hosts[HOST].data.diff_text() is None
    finally:
        sh(lab, "rm -rf /srv/diff-src /srv/diff-dst")
