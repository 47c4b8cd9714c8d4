"""How ``c.run`` waits (fleetops.api.fabric_wait), the run's eased GC and the SSH cipher
preference, on the real lab: Fabric's documented results, no thread per command, the
command timeout without a Timer, and a cipher OpenSSH itself offers."""

from __future__ import annotations

import gc
import io
import subprocess
import threading
import time

import pytest

import fleetops
from fleetops.api.fleet import RUN_GC_THRESHOLD, collector_eased

pytestmark = pytest.mark.lab


def _started_threads(func):
    """``func()`` and the names of the threads it started (threading.Thread.start)."""
    names: list[str] = []
    original = threading.Thread.start

    def start(self):
        names.append(type(self).__name__)
        return original(self)

    threading.Thread.start = start
    try:
        return func(), names
    finally:
        threading.Thread.start = original


def test_run_results_as_fabric_documents_them(lab_inventory):
    from invoke.exceptions import CommandTimedOut, UnexpectedExit

    def work(c):
        got = {}
        r = c.run("echo out; echo err >&2; exit 3", hide=True, warn=True)
        got["basic"] = (r.stdout, r.stderr, r.exited, r.ok)
        big = "head -c 3000000 /dev/zero | tr '\\0' a; head -c 1000000 /dev/zero | tr '\\0' b >&2"
        r = c.run(big, hide=True)  # both streams past Paramiko's window: no deadlock
        got["big"] = (len(r.stdout), set(r.stdout), len(r.stderr), set(r.stderr))
        shown = io.StringIO()
        r = c.run("echo shown", out_stream=shown)
        got["echo"] = (shown.getvalue(), r.stdout)
        got["stdin"] = c.run("cat", in_stream=io.StringIO("piped\n"), hide=True).stdout
        got["pty"] = c.run("echo pty", pty=True, hide=True).stdout
        try:
            c.run("exit 4", hide=True)
        except UnexpectedExit as exc:
            got["raised"] = exc.result.exited
        started = time.monotonic()
        try:
            c.run("sleep 20", timeout=0.5, hide=True)
        except CommandTimedOut as exc:
            got["timeout"] = (exc.timeout, time.monotonic() - started)
        return got

    result = fleetops.Fleet(lab_inventory, pattern="lab01:lab02").run(work)
    assert set(result.succeeded) == {"lab01", "lab02"}, result.failed
    for got in result.succeeded.values():
        assert got["basic"] == ("out\n", "err\n", 3, False)
        assert got["big"] == (3000000, {"a"}, 1000000, {"b"})
        assert got["echo"] == ("shown\n", "shown\n")
        assert got["stdin"] == "piped\n" and got["pty"] == "pty\r\n" and got["raised"] == 4
        assert got["timeout"][0] == 0.5 and 0.5 <= got["timeout"][1] < 5


def test_run_starts_no_thread_and_timeouts_need_no_timer(lab_inventory):
    def work(c):
        c.run("true", hide=True)  # the connection and its transport thread exist now
        plain = _started_threads(lambda: c.run("echo a; echo b >&2", hide=True, timeout=30))
        piped = _started_threads(lambda: c.run("cat", in_stream=io.StringIO("x"), hide=True))
        return (plain[0].stdout, plain[0].stderr, plain[1]), (piped[0].stdout, piped[1])

    result = fleetops.Fleet(lab_inventory, pattern="lab03", command_timeout=60).run(work)
    (out, err, plain), (echoed, piped) = result.succeeded["lab03"]
    assert (out, err, plain) == ("a\n", "b\n", [])  # no IO threads, no Timer
    assert echoed == "x" and piped == ["ExceptionHandlingThread"] * 3  # Invoke's IO threads


def test_a_killed_connection_ends_the_wait(lab, lab_inventory):
    def work(c):
        threading.Timer(0.5, c.transport.close).start()
        started = time.monotonic()
        try:
            c.run("sleep 20", hide=True)
        except Exception as exc:  # noqa: BLE001 (whatever Invoke raises for a lost channel)
            return type(exc).__name__, time.monotonic() - started
        return "returned", time.monotonic() - started

    result = fleetops.Fleet(lab_inventory, pattern="lab04").run(work)
    what, took = result.succeeded["lab04"]
    assert took < 5, (what, took)  # the wait ends with the channel, not with the command


def test_the_run_eases_the_collector_and_restores_it(lab_inventory):
    before = gc.get_threshold(), gc.get_freeze_count()
    seen = fleetops.Fleet(lab_inventory, pattern="lab05").run(
        lambda c: (gc.get_threshold()[0], gc.get_freeze_count() > 0)).succeeded["lab05"]
    assert seen == (RUN_GC_THRESHOLD, True)
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    with collector_eased(), collector_eased():
        assert gc.get_threshold()[0] == RUN_GC_THRESHOLD
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_the_cipher_is_an_aead_one_openssh_offers_too(lab_inventory):
    used = fleetops.Fleet(lab_inventory, pattern="lab06").run(
        lambda c: (c.transport.local_cipher, c.transport.remote_cipher)).succeeded["lab06"]
    assert used == ("aes128-gcm@openssh.com", "aes128-gcm@openssh.com")
    ssh = subprocess.run(["ssh", "-F", "/dev/null", "-G", "example.invalid"],
                         capture_output=True, text=True, check=True, timeout=10).stdout
    ciphers = next(ln.split()[1] for ln in ssh.splitlines() if ln.startswith("ciphers "))
    assert used[0] in ciphers.split(",")


def test_run_works_with_file_descriptors_past_1024(lab_inventory):
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # what a big run holds
    try:
        result = fleetops.Fleet(lab_inventory, pattern="lab07").run(
            lambda c: c.run("echo high", hide=True).stdout)
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert result.succeeded == {"lab07": "high\n"}, result.failed
