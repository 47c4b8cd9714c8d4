"""ProxyJump on the real lab: lab hosts share loopback, so one lab host can be the
bastion for the others. Targets are built by hand (``Target.jump``).

Going *through* the bastion is proven with a name only the bastion can resolve: an
``/etc/hosts`` line inside the bastion's own copy-on-write ``/etc`` (a direct
connection could not even resolve it), plus a known_hosts line for that name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.ssh import Target

REPO = Path(__file__).resolve().parents[1]


def hop(lab, name: str, known_hosts=None, **kw) -> Target:
    h = lab.host(name)
    return Target(name=name, address=h.address, port=h.port, user="root",
                  key_files=(str(lab.client_key),),
                  known_hosts=str(known_hosts or lab.known_hosts), **kw)


def run(lab, names, jump, command="hostname", known_hosts=None, address=None, **options):
    def target_for(host):
        t = hop(lab, host.name, known_hosts, jump=jump)
        if address:
            t.address = address
        return t

    hosts = [SimpleNamespace(name=n) for n in names]
    with Fleet(RunOptions(forks=16, connect_timeout=options.pop("timeout", 10), **options),
               target_for) as fleet:
        result = fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command)))
        transports = len(fleet.bastions._conns)
    return result, transports


def host_key_line(lab, name: str, alias: str) -> str:
    h = lab.host(name)
    kind, blob = h.host_key.with_name(h.host_key.name + ".pub").read_text().split()[:2]
    return f"[{alias}]:{h.port} {kind} {blob}\n"


@pytest.fixture
def bastion_only_name(lab):
    """``jumptarget.invalid`` resolves to lab05 inside lab02 only."""
    h = lab.host("lab05")
    proc = lab.ns_run("lab02", ["sh", "-c", f"echo '{h.address} jumptarget.invalid' >> /etc/hosts"],
                      capture_output=True, text=True, timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr
    yield "jumptarget.invalid"
    lab.ns_run("lab02", ["sed", "-i", "/jumptarget.invalid/d", "/etc/hosts"], timeout=20,
               check=False)


def test_many_hosts_through_one_bastion_share_one_transport(lab):
    names = [f"lab{i:02d}" for i in range(2, 17)]
    result, transports = run(lab, names, (hop(lab, "lab01"),))
    assert {n: (h.status, h.stdout.strip()) for n, h in result.hosts.items()} == \
        {n: ("ok", n) for n in names}
    assert transports == 1


def test_target_reached_by_a_name_only_the_bastion_resolves(lab, bastion_only_name, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(lab.known_hosts.read_text() + host_key_line(lab, "lab05", bastion_only_name))
    result, _ = run(lab, ["lab05"], (hop(lab, "lab02"),), known_hosts=known,
                    address=bastion_only_name)
    assert (result.hosts["lab05"].status, result.hosts["lab05"].stdout.strip()) == \
        ("ok", "lab05"), result.hosts["lab05"].reason
    # and without the jump the name is unknown here: no direct path exists
    direct, _ = run(lab, ["lab05"], (), known_hosts=known, address=bastion_only_name, timeout=5)
    assert direct.hosts["lab05"].status == "unreachable"


def test_two_hops(lab, bastion_only_name, tmp_path):
    """lab01 -> lab02 -> target: the last hop (lab02) resolves the target's name."""
    known = tmp_path / "known_hosts"
    known.write_text(lab.known_hosts.read_text() + host_key_line(lab, "lab05", bastion_only_name))
    result, transports = run(lab, ["lab05"], (hop(lab, "lab01"), hop(lab, "lab02")),
                             known_hosts=known, address=bastion_only_name)
    assert result.hosts["lab05"].status == "ok", result.hosts["lab05"].reason
    assert result.hosts["lab05"].stdout.strip() == "lab05"
    assert transports == 2


def test_stopped_bastion_makes_hosts_unreachable_naming_it(lab):
    lab.fault("lab01", "stop")
    marker = "/tmp/jump-bypass-marker"
    started = time.monotonic()
    result, _ = run(lab, ["lab03", "lab04"], (hop(lab, "lab01"),), command=f"touch {marker}")
    assert time.monotonic() - started < 5
    for name in ("lab03", "lab04"):
        h = result.hosts[name]
        assert h.status == "unreachable"
        assert h.reason.startswith("bastion lab01 (root@"), h.reason
        assert "Connection refused" in h.reason
        ran = lab.ns_run(name, ["test", "-e", marker], timeout=20, check=False)
        assert ran.returncode == 1, f"something ran on {name}: no bypass allowed"


def test_unknown_bastion_host_key_is_refused(lab, tmp_path):
    """The bastion's key is checked like any host's: missing from known_hosts -> refused,
    nothing runs behind it (the targets' own keys are known)."""
    known = tmp_path / "known_hosts"
    b = lab.host("lab01")
    known.write_text("".join(line for line in lab.known_hosts.read_text().splitlines(True)
                             if not line.startswith(f"[{b.address}]:")))
    bastion = hop(lab, "lab01", known_hosts=known)
    result, _ = run(lab, ["lab03"], (bastion,))
    h = result.hosts["lab03"]
    assert h.status == "unreachable"
    assert h.reason.startswith("bastion lab01") and "unknown host key" in h.reason, h.reason


def test_bastion_that_cannot_reach_the_target(lab):
    lab.fault("lab06", "stop")
    result, _ = run(lab, ["lab06", "lab07"], (hop(lab, "lab01"),))
    assert result.hosts["lab07"].status == "ok"
    h = result.hosts["lab06"]
    assert h.status == "unreachable"
    assert "bastion lab01" in h.reason and "could not connect" in h.reason, h.reason


def test_deadline_unblocks_a_host_whose_socket_is_a_channel(lab):
    """A frozen target behind the bastion: the channel opens, no banner comes; the host
    deadline closes the channel and the worker ends, the bastion keeps serving others."""
    lab.fault("lab08", "freeze")
    started = time.monotonic()
    result, _ = run(lab, ["lab08", "lab09"], (hop(lab, "lab01"),), timeout=30,
                    host_deadline=2.0)
    assert time.monotonic() - started < 8
    assert result.hosts["lab09"].status == "ok"
    h = result.hosts["lab08"]
    assert h.status == "unreachable" and "deadline" in h.reason, h.reason
    assert "timed out" not in h.reason and "within 30s" not in h.reason


def test_no_jump_connects_directly(lab):
    """``ProxyJump none`` is an empty ``jump``: a plain direct connection."""
    result, transports = run(lab, ["lab10"], ())
    assert result.hosts["lab10"].status == "ok" and transports == 0


def test_stock_bastion_serves_many_hosts_on_one_login(lab, tmp_path):
    """A bastion with OpenSSH's defaults (MaxSessions 10, MaxStartups 10:30:100): 16
    hosts behind it use one login and 16 channels (direct-tcpip is no session)."""
    from test_connect_retry import Sshd

    server = Sshd(tmp_path, max_startups="10:30:100")
    try:
        bastion = server.target()
        names = [f"lab{i:02d}" for i in range(1, 17)]
        result, transports = run(lab, names, (bastion,))
        logins = server.log.read_text(errors="replace").count("Accepted publickey")
    finally:
        server.stop()
    assert {n: h.status for n, h in result.hosts.items()} == dict.fromkeys(names, "ok")
    assert transports == 1 and logins == 1


def test_target_dropping_before_banner_behind_a_bastion_is_retried(lab, tmp_path):
    """The target (a real sshd at MaxStartups 1:100:1, held full) drops each channel's
    connection before its banner: retried through the same bastion, then reported."""
    from test_connect_retry import Sshd

    server = Sshd(tmp_path)
    holder = server.hold()
    before = server.drops()
    try:
        hosts = [SimpleNamespace(name="own")]
        with Fleet(RunOptions(connection_attempts=3),
                   lambda h: server.target(jump=(hop(lab, "lab01"),))) as fleet:
            result = fleet.run(hosts, lambda s: exec_result("own", s.exec("true")))
        time.sleep(0.2)
        drops = server.drops() - before
    finally:
        holder.close()
        server.stop()
    h = result.hosts["own"]
    assert h.status == "unreachable"
    assert h.reason == (f"127.0.0.1:{server.port} via lab01 (root@{lab.host('lab01').address}"
                        ":2222): connection closed by the server before the SSH banner "
                        "(3 attempts; sshd MaxStartups or a busy bastion?)"), h.reason
    assert drops == 3


# -- the CLI, with ProxyJump from ~/.ssh/config ------------------------------------------

def _home_with_jump(lab, tmp_path):
    """(environment, inventory): the lab's hosts behind lab01 by an ssh_config read as
    ~/.ssh/config ($HOME) and as ``-F`` (ansible_ssh_common_args)."""
    from fleetops.lab.bench import inventory_with_ssh_config, jump_ssh_config

    bastion = lab.host("lab01")
    config = tmp_path / "home" / ".ssh" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(jump_ssh_config(bastion.address, bastion.port,
                                      bastion.address.rsplit(".", 1)[0] + ".*",
                                      lab.client_key, lab.known_hosts))
    inventory = inventory_with_ssh_config(lab.inventory_path, config, tmp_path / "jump.ini")
    return {**os.environ, "HOME": str(tmp_path / "home")}, inventory


def test_cli_ctrl_c_unblocks_hosts_waiting_on_a_channel(lab, tmp_path):
    """lab04 is frozen behind the bastion (its channel opens, no banner): Ctrl-C ends
    the run at once (exit 99), lab04 interrupted, the others done through the bastion."""
    lab.fault("lab04", "freeze")
    env, inventory = _home_with_jump(lab, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(inventory),
         "-p", "lab02:lab03:lab04", "--json", "--timeout", "60", "--retry-file",
         str(tmp_path / "r"), "hostname"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    time.sleep(3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert proc.returncode == 99, err
    doc = json.loads(out)
    assert doc["hosts"]["lab04"]["status"] == "failed"
    assert "interrupted" in doc["hosts"]["lab04"]["reason"]
    assert [doc["hosts"][n]["stdout"].strip() for n in ("lab02", "lab03")] == ["lab02", "lab03"]


def test_cli_stopped_bastion_exit_3_and_bad_attempts_exit_5(lab, tmp_path):
    lab.fault("lab01", "stop")
    env, inventory = _home_with_jump(lab, tmp_path)
    argv = [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(inventory),
            "-p", "lab02:lab03", "--json", "--retry-file", str(tmp_path / "r")]
    proc = subprocess.run([*argv, "--connection-attempts", "2", "true"], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    for name in ("lab02", "lab03"):
        assert doc["hosts"][name]["status"] == "unreachable"
        assert doc["hosts"][name]["reason"].startswith("bastion root@"), doc["hosts"][name]
    proc = subprocess.run([*argv, "--connection-attempts", "0", "true"], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 5 and "--connection-attempts" in proc.stderr
