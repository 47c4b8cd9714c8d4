"""A timed-out command is killed on the host (fleetops.core.reap), on the real lab:
``invoke run --command-timeout 2 'sleep 300'`` leaves no ``sleep`` behind, with and
without --become, and a command that ignores SIGTERM is SIGKILLed after the grace period.
What runs on a host is read from inside its own PID namespace."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from authlab import PASSWORDS, AuthSshd

from fleetops.core.reap import GRACE_S
from fleetops.core.runner import Fleet, RunOptions, exec_result

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[1]
PS = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done"


def processes(lab, host: str, needle: str) -> list[str]:
    """Command lines on ``host`` that contain ``needle`` (not this scan's own)."""
    proc = lab.ns_run(host, ["/bin/sh", "-c", PS], capture_output=True, text=True,
                      timeout=20, check=False)
    return [line for line in proc.stdout.splitlines() if needle in line and "/proc/" not in line]


def run(lab, host: str, command: str, *options: str) -> tuple[dict, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i", str(lab.inventory_path),
         "-p", host, "--json", "--command-timeout", "2", *options, command],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)["hosts"][host], time.monotonic() - started


@pytest.mark.parametrize("host,options,seconds", [
    ("lab09", (), "301"),
    ("lab10", ("--become",), "302"),
    ("lab11", ("--become", "--become-user", "nobody"), "303"),
])
def test_timed_out_sleep_is_gone_from_the_host(lab, host, options, seconds):
    result, elapsed = run(lab, host, f"sleep {seconds}; echo never", *options)
    assert result["status"] == "failed"
    assert result["reason"].startswith("command timed out after ")
    assert "(" not in result["reason"], result["reason"]  # the kill worked
    assert processes(lab, host, f"sleep {seconds}") == []
    assert elapsed < 2 + 8


@pytest.mark.parametrize("host,options", [("lab12", ()), ("lab13", ("--become",))])
def test_a_command_ignoring_sigterm_is_sigkilled(lab, host, options):
    command = "trap '' TERM; sleep 304 & sleep 305; echo never"
    result, elapsed = run(lab, host, command, *options)
    assert result["status"] == "failed" and "timed out" in result["reason"]
    assert "(" not in result["reason"], result["reason"]
    assert processes(lab, host, "sleep 30") == []
    assert elapsed >= 2 + GRACE_S - 0.5  # SIGTERM was not enough: the grace period passed


@pytest.fixture(scope="module")
def sshd(lab, tmp_path_factory):
    server = AuthSshd(lab, "lab15", tmp_path_factory.mktemp("reapsshd"))
    yield server
    server.stop()


def test_the_kill_answers_sudo_password_prompts_too(lab, sshd):
    """alice's sudo asks for a password: the kill (as root) is let in the same way."""
    target = sshd.target("alice", key_files=(str(sshd.client_key),))
    options = RunOptions(command_timeout=2, become=True, become_password=PASSWORDS["alice"])
    with Fleet(options, lambda host: target) as fleet:
        result = fleet.run([SimpleNamespace(name=target.name)],
                           lambda s: exec_result(s.host.name, s.exec("sleep 306")))
    host = result.hosts[target.name]
    assert host.status == "failed" and host.reason.startswith("command timed out after ")
    assert "(" not in host.reason, host.reason
    assert processes(lab, "lab15", "sleep 306") == []
