"""Authentication as ssh(1) does it, against a real sshd (see tests/authlab.py).

OpenSSH is the reference: the order of identities is compared with ``ssh -v``'s
"Will attempt key" lines, and logins that fleetops makes are made with ``ssh`` too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from authlab import PASSWORDS, Agent, AuthSshd, fingerprint, keygen, run_on_tty, sign

from fleetops.core.auth import Keys, plan
from fleetops.core.keyfiles import Agent as AgentConnection
from fleetops.core.runner import Fleet, RunOptions, exec_result

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sshd(lab, tmp_path_factory):
    server = AuthSshd(lab, "lab16", tmp_path_factory.mktemp("authsshd"))
    yield server
    server.stop()


@pytest.fixture
def agent(tmp_path):
    the_agent = Agent(tmp_path)
    yield the_agent
    the_agent.stop()


def run(targets, command="id -un", password=None, **options):
    """Run ``command`` on Targets; no terminal to ask on (as in CI)."""
    by_name = {t.name: t for t in targets}
    hosts = [SimpleNamespace(name=t.name) for t in targets]
    with Fleet(RunOptions(password=password, command_timeout=20, **options),
               lambda host: by_name[host.name]) as fleet:
        fleet.keys = Keys(password=password, ask=False)
        return fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command)))


def one(targets, **kw):
    result = run(targets, **kw)
    assert len(result.hosts) == 1
    return next(iter(result.hosts.values()))


def ssh_attempts(sshd, user, *opts) -> list[tuple[str, bool]]:
    """(fingerprint, is certificate) of each key ``ssh -v`` says it will attempt."""
    proc = subprocess.run(sshd.ssh_argv(user, "-v", *opts) + ["true"], capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)
    found = re.findall(r"Will attempt key: .*? (\S+) (SHA256:\S+)", proc.stderr)
    return [(fp, kind.endswith("-CERT")) for kind, fp in found]


def fleetops_attempts(target, sock) -> list[tuple[str, bool]]:
    agent = AgentConnection(sock) if sock else None
    try:
        idents = plan(target, Keys(ask=False), agent)
    finally:
        if agent is not None:
            agent.close()
    return [(fingerprint(i.plain()), i.cert is not None) for i in idents]


@pytest.fixture
def keyset(tmp_path, sshd, agent):
    """ka, kb, kc plain; kenc encrypted; kc has a certificate beside it; the agent holds
    kb then kc."""
    keys = {n: keygen(tmp_path / n) for n in ("ka", "kb", "kc")}
    keys["kenc"] = keygen(tmp_path / "kenc", passphrase="enc-pass")
    sign(sshd.ca, tmp_path / "kc.pub", "nobody")
    agent.add(keys["kb"])
    agent.add(keys["kc"])
    return keys


@pytest.mark.parametrize("variant", ["plain", "identities-only", "certificate-file"])
def test_identity_order_is_openssh_order(sshd, agent, keyset, tmp_path, variant):
    files = [keyset["ka"], keyset["kc"], keyset["kenc"]]
    opts = [x for f in files for x in ("-i", str(f))] + ["-o", f"IdentityAgent={agent.sock}"]
    fields = {"key_files": tuple(map(str, files)), "identity_agent": agent.sock}
    if variant == "identities-only":
        opts += ["-o", "IdentitiesOnly=yes"]
        fields["identities_only"] = True
    if variant == "certificate-file":
        cert = tmp_path / "elsewhere-cert.pub"
        shutil.copy(tmp_path / "kc-cert.pub", cert)
        opts += ["-o", f"CertificateFile={cert}"]
        fields["certificate_files"] = (str(cert),)
    expected = ssh_attempts(sshd, "nobody", *opts)
    assert len(expected) >= 4, expected
    got = fleetops_attempts(sshd.target("nobody", **fields), agent.sock)
    assert got == expected, "\n".join(map(str, got + ["--"] + expected))


def test_encrypted_key_held_by_agent_is_used_without_asking(sshd, agent, tmp_path,
                                                            monkeypatch):
    monkeypatch.delenv("FLEETOPS_KEY_PASSPHRASE", raising=False)
    key = keygen(tmp_path / "frank_key", passphrase="frank-pass")
    sshd.authorize("frank", tmp_path / "frank_key.pub")
    agent.add(key, "frank-pass")
    target = sshd.target("frank", key_files=(str(key),), identity_agent=agent.sock)
    host = one([target])
    assert (host.status, host.stdout) == ("ok", "frank\n"), host.reason
    (tmp_path / "frank_key.pub").unlink()  # the public part of the key file itself
    host = one([target])
    assert (host.status, host.stdout) == ("ok", "frank\n"), host.reason
    # OpenSSH agrees: the same files and agent log in without a passphrase
    proc = subprocess.run(sshd.ssh_argv("frank", "-i", str(key), "-o",
                                        f"IdentityAgent={agent.sock}") + ["id -un"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.stdout == "frank\n", proc.stderr


def test_encrypted_key_without_agent(sshd, tmp_path, monkeypatch):
    key = keygen(tmp_path / "frank_key2", passphrase="frank-pass2")
    sshd.authorize("frank", tmp_path / "frank_key2.pub")
    target = sshd.target("frank", key_files=(str(key),))
    monkeypatch.delenv("FLEETOPS_KEY_PASSPHRASE", raising=False)
    host = one([target])
    assert host.status == "unreachable"
    assert str(key) in host.reason and "encrypted" in host.reason
    assert "Traceback" not in host.reason
    monkeypatch.setenv("FLEETOPS_KEY_PASSPHRASE", "not-it")
    host = one([target])
    assert host.status == "unreachable" and f"{key}: wrong passphrase" in host.reason
    monkeypatch.setenv("FLEETOPS_KEY_PASSPHRASE", "frank-pass2")
    host = one([target])
    assert (host.status, host.stdout) == ("ok", "frank\n"), host.reason


def test_agent_certificate_works_and_does_not_break_other_hosts(sshd, lab, agent, tmp_path):
    key = keygen(tmp_path / "erin_key")
    sign(sshd.ca, tmp_path / "erin_key.pub", "erin")
    agent.add(key)  # ssh-add adds the key and the certificate beside it
    listed = subprocess.run(["ssh-add", "-l"], env={"SSH_AUTH_SOCK": agent.sock},
                            capture_output=True, text=True, check=True).stdout
    assert "CERT" in listed
    erin = sshd.target("erin", identity_agent=agent.sock)
    lab01 = lab.host("lab01")
    other = sshd.target("root", name="lab01", identity_agent=agent.sock,
                        key_files=(str(lab.client_key),))
    other.address, other.port, other.known_hosts = lab01.address, lab01.port, str(
        lab.known_hosts)
    result = run([erin, other])
    assert result.hosts[erin.name].status == "ok", result.hosts[erin.name].reason
    assert result.hosts[erin.name].stdout == "erin\n"
    assert result.hosts["lab01"].status == "ok", result.hosts["lab01"].reason
    proc = subprocess.run(sshd.ssh_argv("erin", "-o", f"IdentityAgent={agent.sock}")
                          + ["id -un"], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.stdout == "erin\n", proc.stderr


def test_certificate_files(sshd, tmp_path):
    key = keygen(tmp_path / "erin_file")
    no_cert = one([sshd.target("erin", key_files=(str(key),))])
    assert no_cert.status == "unreachable" and str(key) in no_cert.reason
    cert = sign(sshd.ca, tmp_path / "erin_file.pub", "erin")
    beside = one([sshd.target("erin", key_files=(str(key),))])
    assert (beside.status, beside.stdout) == ("ok", "erin\n"), beside.reason
    moved = tmp_path / "erin.cert"
    cert.rename(moved)
    named = one([sshd.target("erin", key_files=(str(key),), certificate_files=(str(moved),))])
    assert (named.status, named.stdout) == ("ok", "erin\n"), named.reason


def test_password_authentication(sshd):
    secret = PASSWORDS["dave"]
    by_target = one([sshd.target("dave", password=secret)])
    assert (by_target.status, by_target.stdout) == ("ok", "dave\n"), by_target.reason
    by_run = one([sshd.target("dave")], password=secret)
    assert (by_run.status, by_run.stdout) == ("ok", "dave\n"), by_run.reason
    wrong = one([sshd.target("dave", password="not-" + secret)])
    assert wrong.status == "unreachable"
    assert "password: refused" in wrong.reason and "server allows: password" in wrong.reason
    assert secret not in wrong.reason
    missing = one([sshd.target("dave")])
    assert missing.status == "unreachable" and "server allows: password" in missing.reason


def test_failure_names_the_keys_tried_and_the_allowed_methods(sshd, tmp_path, agent):
    key = keygen(tmp_path / "stranger")
    other = keygen(tmp_path / "in_agent")
    agent.add(other)
    host = one([sshd.target("alice", key_files=(str(key),), identity_agent=agent.sock)])
    assert host.status == "unreachable"
    assert f"{key}: refused" in host.reason
    assert "agent: in_agent: refused" in host.reason
    assert "server allows: publickey,password" in host.reason


def test_cli_password_from_the_environment(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"davehost ansible_host={sshd.address} ansible_port={sshd.port} "
                         f"ansible_user=dave fleetops_known_hosts={sshd.known_hosts}\n")
    env = {**os.environ, "FLEETOPS_PASSWORD": PASSWORDS["dave"], "SSH_AUTH_SOCK": ""}
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--json", "--retry-file", str(tmp_path / "r"),
                           "id -un"], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["hosts"]["davehost"]["stdout"] == "dave\n"
    assert PASSWORDS["dave"] not in proc.stdout + proc.stderr


def test_cli_ask_pass_on_a_terminal_asks_once(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("".join(
        f"dave{i} ansible_host={sshd.address} ansible_port={sshd.port} ansible_user=dave "
        f"fleetops_known_hosts={sshd.known_hosts}\n" for i in range(3)))
    env = {k: v for k, v in os.environ.items() if k not in ("FLEETOPS_PASSWORD",
                                                            "SSH_AUTH_SOCK")}
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(inventory),
            "--ask-pass", "--retry-file", str(tmp_path / "r"), "id -un"]
    prompt = b"SSH password: "
    shown, rc, seen = run_on_tty(argv, {prompt: PASSWORDS["dave"].encode() + b"\n"}, env)
    assert rc == 0, shown
    assert seen[prompt] == 1
    assert shown.count(b"| dave") == 3
    assert PASSWORDS["dave"].encode() not in shown


def test_key_then_password_partial_authentication(sshd):
    key = (str(sshd.client_key),)
    both = one([sshd.target("gina", key_files=key, password=PASSWORDS["gina"])])
    assert (both.status, both.stdout) == ("ok", "gina\n"), both.reason
    key_only = one([sshd.target("gina", key_files=key)])
    assert key_only.status == "unreachable"
    assert "server allows: password" in key_only.reason


def test_inventory_ansible_password_end_to_end(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"davehost ansible_host={sshd.address} ansible_port={sshd.port} "
                         f"ansible_user=dave fleetops_known_hosts={sshd.known_hosts} "
                         f"ansible_ssh_pass={PASSWORDS['dave']}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("FLEETOPS_PASSWORD",
                                                            "SSH_AUTH_SOCK")}
    proc = subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--json", "--retry-file", str(tmp_path / "r"),
                           "id -un"], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=env, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["hosts"]["davehost"]["stdout"] == "dave\n"
    assert PASSWORDS["dave"] not in proc.stdout + proc.stderr
