"""The mixed lab against plain OpenSSH: every kind reachable as docs/lab.md says, and
each kind really is what it claims (bastion-only hosts, sudo, certificates, passwords)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from fleetops.lab.mixed import GROUPS, KINDS, NOISY_LINES

pytestmark = pytest.mark.lab


def ssh(facts, host: str, command: str, *options: str, stdin: str | None = None,
        env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = ["ssh", "-F", facts.ssh_config, *options, host, command]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=None if stdin is not None else subprocess.DEVNULL,
                          check=False)


@pytest.fixture(scope="module")
def facts(mixed_lab):
    return mixed_lab.mixed()


def test_every_kind_answers_plain_ssh_by_name(mixed_lab, facts):
    print(f"\nmixed lab up in {mixed_lab.up_seconds:.2f}s")
    askpass = facts.askpass_env(dict(os.environ))
    for name, host in facts.hosts.items():
        env = askpass if host["group"] == "password_only" else None
        proc = ssh(facts, name, 'echo "$(id -un)@$(hostname)"', env=env)
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.splitlines()[-1] == f"{host['user']}@{name}", proc.stdout
    assert {h["group"] for h in facts.hosts.values()} == {"lab", *GROUPS}
    assert mixed_lab.healthy()


def test_hidden_hosts_only_through_the_bastion(facts):
    hidden = facts.group("behind_bastion")
    assert hidden == ["hidden01", "hidden02"]
    for name in hidden:
        h = facts.hosts[name]
        assert h["proxy_jump"] == facts.bastion
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((h["address"], h["port"]), timeout=3).close()
        direct = ssh(facts, name, "true", "-o", "ProxyJump=none")
        assert direct.returncode == 255 and "Connection refused" in direct.stderr
        jumped = ssh(facts, name, "hostname", "-o", f"ProxyJump={facts.jump_spec()}")
        assert jumped.stdout.strip() == name, jumped.stderr
    by_name = ssh(facts, facts.bastion, "getent hosts hidden02").stdout.split()
    assert by_name == [facts.hosts["hidden02"]["address"], "hidden02"]
    root_at_bastion = ssh(facts, facts.bastion, "true", "-l", "root")
    assert root_at_bastion.returncode == 255  # PermitRootLogin no


def test_sudo_password_nopasswd_and_requiretty(facts):
    asked = ssh(facts, "sudopw", "sudo -n true")
    assert asked.returncode == 1 and "password is required" in asked.stderr
    good = ssh(facts, "sudopw", "sudo -S -p PROMPT: id -u", stdin=facts.sudo_password + "\n")
    assert (good.returncode, good.stdout.strip()) == (0, "0"), good.stderr
    assert "PROMPT:" in good.stderr and "unable to resolve" not in good.stderr
    bad = ssh(facts, "sudopw", "sudo -S id -u", stdin="wrong\n")
    assert bad.returncode == 1 and "incorrect password" in bad.stderr
    nopw = ssh(facts, "nopasswd", "sudo -n id -u")
    assert (nopw.returncode, nopw.stdout.strip(), nopw.stderr) == (0, "0", "")
    notty = ssh(facts, "requiretty", "sudo -n id -u")
    assert notty.returncode == 1 and "must have a tty" in notty.stderr
    tty = ssh(facts, "requiretty", "sudo -n id -u", "-tt")
    assert tty.returncode == 0 and tty.stdout.strip() == "0", tty.stderr


def test_usercert_host_takes_certificates_only(facts):
    cert = Path(facts.cert)
    assert cert.name == Path(facts.cert_key).name + "-cert.pub"
    shown = subprocess.run(["ssh-keygen", "-L", "-f", str(cert)], capture_output=True,
                           text=True, check=True).stdout
    assert "user certificate" in shown and "root" in shown
    plain = ssh(facts, "usercert", "true", "-o", f"IdentityFile={facts.client_key}",
                "-o", "CertificateFile=none", "-o", "IdentitiesOnly=yes", "-F", "/dev/null")
    assert plain.returncode == 255
    h = facts.hosts["usercert"]
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={facts.known_hosts}", "-i", facts.client_key,
            "-p", str(h["port"]), f"root@{h['address']}", "true"]
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 255
    argv[argv.index("-i") + 1] = facts.cert_key
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_hostcert_is_trusted_through_the_ca_only(facts, tmp_path):
    h = facts.hosts["hostcert"]
    known = Path(facts.known_hosts).read_text()
    assert f"@cert-authority [{h['address']}]:{h['port']} ssh-ed25519 " in known
    assert sum(f"[{h['address']}]:" in line for line in known.splitlines()) == 1
    assert ssh(facts, "hostcert", "true").returncode == 0
    keys_only = tmp_path / "known_hosts"
    keys_only.write_text("".join(line for line in known.splitlines(keepends=True)
                                 if not line.startswith("@cert-authority")))
    without_ca = ssh(facts, "hostcert", "true", "-o", f"UserKnownHostsFile={keys_only}")
    assert without_ca.returncode == 255
    assert "verification failed" in without_ca.stderr


def test_password_only_host(facts):
    keyed = ssh(facts, "pwonly", "true", "-o", "PubkeyAuthentication=yes", "-o",
                "BatchMode=yes", "-o", "PreferredAuthentications=publickey")
    assert keyed.returncode == 255 and "Permission denied" in keyed.stderr
    env = facts.askpass_env(dict(os.environ))
    assert ssh(facts, "pwonly", "true", env=env).returncode == 0
    wrong = dict(env, SSH_ASKPASS="/bin/false")
    assert ssh(facts, "pwonly", "true", env=wrong).returncode == 255


def test_noisy_rc_python_less_and_maxstartups(facts):
    out = ssh(facts, "noisyrc", "echo payload").stdout.splitlines()
    assert out[-1] == "payload" and len(out) >= 3
    assert set(out[:-1]) <= set(NOISY_LINES.values())
    assert "/bin/bash" in ssh(facts, "noisyrc", "getent passwd root").stdout
    gone = ssh(facts, "nopython", "command -v python3 python3.11; echo rc=$?")
    assert gone.stdout.strip().endswith("rc=1"), gone.stdout
    assert ssh(facts, "lab01", "python3 -c 'print(3)'").stdout.strip() == "3"
    h = facts.hosts["maxstartups"]
    held = [socket.create_connection((h["address"], h["port"]), timeout=5) for _ in range(2)]
    try:
        for sock in held:
            assert sock.recv(64).startswith(b"SSH-")
        time.sleep(0.2)
        with socket.create_connection((h["address"], h["port"]), timeout=5) as third:
            try:  # dropped: MaxStartups 2:100:2 (OpenSSH >= 8.x says so first)
                assert third.recv(64) in (b"", b"Exceeded MaxStartups\r\n")
            except ConnectionResetError:
                pass
    finally:
        for sock in held:
            sock.close()


def test_inventory_groups_and_vars(mixed_lab, facts):
    text = mixed_lab.inventory_path.read_text()
    assert stat.S_IMODE(mixed_lab.inventory_path.stat().st_mode) == 0o600
    sections: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif line and not line.startswith("#"):
            current.append(line)
    assert sections["mixed:children"] == list(GROUPS)
    for kind in KINDS:
        lines = [x for x in sections[kind.group]
                 if x.split()[0] == kind.name or kind.name == "hidden"]
        assert lines and all(f"ansible_user={kind.user}" in x for x in lines)
    assert f"ansible_become_password={facts.sudo_password}" in sections["sudo_password"][0]
    assert f"ansible_password={facts.login_password}" in sections["password_only"][0]
    assert f"ansible_ssh_private_key_file={facts.cert_key}" in sections["usercert"][0]
    assert sections["behind_bastion:vars"] == [
        f"ansible_ssh_common_args='-F {facts.ssh_config} -o ProxyJump={facts.jump_spec()}'"]
    assert all("ansible_become=yes" in sections[g][0]
               for g in ("sudo_password", "sudo_nopasswd", "requiretty"))
    for path in (facts.client_key, facts.cert_key, facts.user_ca, facts.host_ca):
        assert stat.S_IMODE(Path(path).stat().st_mode) == 0o600


def test_mixed_down_removes_namespace_and_veth(lab_slot):
    from fleetops.lab.lab import Lab
    from fleetops.lab.mixed import netns_name

    small = Lab(*lab_slot.paths("-mixed-down"))
    small.down()
    small.up(1, profile="mixed", hidden=3)
    ns = netns_name(small.prefix)
    assert Path("/run/netns", ns).exists()
    facts = small.mixed()
    assert facts.group("behind_bastion") == ["hidden01", "hidden02", "hidden03"]
    assert ssh(facts, "hidden03", "hostname").stdout.strip() == "hidden03"
    result = small.down()
    assert f"netns {ns}" in result["removed"]
    assert not Path("/run/netns", ns).exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"fol{small.prefix.split('.')[1]}j0" not in links
