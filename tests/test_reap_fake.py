"""A timed-out command is killed on the host over the same connection (fleetops.core.reap),
through sudo when it ran with become: the decisions, on the fake transport (seconds).
The kill itself against real hosts: tests/test_reap_lab.py."""

from __future__ import annotations

import re

from fleetops.core.fakesudo import FakeSudo
from fleetops.core.reap import ENV
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.testing import FakeHost, FakeNetwork, hosts

MARK = re.compile(ENV + r"=([0-9a-f]{16})")


def host_program(kills: list[str], kill_rc: int = 0):
    def program(proc):
        if proc.command.startswith(f"{ENV}="):
            proc.sleep(float("inf"))  # the command: hangs
        kills.append(proc.command)  # the kill script
        return kill_rc
    return program


def run(program, remote_kill=True, **options):
    net = FakeNetwork({"h1": FakeHost(program)}, remote_kill=remote_kill)
    options.setdefault("command_timeout", 0.5)
    with Fleet(RunOptions(**options), net.target_for, connect=net.connect) as fleet:
        result = fleet.run(hosts("h1"), lambda s: exec_result("h1", s.exec("sleep 300")))
    return result.hosts["h1"], net


def test_timeout_sends_the_kill_for_that_command():
    kills: list[str] = []
    host, net = run(host_program(kills))
    assert host.status == "failed" and host.reason.startswith("command timed out after ")
    assert "(" not in host.reason  # the kill worked: the reason is as before
    (_, command), (_, kill) = net.commands
    assert command.endswith("; sleep 300")
    assert kills == [kill] and f"n={MARK.search(command).group(1)};" in kill


def test_with_become_the_kill_goes_through_sudo_too():
    kills: list[str] = []
    sudo = FakeSudo(host_program(kills), password="pw")
    host, net = run(sudo, become=True, become_password="pw", become_user="ops")
    assert host.status == "failed" and "timed out" in host.reason
    runs = [entry for entry in sudo.log if entry[0] == "run"]
    assert [user for _, user, _ in runs] == ["ops", "ops"]
    mark = MARK.search(runs[0][2]).group(1)
    assert runs[0][2].endswith("; sleep 300") and f"n={mark};" in runs[1][2]
    assert all(c.startswith("sudo ") for _, c in net.commands)


def test_a_failed_kill_is_said():
    host, _ = run(host_program([], kill_rc=1))
    assert host.status == "failed"
    assert host.reason.endswith("(and it may still run on the host: it survived SIGKILL "
                                "or the host has no /proc)")


def test_no_mark_without_a_timeout_or_on_transports_that_kill_themselves():
    kills: list[str] = []
    host, net = run(lambda proc: kills.append(proc.command), command_timeout=None)
    assert host.status == "ok" and kills == ["sleep 300"]
    host, net = run(lambda proc: proc.sleep(float("inf")), remote_kill=False)
    assert host.status == "failed" and [c for _, c in net.commands] == ["sleep 300"]
