"""``ops/files`` (the template/copy program) on this machine, in a temporary directory."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def files(*args: str, content: bytes | None = None) -> tuple[int, dict]:
    """Run ops/files; ``content`` goes to stdin with a matching --size/--sha256."""
    argv = list(args)
    if content is not None:
        argv += [f"--size={len(content)}", f"--sha256={hashlib.sha256(content).hexdigest()}"]
    proc = subprocess.run([sys.executable, "-m", "ops", "files", *argv], input=content or b"",
                          capture_output=True, cwd=REPO, timeout=30, check=False)
    return proc.returncode, json.loads(proc.stdout)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_then_unchanged_then_mode_only(tmp_path):
    dest = tmp_path / "etc" / "app.conf"
    rc, doc = files(f"--dest={dest}", "--mode=0640", content=b"a=1\n")
    assert rc == 1 and "does not exist" in doc["error"]  # no --parents: refuse
    rc, doc = files(f"--dest={dest}", "--mode=0640", "--parents", content=b"a=1\n")
    assert rc == 0 and doc["changed"] and doc["data"]["existed"] is False
    assert dest.read_text() == "a=1\n" and mode_of(dest) == 0o640
    rc, doc = files(f"--dest={dest}", "--mode=0640", content=b"a=1\n")
    assert rc == 0 and not doc["changed"]
    inode = dest.stat().st_ino
    rc, doc = files(f"--dest={dest}", "--mode=0600", "--diff", content=b"a=1\n")
    assert doc["changed"] and not doc["data"]["content_changed"]
    assert doc["data"]["diff"] == "mode: 0640 -> 0600\n"
    assert mode_of(dest) == 0o600 and dest.stat().st_ino == inode  # chmod, no rewrite
    rc, doc = files(f"--dest={dest}", content=b"a=1\n")  # no --mode: keep it
    assert not doc["changed"] and mode_of(dest) == 0o600


def test_check_mode_and_diff_change_nothing(tmp_path):
    dest = tmp_path / "motd"
    dest.write_text("old\nsame\n")
    os.chmod(dest, 0o644)
    rc, doc = files(f"--dest={dest}", "--check", "--diff", content=b"new\nsame\n")
    assert rc == 0 and doc["changed"] and doc["data"]["check"]
    assert "-old\n+new\n same\n" in doc["data"]["diff"]
    assert doc["data"]["diff"].startswith(f"--- before{dest}\n+++ after{dest}\n")
    assert dest.read_text() == "old\nsame\n"
    rc, doc = files(f"--dest={dest}", content=b"new\nsame\n")
    assert "diff" not in doc["data"]  # only with --diff
    assert dest.read_text() == "new\nsame\n"
    assert [p.name for p in tmp_path.iterdir()] == ["motd"]  # no temp file left


def test_backup_keeps_the_replaced_file(tmp_path):
    dest = tmp_path / "conf"
    dest.write_text("v1\n")
    rc, doc = files(f"--dest={dest}", "--backup", content=b"v2\n")
    backup = Path(doc["data"]["backup"])
    assert backup.parent == tmp_path and backup.name.startswith("conf.")
    assert backup.read_text() == "v1\n" and dest.read_text() == "v2\n"
    rc, doc = files(f"--dest={dest}", "--backup", content=b"v2\n")
    assert not doc["changed"] and doc["data"]["backup"] is None


def test_binary_content_and_a_short_transfer_is_refused(tmp_path):
    dest = tmp_path / "blob"
    rc, doc = files(f"--dest={dest}", "--diff", content=b"\x00\x01binary")
    assert rc == 0 and doc["changed"]
    assert dest.read_bytes() == b"\x00\x01binary"
    assert "binary or large content differs: 0 -> 8 bytes" in doc["data"]["diff"]
    digest = hashlib.sha256(b"complete\n").hexdigest()
    proc = subprocess.run([sys.executable, "-m", "ops", "files", f"--dest={dest}", "--size=9",
                           f"--sha256={digest}"], input=b"compl", capture_output=True,
                          cwd=REPO, timeout=30, check=False)
    assert proc.returncode == 1
    assert "read 5 bytes, expected 9" in json.loads(proc.stdout)["error"]
    rc, doc = files(f"--dest={dest}", "--size=9", f"--sha256={digest}", content=None)
    assert rc == 1 and "read 0 bytes" in doc["error"]
    assert dest.read_bytes() == b"\x00\x01binary"


def test_refuses_non_regular_files_and_bad_input(tmp_path):
    (tmp_path / "dir").mkdir()
    rc, doc = files(f"--dest={tmp_path / 'dir'}", content=b"x")
    assert rc == 1 and "not a regular file" in doc["error"]
    rc, doc = files("--dest=relative", content=b"x")
    assert rc == 2 and "absolute" in doc["error"]
    proc = subprocess.run([sys.executable, "-m", "ops", "files", f"--dest={tmp_path / 'x'}",
                           "--size=1", "--sha256=00"], input=b"x", capture_output=True,
                          cwd=REPO, timeout=30, check=False)
    assert "does not match --sha256" in json.loads(proc.stdout)["error"]
    assert not (tmp_path / "x").exists()
    rc, doc = files(f"--dest={tmp_path / 'x'}", "--owner=no-such-user-here", content=b"x")
    assert rc == 1 and "no such user" in doc["error"]
