"""Shared fixtures: one real 16-host test lab per pytest session (see fleetops/lab/lab.py).

The test lab lives beside a user's demo lab: state ``.lab-test``, inventory
``inventory/lab-test.ini``, addresses 127.78.0.x:2222. Tests that use ``lab``
get every fault healed afterwards, so each test starts from a healthy fleet.

Several pytest sessions may run at once on one machine: each session holds an
flock on a *slot* for its whole life; slot 0 is the lab above, slot k > 0 uses
``.lab-test-k``, ``inventory/lab-test-k.ini`` and 127.(78+10k). A crashed
session's lock dies with it, and the next session of that slot removes its lab.

``mixed_lab`` (only for tests that ask for it) is the slot's ``--profile mixed`` lab:
``.lab-test[-k]-mixed``, ``inventory/lab-test[-k]-mixed.ini``, 127.(80+10k); see
docs/lab.md for its hosts, groups and ``mixed_lab.mixed()`` facts.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAB_HOSTS = 16
LAB_SLOTS = 5
MIXED_LAB_HOSTS = 2  # ordinary hosts of the mixed lab, next to one host of each kind
_LAB_TIMING: dict[str, float] = {}
# `invoke disk-report` keeps a history under $XDG_DATA_HOME by default: tests (and the
# commands they start) get a throwaway one, never the user's own.
_DATA_HOME = tempfile.mkdtemp(prefix="fleetops-test-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME


@dataclass(frozen=True)
class LabSlot:
    """Where a session's labs live: the main test lab and a scratch one for up/down tests."""

    index: int
    fd: int

    def _suffix(self, extra: str = "") -> str:
        return "-test" + (f"-{self.index}" if self.index else "") + extra

    def paths(self, extra: str = "") -> tuple[Path, Path, str]:
        """(state dir, inventory, prefix) of the main lab, or of a scratch lab (``extra``),
        or of the mixed lab (``extra="-mixed"``)."""
        offset = 2 if extra == "-mixed" else (1 if extra else 0)
        prefix = f"127.{78 + 10 * self.index + offset}"
        return (REPO / f".lab{self._suffix(extra)}",
                REPO / "inventory" / f"lab{self._suffix(extra)}.ini", prefix)


def lab_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (unshare, nsenter, mount)"
    for tool in ("/usr/sbin/sshd", "unshare", "nsenter", "setsid", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            return f"the lab needs {tool} (apt-get install openssh-server util-linux)"
    return None


def _lock_path(index: int) -> str:
    base = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    return os.path.join(base, f"fleetops-lab-test-{index}.lock")


def _claim_slot(wait: float = 600.0) -> LabSlot:
    """Take the first free slot; if all are busy, wait for slot 0."""
    for index in range(LAB_SLOTS):
        fd = os.open(_lock_path(index), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return LabSlot(index, fd)
        except BlockingIOError:
            os.close(fd)
    print("lab: all test lab slots busy, waiting for slot 0", file=sys.stderr)
    fd = os.open(_lock_path(0), os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return LabSlot(0, fd)
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                pytest.skip("lab: no free test lab slot (other pytest sessions hold them)")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def lab_slot():
    """This session's exclusive :class:`LabSlot` (held until the session ends)."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    slot = _claim_slot()
    try:
        yield slot
    finally:
        os.close(slot.fd)


@pytest.fixture(scope="session")
def lab(lab_slot):
    """The session's running test lab (a :class:`fleetops.lab.lab.Lab`)."""
    from fleetops.lab.lab import Lab

    the_lab = Lab(*lab_slot.paths())
    the_lab.down()  # leftovers of a crashed session of this slot
    started = time.monotonic()
    the_lab.up(LAB_HOSTS)
    _LAB_TIMING["up"] = the_lab.up_seconds = time.monotonic() - started
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(scope="session")
def mixed_lab(lab_slot):
    """The session's ``--profile mixed`` lab (a :class:`fleetops.lab.lab.Lab`; facts via
    ``mixed_lab.mixed()``), started on first use only."""
    from fleetops.lab.lab import Lab

    for tool in ("ip", "openssl", "useradd", "sudo"):
        if not shutil.which(tool):
            pytest.skip(f"the mixed lab needs {tool} (apt-get install iproute2 openssl passwd sudo)")
    the_lab = Lab(*lab_slot.paths("-mixed"))
    the_lab.down()
    started = time.monotonic()
    the_lab.up(MIXED_LAB_HOSTS, profile="mixed")
    _LAB_TIMING["mixed"] = the_lab.up_seconds = time.monotonic() - started
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture(autouse=True)
def _heal_lab_after_test(request):
    """Undo every lab fault after each test that used a lab."""
    labs = [request.getfixturevalue(name) for name in ("lab", "mixed_lab")
            if name in request.fixturenames]
    yield
    for the_lab in labs:
        the_lab.heal("all")


@pytest.fixture
def lab_inventory(lab) -> Path:
    """Path of the test lab's INI inventory."""
    return lab.inventory_path


@pytest.fixture
def lab_ssh(lab):
    """``lab_ssh(host, command, connect_timeout=5, timeout=20)``: run over the real ssh client."""

    def run(host: str, command: str, connect_timeout: float = 5, timeout: float = 20):
        h = lab.host(host)
        argv = ["ssh", "-F", "/dev/null", "-i", str(lab.client_key),
                "-o", f"UserKnownHostsFile={lab.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                "-o", f"ConnectTimeout={connect_timeout:g}",
                "-p", str(h.port), f"root@{h.address}", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False)

    return run


def pytest_terminal_summary(terminalreporter):
    if "up" in _LAB_TIMING:
        terminalreporter.write_line(
            f"lab: {LAB_HOSTS}-host test lab started in {_LAB_TIMING['up']:.2f}s")
    if "mixed" in _LAB_TIMING:
        terminalreporter.write_line(
            f"lab: mixed test lab started in {_LAB_TIMING['mixed']:.2f}s")


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1: yields (received messages, port)."""
    import socket

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    inbox: list = []

    class Keep(Message):
        def handle_message(self, message):
            inbox.append(message)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def pytest_unconfigure(config):
    shutil.rmtree(_DATA_HOME, ignore_errors=True)
