"""dirsync never wipes a mirror because a disk went away (issue 11, point 9).

The issue's scenario for real: the source is a tmpfs mounted in a private mount
namespace (``unshare -m``), 30 files are mirrored, the tmpfs is unmounted and the bare
mountpoint directory gets one stray file. The mirror must keep its 30 files and the
status must say why. Plus the share guard: a sync that would delete more than
``--max-delete-share`` percent of the target is refused before rsync runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ops(*argv: str, timeout: float = 20) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, json.loads(proc.stdout)


def fill(root: Path, count: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"f{i}").write_text(f"f {i}\n")


needs_rsync = pytest.mark.skipif(not shutil.which("rsync"), reason="rsync is not installed")

SCENARIO = textwrap.dedent("""
    import json, os, subprocess, sys, time
    tmp, repo = sys.argv[1], sys.argv[2]
    src, dst, state = tmp + "/src", tmp + "/dst", tmp + "/state"

    def ops(action, *argv):
        out = subprocess.run([sys.executable, "-m", "ops", "dirsync", action, "--name", "g",
                              "--state-dir", state, *argv], cwd=repo, capture_output=True,
                             text=True, timeout=30).stdout
        return json.loads(out)

    def files(path):
        return sorted(os.listdir(path)) if os.path.isdir(path) else []

    def wait(predicate, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        return False

    os.makedirs(src)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "fleetops-test", src], check=True)
    for i in range(30):
        with open("%s/f%02d" % (src, i), "w") as handle:
            handle.write("file %d\\n" % i)
    started = ops("start", "--", "--source", src, "--target", dst, "--poll", "0.1",
                  "--wait", "0.1", *sys.argv[3:])
    report = {"started": started["ok"], "mirrored": wait(lambda: len(files(dst)) == 30)}
    subprocess.run(["umount", "-l", src], check=True)  # lazy: a poll may be reading it
    with open(src + "/stray", "w") as handle:  # the bare mountpoint directory
        handle.write("stray\\n")

    def refused():
        event = ops("status")["data"].get("last_event") or {}
        return event.get("result") == "refused" and event

    report["refused"] = wait(refused)
    time.sleep(0.5)  # a few more polls: nothing may change
    report["after_unmount"] = files(dst)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "other-disk", src], check=True)
    with open(src + "/only", "w") as handle:  # another disk mounted there
        handle.write("only\\n")
    report["refused_other"] = wait(lambda: "now device" in str((refused() or {}).get("msg"))
                                   and refused())
    time.sleep(0.5)
    report["after_other_disk"] = files(dst)
    report["status"] = ops("status")["data"]
    report["stopped"] = ops("stop")["ok"]
    subprocess.run(["umount", src], check=False)
    print(json.dumps(report))
""")


def in_private_mount_namespace(tmp_path: Path, *extra: str) -> dict:
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                           str(script), str(tmp_path), str(REPO), *extra],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_rsync
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare(1) for a private mount namespace")
@pytest.mark.parametrize("extra", [(), ("--max-delete-share", "100")])
def test_unmounted_source_with_a_stray_file_never_wipes_the_mirror(tmp_path: Path, extra):
    """With the share guard off too (100): the mount guard alone keeps the 30 files."""
    report = in_private_mount_namespace(tmp_path, *extra)
    thirty = [f"f{i:02d}" for i in range(30)]
    assert report["started"] and report["mirrored"], report
    assert report["refused"], report
    assert "is no longer the mount it was at start" in report["refused"]["msg"]
    assert "not a mountpoint" in report["refused"]["msg"]
    assert report["after_unmount"] == thirty
    assert report["refused_other"], report["status"]
    assert report["after_other_disk"] == thirty
    last = report["status"]["last_event"]
    assert last["result"] == "refused" and "the disk went away?" in last["msg"]
    assert report["stopped"]


@needs_rsync
def test_a_sync_deleting_more_than_the_share_is_refused_before_rsync(tmp_path: Path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    fill(src, 10)
    base = ["dirsync", "run", "--", "--source", str(src), "--target", str(dst)]
    rc, doc = ops(*base)
    assert rc == 0 and doc["data"]["counts"]["transferred"] == 10
    for i in range(6):
        (src / f"f{i}").unlink()
    rc, doc = ops(*base)
    assert rc == 1 and doc["data"]["result"] == "refused"
    assert "would delete 6 of the 10 entries" in doc["error"]
    assert "--max-delete-share 50%" in doc["error"]
    assert doc["data"]["would_delete"] == {"entries": 6, "of": 10}
    assert "argv" not in doc["data"]  # rsync never ran
    assert len(list(dst.iterdir())) == 10
    rc, doc = ops(*base, "--max-delete-share", "60")
    assert rc == 0 and doc["data"]["counts"]["deleted"] == 6
    assert sorted(p.name for p in dst.iterdir()) == ["f6", "f7", "f8", "f9"]


@needs_rsync
def test_share_zero_refuses_any_deletion_and_bad_values_are_refused(tmp_path: Path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    fill(src, 3)
    base = ["dirsync", "run", "--", "--source", str(src), "--target", str(dst)]
    assert ops(*base)[0] == 0
    (src / "f0").unlink()
    rc, doc = ops(*base, "--max-delete-share", "0")
    assert rc == 1 and "would delete 1 of the 3 entries" in doc["error"]
    for bad in ("-1", "101", "nan"):
        rc, doc = ops(*base, "--max-delete-share", bad)
        assert rc == 2 and "--max-delete-share must be 0..100" in doc["error"], doc


def test_mount_identity_of_a_plain_directory_and_of_root(tmp_path: Path):
    from ops import dirsync

    assert dirsync.mount_identity(str(tmp_path)) is None
    device, mount_id, fsid = dirsync.mount_identity("/")
    assert device == os.stat("/").st_dev and isinstance(mount_id, int)
    assert fsid == os.statvfs("/").f_fsid
    assert dirsync._unescape_mount(b"/srv/a\\040b\\134c") == b"/srv/a b\\c"
