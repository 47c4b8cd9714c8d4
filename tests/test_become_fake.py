"""sudo through the transport seam, on the fake transport and fake sudo: seconds, no sshd.

The password reaches sudo only after its prompt and never the command; wrong or missing
passwords fail fast; requiretty hosts are retried with a pty (learnt once per
connection). The same against a real sshd and sudo: tests/test_become_lab.py."""

from __future__ import annotations

import time

from fleetops.core.become import OK, PROMPT
from fleetops.core.fakesudo import FakeSudo
from fleetops.core.runner import Fleet, RunOptions, exec_result
from fleetops.core.testing import FakeHost, FakeNetwork, hosts

STDIN = b"line one\nline two\n"
SECRET = "s3cret-Zq9"


def cat(proc):
    """``id -un; cat; echo to-stderr >&2`` of a fake host."""
    proc.write(getattr(proc, "user", "login").encode() + b"\n")
    proc.write(proc.read())
    proc.write(b"to-stderr\n", "stderr")


def run(sudo: FakeSudo, commands=("id -un; cat",), **options):
    net = FakeNetwork({"h1": FakeHost(sudo)})
    options.setdefault("command_timeout", 10)

    def work(session):
        for command in commands:
            result = exec_result(session.host.name, session.exec(command, STDIN))
        return result

    with Fleet(RunOptions(become=True, **options), net.target_for, connect=net.connect) as fleet:
        return fleet.run(hosts("h1"), work).hosts["h1"], net


def test_password_goes_to_the_prompt_only_after_it_was_shown():
    sudo = FakeSudo(cat, password=SECRET)
    host, net = run(sudo, become_password=SECRET)
    assert host.status == "ok", host.reason
    assert host.stdout == "root\n" + STDIN.decode()
    assert host.stderr == "to-stderr\n"
    assert sudo.log == [("prompt", False), ("password", True), ("run", "root", "id -un; cat")]
    assert all(SECRET not in command for _, command in net.commands)
    assert PROMPT.decode() not in host.stderr and OK.decode() not in host.stderr


def test_no_password_is_sent_when_sudo_does_not_ask():
    sudo = FakeSudo(cat)  # NOPASSWD
    host, _ = run(sudo, become_password=SECRET, become_user="ops")
    assert host.status == "ok", host.reason
    assert host.stdout == "ops\n" + STDIN.decode()  # stdin untouched: no password in it
    assert sudo.log == [("run", "ops", "id -un; cat")]


def test_wrong_password_fails_at_the_second_prompt():
    sudo = FakeSudo(cat, password=SECRET)
    started = time.monotonic()
    host, _ = run(sudo, become_password="wrong")
    assert host.status == "failed"
    assert host.reason == "sudo: incorrect password for root on h1"
    assert sudo.log == [("prompt", False), ("password", False), ("prompt", False)]
    assert time.monotonic() - started < 3


def test_missing_password_says_how_to_give_one():
    host, _ = run(FakeSudo(cat, password=SECRET))
    assert host.status == "failed"
    assert host.reason.startswith("sudo: a password is required for root on h1 (")


def test_requiretty_is_retried_with_a_pty_once_per_connection():
    sudo = FakeSudo(cat, password=SECRET, requiretty=True)
    host, net = run(sudo, commands=("one", "two"), become_password=SECRET)
    assert host.status == "ok", host.reason
    # a pty merges the streams; sudo's own lines stay out of stdout
    assert host.stdout == "root\n" + STDIN.decode() + "to-stderr\n"
    assert SECRET not in host.stdout + host.stderr
    assert [entry for entry in sudo.log if entry[0] == "run"] == [
        ("run", "root", "one"), ("run", "root", "two")]
    assert len(net.commands) == 3  # one without a pty, then the pty learnt for "two"
    assert all(entry == ("prompt", False) for entry in sudo.log if entry[0] == "prompt")


def test_sudo_that_never_answers_is_a_command_timeout():
    def hang(proc):
        proc.sleep(float("inf"))

    host, _ = run(FakeSudo(hang, password=SECRET), become_password=SECRET,
                  command_timeout=1)
    assert host.status == "failed"
    assert "timed out" in host.reason or "did not answer" in host.reason
