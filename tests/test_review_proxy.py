"""ProxyCommand runs as OpenSSH runs it: ``$SHELL -c "exec COMMAND"`` (sshconnect.c).

Paramiko's ProxyCommand splits the line with shlex and runs the first word itself, so
``ProxyCommand ssh -i "$KEY" -W %h:%p bastion 2>>LOG`` handed ssh a literal ``$KEY``
and ``2>>LOG`` as arguments, and ``~/bin/proxy %h %p`` was not found.
The oracle is ssh itself with the same ProxyCommand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def test_proxycommand_with_shell_syntax_works_like_ssh(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("REVIEW_PROXY_KEY", str(lab.client_key))
    host = lab.host("lab01")
    log = tmp_path / "proxy.log"
    proxy = (f"ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
             f"-o UserKnownHostsFile={lab.known_hosts} -i \"$REVIEW_PROXY_KEY\" -p %p "
             f"-W %h:%p root@%h 2>>{log}")
    oracle = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"ProxyCommand={proxy}",
         "-o", f"UserKnownHostsFile={lab.known_hosts}", "-i", str(lab.client_key),
         "-p", str(host.port), f"root@{host.address}", "echo via-proxy"],
        capture_output=True, text=True, timeout=30, check=False)
    assert oracle.stdout == "via-proxy\n", oracle.stderr
    inventory = tmp_path / "inv.ini"
    inventory.write_text(
        f"h ansible_host={host.address} ansible_port={host.port} ansible_user=root "
        f"ansible_ssh_private_key_file={lab.client_key} "
        f"fleetops_known_hosts={lab.known_hosts} fleetops_proxy_command='{proxy}'\n")
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--retry-file", "", "echo via-proxy"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "h | via-proxy" in proc.stdout
