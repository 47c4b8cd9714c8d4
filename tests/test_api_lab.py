"""The public API on the real lab: unmodified Fabric-style functions through
``fleetops.Fleet``, faults ending in ``.failed``, sudo passwords only on sudo's prompt,
shipped programs through the handle, and ``fleet_task`` tasks through ``invoke``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from authlab import PASSWORDS, Agent, AuthSshd

import fleetops
from fleetops.core.become import OK, PROMPT

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def fabric_style(c, tag):
    """What a Fabric user writes: no fleetops in it."""
    name = c.run("uname -n", hide=True).stdout.strip()
    with c.cd("/tmp"):
        where = c.run("pwd", hide=True).stdout.strip()
    with c.prefix("export GREETING=hello"):
        greeting = c.run("echo $GREETING", hide=True).stdout.strip()
    uid = c.sudo("id -u", hide=True).stdout.strip()
    c.put(io.BytesIO(f"{tag} {name}\n".encode()), f"/tmp/api-{tag}")
    got = io.BytesIO()
    c.get(f"/tmp/api-{tag}", got)
    failed = c.run("exit 7", warn=True, hide=True)
    local = c.local("echo from-control", hide=True).stdout.strip()
    return {"name": name, "where": where, "greeting": greeting, "uid": uid,
            "got": got.getvalue().decode(), "failed_rc": failed.exited, "ok": failed.ok,
            "local": local, "result": type(failed).__module__ + "." + type(failed).__name__}


def test_fabric_style_function_on_every_host_with_faults(lab, lab_inventory):
    lab.fault("lab03", "stop")
    lab.fault("lab05", "rekey")
    result = fleetops.Fleet(str(lab_inventory), command_timeout=30).run(fabric_style, "t1")
    good = {h.name for h in lab.hosts} - {"lab03", "lab05"}
    assert set(result.succeeded) == good
    for name in good:
        value = result.succeeded[name]
        assert value == {"name": name, "where": "/tmp", "greeting": "hello", "uid": "0",
                         "got": f"t1 {name}\n", "failed_rc": 7, "ok": False,
                         "local": "from-control", "result": "fabric.runners.Result"}
        assert result.hosts[name].status == "ok"
    assert set(result.failed) == {"lab03", "lab05"}
    assert result.failed["lab03"].status == "unreachable"
    assert "refused" in result.failed["lab03"].reason.lower()
    assert result.failed["lab05"].status == "unreachable"
    assert "HOST KEY CHANGED" in result.failed["lab05"].reason
    assert result.exit_code == 3
    doc = json.loads(result.dumps())
    assert set(doc) == {"hosts", "summary"}
    assert doc["summary"]["ok"] == len(good) and doc["summary"]["unreachable"] == 2
    assert doc["hosts"]["lab01"]["value"]["uid"] == "0"
    # nothing ran on the re-keyed host
    assert lab.ns_run("lab05", ["test", "-e", "/tmp/api-t1"]).returncode == 1


def test_an_exception_fails_only_its_host_and_is_named(lab_inventory):
    def work(c):
        if c.name == "lab02":
            raise ValueError("bad release number")
        if c.name == "lab04":
            c.run("echo oops >&2; exit 3", hide=True)
        return c.run("uname -n", hide=True).stdout.strip()

    result = fleetops.Fleet(lab_inventory, "lab01:lab02:lab04").run(work)
    assert result.succeeded == {"lab01": "lab01"}
    assert result.failed["lab02"].status == "failed"
    assert result.failed["lab02"].reason == "ValueError: bad release number"
    assert result.failed["lab04"].reason == "UnexpectedExit: 'echo oops >&2; exit 3' " \
                                            "exited with rc=3: oops"
    assert result.failed["lab04"].rc == 3 and result.failed["lab04"].stderr == "oops\n"
    assert result.exit_code == 2


def test_changed_and_programs_through_the_handle(lab_inventory):
    def work(c):
        report = c.program("diskreport")
        missing = c.program("diskreport", "--no-such-option", warn=True)
        if c.name == "lab02":
            c.changed = True
        return {"mounts": [m["mountpoint"] for m in report.data["mounts"]],
                "missing_ok": missing.ok, "missing_reason": missing.reason}

    with fleetops.Fleet(lab_inventory, "lab01:lab02") as fleet:
        result = fleet.run(work)
        again = fleet.run(lambda c: c.run("true", hide=True).ok)
    assert result.hosts["lab01"].status == "ok" and result.hosts["lab02"].status == "changed"
    for value in result.succeeded.values():
        assert "/srv/data" in value["mounts"]
        assert value["missing_ok"] is False and value["missing_reason"]
    assert again.succeeded == {"lab01": True, "lab02": True}


def test_deadline_ends_a_hung_function(lab_inventory):
    started = time.monotonic()
    result = fleetops.Fleet(lab_inventory, "lab01:lab02", deadline=3).run(
        lambda c: c.run("sleep 30" if c.name == "lab01" else "true", hide=True).ok)
    assert time.monotonic() - started < 15
    assert result.succeeded == {"lab02": True}
    assert result.failed["lab01"].status == "failed"
    assert "deadline of 3s exceeded" in result.failed["lab01"].reason


def test_bad_options_and_inventory_are_fleetops_errors(lab_inventory, tmp_path):
    with pytest.raises(fleetops.FleetopsError, match="unknown Fleet option 'frks'"):
        fleetops.Fleet(lab_inventory, frks=3)
    with pytest.raises(fleetops.FleetopsError, match="forks must be an integer"):
        fleetops.Fleet(lab_inventory, forks=0)
    with pytest.raises(fleetops.FleetopsError, match="selects no host"):
        fleetops.Fleet(lab_inventory, "nosuchgroup*")
    bad = tmp_path / "bad.ini"
    bad.write_text("[web\nh1\n")
    with pytest.raises(fleetops.FleetopsError, match=r"bad\.ini:1: "):
        fleetops.load_inventory(bad)
    inv = fleetops.load_inventory(lab_inventory)
    hosts = inv.select("odd", limit="lab01:lab03:lab04")
    assert [h.name for h in hosts] == ["lab01", "lab03"]
    assert "odd" in hosts[0].groups and hosts[0].vars["ansible_port"] in (2222, "2222")
    assert fleetops.Fleet(inv, "lab01").run(lambda c: 1).succeeded == {"lab01": 1}


# -- sudo with a password (a second sshd on lab15 with real users, tests/authlab.py) -------
@pytest.fixture(scope="module")
def sshd(lab, tmp_path_factory):
    server = AuthSshd(lab, "lab15", tmp_path_factory.mktemp("apisshd"))
    yield server
    server.stop()


def auth_inventory(sshd, tmp_path: Path, *users: str) -> Path:
    lines = ["[auth]"] + [
        f"{u} ansible_host={sshd.address} ansible_port={sshd.port} ansible_user={u} "
        f"ansible_ssh_private_key_file={sshd.client_key} fleetops_known_hosts={sshd.known_hosts}"
        for u in users]
    path = tmp_path / "auth.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sudo_password_goes_only_to_sudos_prompt(sshd, tmp_path):
    secret = PASSWORDS["alice"]

    def work(c):
        who = c.sudo("id -un; cat", hide=True, in_stream=io.StringIO("fed\n"))
        echo = c.sudo("cat", hide=True, in_stream=io.StringIO(PROMPT.decode() + "\n"))
        plain = c.run("id -un", hide=True).stdout
        return who.stdout, who.stderr, echo.stdout, plain

    inv = auth_inventory(sshd, tmp_path, "alice", "bob")
    result = fleetops.Fleet(inv, become_password=secret).run(work)
    assert set(result.succeeded) == {"alice", "bob"}, result.failed
    for user, (out, err, echoed, plain) in result.succeeded.items():
        assert out == "root\nfed\n" and plain == f"{user}\n"
        assert echoed == PROMPT.decode() + "\n"  # the prompt text in the command's input
        assert secret not in out + err + echoed and OK.decode() not in err


def test_sudo_wrong_or_missing_password_fails_the_host(sshd, tmp_path):
    inv = auth_inventory(sshd, tmp_path, "alice")
    wrong = fleetops.Fleet(inv, become_password="not-it").run(lambda c: c.sudo("true"))
    assert wrong.failed["alice"].reason == "SudoFailed: sudo: incorrect password for " \
                                           "alice on alice"
    missing = fleetops.Fleet(inv).run(lambda c: c.sudo("true"))
    assert "a password is required for alice" in missing.failed["alice"].reason
    become = fleetops.Fleet(inv, become=True, become_password=PASSWORDS["alice"]).run(
        lambda c: c.run("id -un", hide=True).stdout)
    assert become.succeeded == {"alice": "root\n"}
    pty = fleetops.Fleet(inv, become_password=PASSWORDS["alice"]).run(
        lambda c: c.sudo("true", pty=True))
    assert "c.sudo with pty=True is not supported" in pty.failed["alice"].reason


# -- fleet_task through invoke ----------------------------------------------------------
def invoke(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES)}
    return subprocess.run([sys.executable, "-m", "invoke", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=EXAMPLES, env=env, check=False)


def test_fleet_tasks_listed_with_shared_options(tmp_path):
    listing = invoke("--list")
    assert listing.returncode == 0, listing.stderr
    for name in ("deploy", "uptime", "disk-usage", "run", "disk-report.report"):
        assert f"  {name} " in listing.stdout
    helped = invoke("--help", "deploy").stdout
    for flag in ("--inventory", "--pattern", "--limit", "--forks", "--json", "--accept-new",
                 "--become", "--retry-file", "--command-timeout", "--deadline", "--restart"):
        assert flag in helped
    bad = invoke("deploy", "-i", "x.ini", "1.0", "--forks", "many")
    assert bad.returncode == 5


def test_fleet_task_json_exit_codes_and_retry_file(lab, lab_inventory, tmp_path):
    retry = tmp_path / "deploy.retry"
    lab.fault("lab06", "stop")
    proc = invoke("deploy", "-i", str(lab_inventory), "-p", "lab05:lab06:lab07",
                  "--dest", "/tmp/api-app", "--json", "--retry-file", str(retry), "2.0")
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["hosts"]["lab05"]["status"] == "changed"
    assert doc["hosts"]["lab05"]["value"] == {"version": "2.0", "changed": True}
    assert doc["hosts"]["lab06"]["status"] == "unreachable"
    assert "lab06" in retry.read_text() and "lab05" not in retry.read_text()
    again = invoke("deploy", "-i", str(lab_inventory), "-p", "lab05:lab07",
                   "--dest", "/tmp/api-app", "--retry-file", str(retry), "2.0")
    assert again.returncode == 0, again.stderr
    assert "lab05 | OK" in again.stdout and "RECAP" in again.stdout
    assert "lab05 | => {'version': '2.0', 'changed': False}" in again.stdout
    assert not retry.exists()
    # a failing host: exit 2
    failing = invoke("uptime", "-i", str(lab_inventory), "-p", "lab07",
                     "--command-timeout", "0.001", "--retry-file", str(retry))
    assert failing.returncode == 2, failing.stderr
    assert "lab07 | FAILED" in failing.stdout and "CommandTimedOut" in failing.stdout
    assert retry.read_text().splitlines()[-1] == "lab07"


# -- the mixed lab: ProxyJump, certificates, passwords, sudo kinds ----------------------
def whoami_everywhere(c):
    c.put(io.BytesIO(b"payload\n"), "/tmp/api-mixed")
    got = io.BytesIO()
    c.get("/tmp/api-mixed", got)
    login = c.run("id -un", hide=True).stdout.strip().splitlines()[-1]
    root = c.sudo("id -un", hide=True).stdout.strip().splitlines()[-1]
    return {"name": c.run("uname -n", hide=True).stdout.split()[-1], "run_as": login,
            "sudo_as": root, "got": got.getvalue()}


def test_every_kind_of_host_of_the_mixed_lab(mixed_lab, tmp_path, monkeypatch):
    agent = Agent(tmp_path)  # the bastion hop has no identity file of its own (as ssh -J)
    agent.add(mixed_lab.client_key)
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.sock)
    try:
        result = _mixed_run(mixed_lab)
    finally:
        agent.stop()
    expected = {"hidden01", "hidden02", "sudopw", "nopasswd", "usercert", "hostcert",
                "pwonly", "noisyrc"}
    assert set(result.succeeded) == expected, {n: h.reason for n, h in result.failed.items()}
    for name in expected:
        value = result.succeeded[name]
        assert value["got"] == b"payload\n"
        assert value["sudo_as"] == "root"
        # ansible_become=yes hosts: c.run goes through sudo like every fleetops task
        assert value["run_as"] == "root"
    # requiretty: c.sudo needs a pty there (documented), and says so
    assert result.failed["requiretty"].status == "failed"
    assert "tty" in result.failed["requiretty"].reason


def _mixed_run(mixed_lab):
    pattern = ("behind_bastion:sudo_password:sudo_nopasswd:usercert:hostcert:password_only:"
               "noisy_rc:requiretty")
    result = fleetops.Fleet(mixed_lab.inventory_path, pattern, command_timeout=30).run(
        whoami_everywhere)
    return result


SLOW_TASKS = '''
from fleetops import fleet_task
from fleetops.cli.collection import builtin


@fleet_task
def slow(c):
    c.run("sleep 30" if c.name == "lab01" else "true", hide=True)
    return c.name


ns = builtin()
ns.add_task(slow)
'''


def test_ctrl_c_keeps_what_finished(lab_inventory, tmp_path):
    import signal

    (tmp_path / "tasks.py").write_text(SLOW_TASKS)
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "slow", "-i", str(lab_inventory),
                             "-p", "lab01:lab02:lab03", "--json", "--retry-file",
                             str(tmp_path / "r")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 99, err
    hosts = json.loads(out)["hosts"]
    assert hosts["lab01"]["status"] == "failed" and "interrupted" in hosts["lab01"]["reason"]
    assert hosts["lab02"]["status"] == "ok" and hosts["lab02"]["value"] == "lab02"
    assert (tmp_path / "r").read_text().splitlines()[-1] == "lab01"
