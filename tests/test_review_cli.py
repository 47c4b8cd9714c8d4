"""An unknown option is never taken as the command (or playbook) and run: exit 5 naming it.

Invoke gives a pending positional argument whatever token comes, so before the fix
``invoke run -i INV --becmoe`` ran ``--becmoe`` as the shell command on every host, and
``invoke run -i INV --limt web01 id`` said "No idea what 'id' is!".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _invoke(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(REPO), *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def test_unknown_option_is_not_run_as_the_command(tmp_path):
    inventory = tmp_path / "local.ini"
    inventory.write_text("me ansible_connection=local\n")
    marker = tmp_path / "ran"
    for args, flag in ((["--becmoe"], "--becmoe"), (["-z"], "-z"),
                       (["--limt", "me", f"touch {marker}"], "--limt"),
                       (["--becmoe=1", f"touch {marker}"], "--becmoe")):
        proc = _invoke("run", "-i", str(inventory), "--retry-file", "", *args, cwd=tmp_path)
        assert proc.returncode == 5, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith(f"fleetops: unknown option '{flag}'"), proc.stderr
        assert "Usage:" in proc.stderr and proc.stdout == ""
        assert not marker.exists()
    proc = _invoke("play", "-i", str(inventory), "--chekc", cwd=tmp_path)
    assert proc.returncode == 5 and "unknown option '--chekc'" in proc.stderr, proc.stderr
    proc = _invoke("run", "-i", str(inventory), "-jp", "me", "echo fine", cwd=tmp_path)
    assert proc.returncode == 0 and '"fine\\n"' in proc.stdout, proc.stderr


def test_every_option_of_every_task_has_help():
    """``invoke --help disk-report.schedule`` listed --forks, --timeout, --retry-file and
    --accept-new with no text. Checked in a fresh interpreter: Invoke pops each help
    entry when it first builds a task's arguments."""
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); import tasks; "
        "from invoke import Collection; c = Collection.from_module(tasks); "
        "print([f'{n} --{a.name}' for n in c.task_names "
        "for a in c[n].get_arguments() if not a.help])")
    proc = subprocess.run([sys.executable, "-c", check, str(REPO)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
