"""``invoke --list`` / ``--help TASK`` into a pipe its reader already closed: exit 141 and
no traceback (as the tasks do, README "Results and exit codes")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["--list"], ["--help", "run"]])
def test_a_closed_stdout_is_exit_141_without_a_traceback(args):
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    proc.stdout.close()  # long before invoke has started: its first write fails
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err
