"""Secrets read from the environment never reach the local processes fleetops starts:
the commands of an ``ansible_connection=local`` host and a ProxyCommand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRETS = {"FLEETOPS_BECOME_PASSWORD": "becomeS3cret", "FLEETOPS_PASSWORD": "sshS3cret",
           "FLEETOPS_KEY_PASSPHRASE": "keyS3cret", "FLEETOPS_SMTP_PASSWORD": "smtpS3cret"}


def _run(inventory: Path, command: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **SECRETS, REVIEW_VISIBLE="kept")
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--retry-file", "", "--json", command],
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def test_local_host_command_does_not_see_secrets(tmp_path):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("me ansible_connection=local\n")
    proc = _run(inventory, "env")
    assert proc.returncode == 0, proc.stderr
    assert "REVIEW_VISIBLE=kept" in proc.stdout
    for value in SECRETS.values():
        assert value not in proc.stdout + proc.stderr


def test_proxycommand_does_not_see_secrets(tmp_path):
    seen = tmp_path / "proxy-env"
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"h ansible_host=127.0.0.1 ansible_port=9 "
                         f"fleetops_known_hosts={tmp_path}/kh "
                         f"fleetops_proxy_command='env >> {seen}'\n")  # >>: each retry appends
    proc = _run(inventory, "true")
    assert proc.returncode == 3, proc.stderr
    text = seen.read_text()
    assert "REVIEW_VISIBLE=kept" in text
    for value in SECRETS.values():
        assert value not in text
