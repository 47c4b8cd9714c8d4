"""Benchmark helpers: run commands as child processes, time them, read their peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(slots=True)
class Sample:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    rc: int
    stdout: bytes


@dataclass(slots=True)
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def peak_rss_mib(self) -> float:
        return max(s.peak_rss_mib for s in self.samples)


def measure(argv: Sequence[str], stdin: bytes | None = None, cwd: Path = REPO,
                   timeout: float = 300.0, env: dict[str, str] | None = None) -> Sample:
    """One run of argv, reaped with wait4: wall time, the child tree's CPU and peak RSS.

    ``env``: variables set for the child on top of this process's environment."""
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=write_fd, stderr=subprocess.DEVNULL,
                            env=None if env is None else {**os.environ, **env})
    os.close(write_fd)
    if stdin:
        proc.stdin.write(stdin)
        proc.stdin.close()
    chunks = []
    deadline = started + timeout
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            proc.kill()
            break
    os.close(read_fd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                  proc.returncode, b"".join(chunks))


def interleave(series: Sequence[tuple[Series, Callable[[], Sample]]], runs: int,
               warmup: int = 1, log=None) -> None:
    """Alternate the contenders run by run so machine noise hits them alike."""
    for i in range(warmup + runs):
        for s, run_once in series:
            sample = run_once()
            if i >= warmup:
                s.samples.append(sample)
            if log is not None:
                tag = "warmup" if i < warmup else f"run {i - warmup + 1}"
                log(f"{s.name:>10} {tag:>7}: {sample.wall_s:.3f}s cpu={sample.cpu_s:.2f}s "
                    f"rc={sample.rc} rss={sample.peak_rss_mib:.1f}MiB")


def invoke_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "invoke", *args]


def jump_ssh_config(bastion: str, port: int, targets: str, key: Path, known_hosts: Path) -> str:
    """An ssh_config(5) for the jump benchmark, read by OpenSSH (``-F``) and by fleetops
    (as ``~/.ssh/config``): ``targets`` (a Host pattern) go through ``bastion``."""
    return (f"Host {bastion}\n  ProxyJump none\n"
            f"Host {targets}\n  ProxyJump root@{bastion}:{port}\n"
            f"Host *\n  User root\n  Port {port}\n  IdentityFile {key}\n"
            f"  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  ControlMaster no\n  KexAlgorithms curve25519-sha256\n")


def inventory_with_ssh_config(inventory: Path, config: Path, out: Path) -> Path:
    """A copy of a lab inventory whose hosts read ``config`` as ``ssh -F`` would
    (``ansible_ssh_common_args=-F...`` in ``[lab:vars]``, the file's last section)."""
    text = inventory.read_text()
    headers = [line.strip() for line in text.splitlines() if line.startswith("[")]
    if headers[-1:] != ["[lab:vars]"]:
        raise ValueError(f"{inventory}: [lab:vars] is not its last section")
    out.write_text(text.rstrip("\n") + f"\nansible_ssh_common_args=-F{config}\n")
    return out


def flood_command(host_name: str, mib: int, normal: str = "df -P") -> str:
    """A shell command for every host: ``host_name`` prints ``mib`` MiB (base64 of
    /dev/zero, in 76-column lines), every other host runs ``normal``."""
    import shlex

    raw = mib * 1024 * 1024 * 3 // 4
    return (f"if [ \"$(uname -n)\" = {shlex.quote(host_name)} ]; then "
            f"head -c {raw} /dev/zero | base64; else {normal}; fi")
