"""``--accept-new`` with a known_hosts that is a symlink (dotfile managers link
``~/.ssh/known_hosts``) records the key in the file it points to, as ssh does; a file
that cannot be written is a host-key reason, never a raw ``OSError`` in the host line.

Before: every host failed with ``OSError: [Errno 40] Too many levels of symbolic links``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def _run(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--retry-file", "", *args, "true"],
                          capture_output=True, text=True, timeout=60, check=False)


def test_accept_new_follows_a_symlinked_known_hosts_like_ssh(lab, tmp_path):
    host = lab.host("lab02")
    real, link = tmp_path / "real_known_hosts", tmp_path / "known_hosts"
    real.write_text("")
    link.symlink_to(real)
    oracle_real, oracle_link = tmp_path / "ssh_real", tmp_path / "ssh_link"
    oracle_real.write_text("")
    oracle_link.symlink_to(oracle_real)
    ssh = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "HashKnownHosts=no",
         "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={oracle_link}",
         "-i", str(lab.client_key), "-p", str(host.port), f"root@{host.address}", "true"],
        capture_output=True, text=True, timeout=30, check=False)
    assert ssh.returncode == 0 and oracle_link.is_symlink(), ssh.stderr
    assert oracle_real.read_text().count("\n") >= 1

    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"h ansible_host={host.address} ansible_port={host.port} "
                         f"ansible_user=root ansible_ssh_private_key_file={lab.client_key} "
                         f"fleetops_known_hosts={link}\n")
    proc = _run(inventory, "--accept-new")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert link.is_symlink() and real.read_text().count("\n") == 1
    assert _run(inventory).returncode == 0  # the recorded key is found through the link

    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "no" / "such" / "dir")
    inventory.write_text(inventory.read_text().replace(str(link), str(dangling)))
    proc = _run(inventory, "--accept-new")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert f"not recorded in {dangling}" in proc.stdout and "OSError" not in proc.stdout
