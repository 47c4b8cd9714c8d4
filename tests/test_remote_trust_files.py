"""``ops/files`` works on file descriptors: a symlink at, or swapped in at, the
destination never redirects a chmod, chown or write to another file."""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
from pathlib import Path

import pytest

from ops import _atomic, files
from ops._contract import ProgramError


def args_for(dest: Path, content: bytes, **extra) -> argparse.Namespace:
    values = {"dest": str(dest), "size": len(content),
              "sha256": hashlib.sha256(content).hexdigest(), "mode": None, "owner": None,
              "group": None, "backup": False, "parents": False, "diff": False, "check": False}
    values.update(extra)
    return argparse.Namespace(**values)


def run(monkeypatch, dest: Path, content: bytes, **extra):
    monkeypatch.setattr(files, "_content", lambda args: content)
    return files.run(args_for(dest, content, **extra))


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    """A root-only file an attacker would like to expose or overwrite."""
    path = tmp_path / "shadow"
    path.write_bytes(b"root:secret\n")
    path.chmod(0o600)
    return path


def swap_after_planning(monkeypatch, dest: Path, secret: Path) -> None:
    """Between the check (lstat, open, read) and the change, dest becomes a symlink."""
    plan = files._plan

    def plan_then_swap(*args):
        result = plan(*args)
        dest.rename(dest.with_name("moved-away"))
        dest.symlink_to(secret)
        return result

    monkeypatch.setattr(files, "_plan", plan_then_swap)


def test_symlink_at_the_destination_is_refused(monkeypatch, tmp_path: Path, secret: Path):
    dest = tmp_path / "app.conf"
    dest.symlink_to(secret)
    with pytest.raises(ProgramError, match="not a regular file"):
        run(monkeypatch, dest, b"x\n", mode=0o644)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_bytes() == b"root:secret\n"


def test_mode_change_race_never_chmods_the_symlink_target(monkeypatch, tmp_path, secret):
    dest = tmp_path / "app.conf"
    dest.write_bytes(b"same\n")
    dest.chmod(0o600)
    swap_after_planning(monkeypatch, dest, secret)
    outcome = run(monkeypatch, dest, b"same\n", mode=0o644, owner="0", group="0")
    assert outcome.changed and not outcome.data["content_changed"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600  # the old code made it 0644
    assert stat.S_IMODE((tmp_path / "moved-away").stat().st_mode) == 0o644  # the file checked


def test_content_change_race_replaces_the_symlink_not_its_target(monkeypatch, tmp_path, secret):
    dest = tmp_path / "app.conf"
    dest.write_bytes(b"old\n")
    swap_after_planning(monkeypatch, dest, secret)
    run(monkeypatch, dest, b"new\n", mode=0o640, backup=True)
    assert secret.read_bytes() == b"root:secret\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not dest.is_symlink() and dest.read_bytes() == b"new\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640


def test_fifo_or_device_at_the_destination_is_refused_without_blocking(monkeypatch, tmp_path):
    dest = tmp_path / "fifo"
    os.mkfifo(dest)
    with pytest.raises(ProgramError, match="not a regular file"):
        run(monkeypatch, dest, b"x\n")


def test_temp_file_is_exclusive_and_private_until_renamed(monkeypatch, tmp_path: Path):
    """A planted file or symlink under a temp name is never opened (O_EXCL|O_NOFOLLOW)."""
    names = iter([b"\x00" * 6, b"\x01" * 6])
    monkeypatch.setattr(_atomic.os, "urandom", lambda n: next(names))
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / ".out.fleetops-000000000000").symlink_to(victim)
    seen = []
    real_fchmod = os.fchmod

    def spy(fd, mode):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fchmod(fd, mode)

    monkeypatch.setattr(_atomic.os, "fchmod", spy)
    _atomic.write_atomic(str(tmp_path / "out"), b"data", 0o644)
    assert victim.read_bytes() == b"keep"
    assert (tmp_path / "out").read_bytes() == b"data" and seen[0] == 0o600
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o644
