"""sudo done right, on a real sshd and sudo (see tests/authlab.py): the password goes
only to sudo's prompt, never to the command; wrong or missing passwords fail fast with a
clear reason; requiretty hosts work through a pty; shipped programs work under sudo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from authlab import PASSWORDS, AuthSshd, run_on_tty

from fleetops.core.become import OK, PROMPT
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.ship.run import fleet_program

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]
STDIN = b"line one\nline two\n"


@pytest.fixture(scope="module")
def sshd(lab, tmp_path_factory):
    server = AuthSshd(lab, "lab15", tmp_path_factory.mktemp("becomesshd"))
    yield server
    server.stop()


def key_target(sshd, user: str, **fields):
    return sshd.target(user, key_files=(str(sshd.client_key),), **fields)


def run(targets, command, stdin=STDIN, **options):
    by_name = {t.name: t for t in targets}
    hosts = [SimpleNamespace(name=t.name) for t in targets]
    options.setdefault("command_timeout", 30)
    with Fleet(RunOptions(**options), lambda host: by_name[host.name]) as fleet:
        return fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command, stdin)))


def test_password_never_reaches_the_command_when_sudo_does_not_ask(sshd):
    secret = "never-print-this-Zq9"
    targets = [key_target(sshd, "bob"), key_target(sshd, "root")]
    result = run(targets, "id -un; cat", become=True, become_password=secret)
    for host in result.hosts.values():
        assert host.status == "ok", host.reason
        assert host.stdout == "root\n" + STDIN.decode()
        assert secret not in host.stdout + host.stderr
        assert PROMPT.decode() not in host.stderr and OK.decode() not in host.stderr


def test_sudo_with_a_password(sshd):
    target = key_target(sshd, "alice")
    result = run([target], "id -un; cat; echo to-stderr >&2", become=True,
                 become_password=PASSWORDS["alice"])
    host = result.hosts[target.name]
    assert host.status == "ok", host.reason
    assert host.stdout == "root\n" + STDIN.decode()
    assert host.stderr.endswith("to-stderr\n") and PROMPT.decode() not in host.stderr
    assert PASSWORDS["alice"] not in host.stdout + host.stderr


def test_wrong_password_fails_fast_with_a_clear_reason(sshd):
    target = key_target(sshd, "alice")
    started = time.monotonic()
    result = run([target], "cat", become=True, become_password="wrong-password")
    host = result.hosts[target.name]
    assert host.status == "failed"
    assert host.reason == f"sudo: incorrect password for alice on {target.name}"
    assert time.monotonic() - started < 6  # sudo's own delay after a wrong password: ~2 s


def test_missing_password_says_so(sshd):
    target = key_target(sshd, "alice")
    host = run([target], "id -un", become=True).hosts[target.name]
    assert host.status == "failed"
    assert host.reason.startswith(f"sudo: a password is required for alice on {target.name}")


def test_inventory_become_overrides_the_run(sshd):
    target = key_target(sshd, "alice", become=True, become_user="bob",
                        become_password=PASSWORDS["alice"])
    host = run([target], "id -un", become=False, become_password="other").hosts[target.name]
    assert (host.status, host.stdout) == ("ok", "bob\n"), host.reason
    off = key_target(sshd, "alice", become=False)
    host = run([off], "id -un", become=True).hosts[off.name]
    assert (host.status, host.stdout) == ("ok", "alice\n"), host.reason


def test_requiretty_host_works_through_a_pty(sshd):
    target = key_target(sshd, "carol")
    payload = os.urandom(300_000)
    probe = run([target], "sudo -n true", become=False, stdin=None).hosts[target.name]
    assert "tty" in probe.stderr  # the host really requires a tty for sudo
    result = run([target], "id -un; sha256sum", stdin=payload, become=True,
                 become_password=PASSWORDS["carol"])
    host = result.hosts[target.name]
    assert host.status == "ok", host.reason
    import hashlib

    assert host.stdout == f"root\n{hashlib.sha256(payload).hexdigest()}  -\n"
    assert PASSWORDS["carol"] not in host.stdout
    wrong = run([target], "true", become=True, become_password="bad").hosts[target.name]
    assert wrong.reason == f"sudo: incorrect password for carol on {target.name}"


def test_shipped_program_under_sudo(sshd, lab):
    targets = [key_target(sshd, "alice"), key_target(sshd, "bob"), key_target(sshd, "carol")]
    by_name = {t.name: t for t in targets}
    hosts = [SimpleNamespace(name=t.name, vars={}) for t in targets]
    secrets = {"alice": PASSWORDS["alice"], "carol": PASSWORDS["carol"], "bob": "unused"}
    for t in targets:
        t.become_password = secrets[t.user]
    options = RunOptions(become=True, command_timeout=60)
    with Fleet(options, lambda host: by_name[host.name]) as fleet:
        for round_ in ("upload", "cached"):  # root's cache (sudo -H): alice uploads once
            run_ = fleet_program(hosts, "diskreport", ["--warn", "80", "--crit", "90"], fleet)
            for name, host in run_.hosts.items():
                assert host.status in ("ok", "changed"), (name, host.reason)
                assert host.data["mounts"], name
            if round_ == "cached":
                assert {h.uploaded_bytes for h in run_.hosts.values()} == {0}


def invoke(*args, env=None, timeout=90):
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                          start_new_session=True, check=False)


def test_cli_run_become_cat_does_not_print_the_password(lab_inventory, tmp_path):
    secret = "cli-secret-Xy7"
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab01", "--json", "--become",
                  "--retry-file", str(tmp_path / "r"), "echo; cat; id -un",
                  env={"FLEETOPS_BECOME_PASSWORD": secret})
    assert proc.returncode == 0, proc.stderr
    host = json.loads(proc.stdout)["hosts"]["lab01"]
    assert host["stdout"] == "\nroot\n"
    assert secret not in proc.stdout + proc.stderr


def test_cli_disk_report_with_become_and_a_password(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"alicehost ansible_host={sshd.address} ansible_port={sshd.port} ansible_user=alice "
        f"ansible_ssh_private_key_file={sshd.client_key} "
        f"fleetops_known_hosts={sshd.known_hosts}\n")
    proc = invoke("disk-report", "-i", str(inventory), "--become", "--format", "json",
                  "--retry-file", str(tmp_path / "r"),
                  env={"FLEETOPS_BECOME_PASSWORD": PASSWORDS["alice"]})
    assert proc.returncode in (0, 8), proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["hosts"]["alicehost"]["status"] in ("ok", "changed"), doc["hosts"]
    assert PASSWORDS["alice"] not in proc.stdout + proc.stderr


def test_cli_ask_become_pass_on_a_terminal(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"alicehost ansible_host={sshd.address} ansible_port={sshd.port} ansible_user=alice "
        f"ansible_ssh_private_key_file={sshd.client_key} "
        f"fleetops_known_hosts={sshd.known_hosts}\n")
    env = {k: v for k, v in os.environ.items() if k != "FLEETOPS_BECOME_PASSWORD"}
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(inventory),
            "--become", "--ask-become-pass", "--retry-file", str(tmp_path / "r"), "id -un"]
    prompt = b"BECOME password: "
    shown, rc, seen = run_on_tty(argv, {prompt: PASSWORDS["alice"].encode() + b"\n"}, env)
    assert rc == 0, shown
    assert seen[prompt] == 1 and b"alicehost | root" in shown
    assert PASSWORDS["alice"].encode() not in shown


def test_inventory_become_vars_end_to_end(sshd, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"alicehost ansible_host={sshd.address} ansible_port={sshd.port} ansible_user=alice "
        f"ansible_ssh_private_key_file={sshd.client_key} "
        f"fleetops_known_hosts={sshd.known_hosts} ansible_become=yes "
        f"ansible_become_password={PASSWORDS['alice']}\n")
    proc = invoke("run", "-i", str(inventory), "--json", "--retry-file", str(tmp_path / "r"),
                  "id -un; cat", env={"FLEETOPS_BECOME_PASSWORD": "not-this-one"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["alicehost"]
    assert host["stdout"] == "root\n"
    assert PASSWORDS["alice"] not in proc.stdout + proc.stderr
