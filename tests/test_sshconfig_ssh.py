"""Token expansion checked against ``ssh`` itself (not only ``ssh -G``, which prints
IdentityFile, CertificateFile and ProxyCommand unexpanded).

``ssh -v`` names every identity and certificate file it loads, with tokens expanded,
and runs the ProxyCommand, which here writes its expanded arguments to a file and exits
(so ssh stops at the banner: nothing leaves the machine). fleetops must produce the
same paths and the same ProxyCommand arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_sshconfig import HOME

from fleetops.config.targets import target_for
from fleetops.inventory.load import load_inventory

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs OpenSSH ssh")

CONFIG = """\
Host tok-a Tok.Example.COM
    HostName %h.inner
    User Deploy.User
    Port 2222
    HostKeyAlias Alias-%h
Host 10.1.2.3
    User ip
Host *
    IdentityFile ~/.ssh/id-%h-%r-%p-%n
    IdentityFile %d/.ssh/%u@%l-%L-%i-%k
    IdentityFile ${HOME}/.ssh/c-%C
    CertificateFile ~/.ssh/cert-%h-%r
    ProxyCommand sh -c 'printf "%%s\\n" "$@" > "$0"' OUT/%n.args %h %p %r %n %k %%
"""


def ssh_loads(config: Path, host: str) -> tuple[list[str], list[str]]:
    """Identity and certificate files ``ssh -v`` loads for ``host`` (ssh's own -cert
    guesses left out)."""
    proc = subprocess.run(
        ["ssh", "-v", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
         host, "true"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": HOME}, timeout=30)
    ids = re.findall(r"identity file (.+) type -?\d+", proc.stderr)
    certs = re.findall(r"certificate file (.+) type -?\d+", proc.stderr)
    return [i for i in ids if not i.endswith("-cert")], certs


@pytest.mark.parametrize("host", ["tok-a", "Tok.Example.COM", "10.1.2.3", "plain"])
def test_tokens_expand_as_ssh_expands_them(tmp_path, host):
    out = tmp_path / "out"
    out.mkdir()
    config = tmp_path / "ssh_config"
    config.write_text(CONFIG.replace("OUT/", f"{out}/"))
    ssh_ids, ssh_certs = ssh_loads(config, host)
    ssh_args = (out / f"{host}.args").read_text().splitlines()
    (out / f"{host}.args").unlink()

    inv_path = tmp_path / "hosts.ini"
    inv_path.write_text(f"h ansible_host={host} ansible_ssh_common_args='-F {config}'\n")
    target = target_for(load_inventory(inv_path).host("h"))
    subprocess.run(["/bin/sh", "-c", "exec " + target.proxy_command], timeout=10, check=True)
    ours = (out / f"{host}.args").read_text().splitlines()

    assert ssh_ids and ssh_certs and len(ssh_args) == 6
    assert list(target.key_files) == ssh_ids
    assert list(target.certificate_files) == ssh_certs
    assert ours == ssh_args
    assert ours[0] == target.address and ours[1] == str(target.port)
