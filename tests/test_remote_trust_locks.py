"""Scheduled jobs lock in a directory only their user (or root) can write: a lock file or
symlink planted by someone else, at the old (/run/lock) or the new path, never makes a
root job write through it or stop.

``ops/cron`` runs for real under ``--root tmp_path``; the job line it writes is then run
the way cron runs it (unescaped, through /bin/sh) as root.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from ops import _crontab as ct

REPO = Path(__file__).resolve().parents[1]
NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("flock"),
                                reason="needs root and flock(1)")


def cron(root: Path, *args: str) -> dict:
    proc = subprocess.run(["python3", "-m", "ops", "cron", *args, "--root", str(root)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    return json.loads(proc.stdout)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc/cron.d").mkdir(parents=True, mode=0o755)
    (tmp_path / "run/lock").mkdir(parents=True)
    (tmp_path / "run/lock").chmod(0o1777)
    return tmp_path


def install(root: Path, name: str = "nightly", user: str = "root") -> dict:
    return cron(root, "install", "--name", name, "--target", "cron.d", "--user", user,
                "--schedule", "@daily", "--job", "echo ran >> " + str(root / "ran"))


def run_job_as_cron_does(root: Path, name: str = "nightly") -> subprocess.CompletedProcess:
    line = (root / "etc/cron.d" / name).read_text().splitlines()[-1]
    command = ct.unescape_command(line.split(None, 2)[2])  # "@daily root COMMAND"
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                          timeout=30, check=False)


def test_lock_lives_in_a_root_only_directory_not_in_run_lock(root: Path):
    doc = install(root)
    assert doc["ok"] and doc["changed"], doc
    base = root / "var/lib/fleetops/lock"
    text = (root / "etc/cron.d/nightly").read_text()
    assert f"flock -n {base}/fleetops-nightly.lock " in text and "/run/lock" not in text
    info = base.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o755)
    assert run_job_as_cron_does(root).returncode == 0
    assert (root / "ran").read_text() == "ran\n" and (base / "fleetops-nightly.lock").is_file()


def test_planted_symlink_at_the_old_path_is_never_written_through(root: Path):
    victim = root / "etc/nologin"
    (root / "run/lock/fleetops-nightly.lock").symlink_to(victim)
    assert install(root)["ok"]
    assert run_job_as_cron_does(root).returncode == 0
    assert not victim.exists() and (root / "ran").exists()


def test_lock_held_by_another_user_at_the_old_path_does_not_stop_the_job(root: Path):
    planted = root / "run/lock/fleetops-nightly.lock"
    planted.touch()
    os.chown(planted, NOBODY, NOBODY)
    with open(planted) as held:
        import fcntl

        fcntl.flock(held, fcntl.LOCK_EX)
        assert install(root)["ok"]
        assert run_job_as_cron_does(root).returncode == 0
    assert (root / "ran").exists()


def test_symlinked_lock_directory_is_refused(root: Path):
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (root / "var/lib/fleetops").mkdir(parents=True)
    (root / "var/lib/fleetops/lock").symlink_to(elsewhere)
    doc = install(root)
    assert doc["ok"] is False and "a symlink or not a directory" in doc["error"]
    assert not (root / "etc/cron.d/nightly").exists() and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("owner, mode", [(NOBODY, 0o755), (0, 0o777), (0, 0o1777)])
def test_lock_directory_of_another_user_or_writable_by_others_is_refused(root, owner, mode):
    base = root / "var/lib/fleetops/lock"
    base.mkdir(parents=True)
    os.chown(base, owner, owner)
    base.chmod(mode)
    doc = install(root)
    assert doc["ok"] is False and "refusing to lock jobs in it" in doc["error"], doc
    assert not (root / "etc/cron.d/nightly").exists()


def test_another_users_job_locks_in_its_own_private_directory(root: Path):
    doc = install(root, user="nobody")
    assert doc["ok"], doc
    own = root / "var/lib/fleetops/lock/nobody"
    info = own.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (NOBODY, 0o700)
    assert f"flock -n {own}/fleetops-nightly@nobody.lock " in (root / "etc/cron.d/nightly").read_text()
    os.chown(own, 0, 0)  # someone else's now: refused, not used
    assert "refusing to lock jobs in it" in install(root, user="nobody")["error"]


def test_daemon_state_dir_under_a_shared_non_sticky_parent_is_refused(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could rename our state dir away and plant another
    proc = subprocess.run(["python3", "-m", "ops", "dirsync", "start", "--name", "x",
                           "--state-dir", str(shared / "state"), "--", "--source",
                           str(tmp_path), "--target", str(tmp_path / "t")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and "without the sticky bit (mode 777)" in doc["error"], doc
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot replace our entries
    proc = subprocess.run(["python3", "-m", "ops", "dirsync", "status", "--name", "x",
                           "--state-dir", str(shared / "state")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout)["ok"] is True, proc.stdout
