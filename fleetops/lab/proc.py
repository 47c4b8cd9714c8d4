"""Linux /proc helpers for the lab: liveness, namespaces, markers, signalling, reaping."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from fleetops.errors import FleetopsError

#: Environment variables that mark lab processes; the value is ``<state dir>/<host dir>``.
MARKERS = ("FLEETOPS_LAB_HOLDER", "FLEETOPS_LAB_SSHD", "FLEETOPS_LAB_NS")


class LabError(FleetopsError):
    """A lab problem: one line, exit 4."""


def proc_state(pid: int | None) -> str | None:
    """The one-letter state of ``pid`` (R, S, T, Z, ...) or None if it does not exist."""
    if not pid:
        return None
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[-1].split()
    return fields[0] if fields else None


def alive(pid: int | None) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    return proc_state(pid) not in (None, "Z", "X")


def mnt_ns(pid: int | str) -> str | None:
    """The mount namespace identity (``mnt:[4026...]``) of ``pid``."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def cmdline(pid: int) -> str:
    """The command line as shown by ps (sshd rewrites its own, environ included)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_lab_sshd(pid: int, config: str) -> bool:
    """True if ``pid`` is an sshd listener started with ``-f config`` (or a prefix of it)."""
    line = cmdline(pid)
    return line.startswith(("sshd:", "/usr/sbin/sshd")) and f" -f {config}" in line


def marker_of(pid: int, state_dir: str) -> str | None:
    """The marker naming ``pid`` as a process of the lab in ``state_dir``, if any."""
    env = environ(pid)
    prefix = state_dir.rstrip("/") + "/"
    for key in MARKERS:
        if env.get(key, "").startswith(prefix):
            return key
    if is_lab_sshd(pid, prefix):
        return "FLEETOPS_LAB_SSHD"
    return None


def marked_pids(state_dir: str) -> dict[int, str]:
    """Every live process carrying a lab marker for ``state_dir``: pid -> marker name."""
    found = {}
    me = os.getpid()
    for pid in all_pids():
        if pid != me:
            key = marker_of(pid, state_dir)
            if key:
                found[pid] = key
    return found


def pids_in_namespaces(namespaces: set[str]) -> list[int]:
    """Processes whose mount namespace is one of ``namespaces`` (never ours or init's)."""
    safe = {mnt_ns("self"), mnt_ns(1)}
    wanted = namespaces - safe
    if not wanted:
        return []
    return [pid for pid in all_pids() if mnt_ns(pid) in wanted]


def signal_pid(pid: int | None, sig: int) -> bool:
    """Send ``sig``; False if the process is gone."""
    if not pid:
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def reap(pids: Iterable[int]) -> None:
    """Collect exit statuses of any of ``pids`` that are our own children."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until all ``pids`` are gone (reaping our children); return the survivors."""
    pending = [p for p in pids if p]
    deadline = time.monotonic() + timeout
    while True:
        reap(pending)
        pending = [p for p in pending if alive(p)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.01)


def kill_all(pids: Iterable[int], timeout: float = 5.0) -> list[int]:
    """SIGKILL ``pids`` (stopped processes included) and wait; return survivors."""
    pids = [p for p in pids if p and p != os.getpid()]
    for pid in pids:
        signal_pid(pid, signal.SIGKILL)
    return wait_gone(pids, timeout)


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def mounts(pid: int | None) -> list[tuple[str, str]]:
    """(root within its filesystem, mount point) of each mount in ``pid``'s namespace."""
    if not pid:
        return []
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            found.append((fields[3], fields[4]))
    return found
