"""Time bounds and control-side files against the real lab (issue 11, points 4 and 6).

A host whose command never ends is cut by the host deadline (derived from the command
timeout unless ``--deadline`` is given); the other hosts, the recap, the exit code and
the retry file are all still there. Files named by options follow fleetops.safefile's rule.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEVER_ENDS = 'case "$(hostname)" in lab02) exec sleep 100000;; esac; hostname'

pytestmark = pytest.mark.lab


def invoke(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_never_ending_host_is_cut_by_the_deadline_and_the_run_finishes(lab_inventory,
                                                                       tmp_path):
    retry = tmp_path / "r.retry"
    started = time.monotonic()
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab01:lab02:lab03",
                  "--command-timeout", "0", "--deadline", "3", "--retry-file", str(retry),
                  NEVER_ENDS)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stderr
    assert "host deadline of 3s exceeded" in proc.stdout
    assert "RECAP" in proc.stdout and "3 hosts in" in proc.stdout
    assert retry.read_text().splitlines()[1:] == ["lab02"]


def test_command_timeout_alone_derives_the_deadline(lab_inventory, tmp_path):
    proc = invoke("run", "-i", str(lab_inventory), "-p", "lab01:lab02", "--json",
                  "--command-timeout", "2", "--retry-file", str(tmp_path / "r"), NEVER_ENDS)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2
    assert doc["hosts"]["lab01"]["status"] == "ok"
    stuck = doc["hosts"]["lab02"]
    assert stuck["status"] == "failed" and stuck["duration"] < 2 + 10 + 5 + 2, stuck


def test_retry_file_on_a_device_and_an_empty_run_keep_dev_null(lab_inventory):
    for command in ("false", "true"):  # failures written through, then nothing to remove
        proc = invoke("run", "-i", str(lab_inventory), "-p", "lab01", "--retry-file",
                      "/dev/null", command)
        assert proc.returncode in (0, 2), proc.stderr
        assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
