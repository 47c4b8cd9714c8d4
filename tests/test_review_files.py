"""Files fleetops reads the way ssh does (key files, known_hosts, ssh_config) named by an
inventory: ``/dev/zero``, a FIFO or a huge file is refused at once, never read forever.

Before fleetops.core.boundedread, ``ansible_ssh_private_key_file=/dev/zero`` grew the control
process past 20 GB and ignored ``--deadline``; a FIFO or ``/dev/zero`` as known_hosts or
``-F`` hung the run. ``/dev/null`` still reads as empty (``ssh -F /dev/null``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetops.core.boundedread import read_bounded

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def _run(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), "run", "-i",
                           str(inventory), "--retry-file", "", *args, "echo ran"],
                          capture_output=True, text=True, timeout=60, check=False)


def _inventory(lab, tmp_path: Path, extra: str) -> Path:
    host = lab.host("lab01")
    path = tmp_path / "inv.ini"
    path.write_text(f"h ansible_host={host.address} ansible_port={host.port} "
                    f"ansible_user=root {extra}\n")
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = str(tmp_path / "fifo")
    os.mkfifo(path)
    return path


def test_unreadable_ssh_files_fail_fast(lab, tmp_path, fifo):
    key, known = lab.client_key, lab.known_hosts
    cases = {  # inventory vars -> (exit code, text in the output)
        f"ansible_ssh_private_key_file=/dev/zero fleetops_known_hosts={known}":
            (3, "/dev/zero: not a regular file"),
        f"ansible_ssh_private_key_file={fifo} fleetops_known_hosts={known}":
            (3, f"{fifo}: not a regular file"),
        f"ansible_ssh_private_key_file={key} fleetops_known_hosts=/dev/zero":
            (3, "/dev/zero: cannot read known_hosts: not a regular file"),
        f"ansible_ssh_private_key_file={key} fleetops_known_hosts={fifo}":
            (3, "cannot read known_hosts: not a regular file"),
        f"ansible_ssh_private_key_file={key} fleetops_known_hosts={known} "
        "ansible_ssh_common_args='-F /dev/zero'":
            (4, "/dev/zero: cannot read ssh config: not a regular file"),
        f"ansible_ssh_private_key_file={key} fleetops_known_hosts={known} "
        "ansible_ssh_common_args='-F /dev/null -o CertificateFile=/dev/zero'":
            (0, "h | ran"),
    }
    for extra, (code, text) in cases.items():
        started = time.monotonic()
        proc = _run(_inventory(lab, tmp_path, extra), "--deadline", "20")
        assert time.monotonic() - started < 15, extra
        assert proc.returncode == code, (extra, proc.stdout, proc.stderr)
        assert text in proc.stdout + proc.stderr, (extra, proc.stdout, proc.stderr)


def test_read_bounded_limits(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2049)
    with pytest.raises(OSError, match="larger than"):
        read_bounded(str(big), 2048)
    assert read_bounded(str(big), 4096) == b"x" * 2049
    assert read_bounded(os.devnull, 10) == b""
    with pytest.raises(IsADirectoryError):
        read_bounded(str(tmp_path), 10)
