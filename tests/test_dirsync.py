"""dirsync with real rsync on temporary trees: latency, debounce, safety guards, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
POLL, WAIT = 0.2, 0.5

pytestmark = pytest.mark.skipif(not any(os.access(os.path.join(d, "rsync"), os.X_OK)
                                        for d in os.environ.get("PATH", "").split(":")),
                                reason="rsync is not installed")


def ops(*argv: str, timeout: float = 20) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, (proc.stdout, proc.stderr)
    return proc.returncode, json.loads(lines[0])


def wait_for(predicate, timeout: float = 5.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s")


def fill(root: Path, count: int, prefix: str = "f") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"{prefix}{i}").write_text(f"{prefix} {i}\n")


class Daemon:
    """One dirsync daemon over ``tmp/src`` -> ``tmp/dst`` (poll 0.2 s, wait 0.5 s)."""

    def __init__(self, tmp: Path) -> None:
        self.src, self.dst, self.state = tmp / "src", tmp / "dst", tmp / "state"

    def cli(self, action: str, *args: str) -> tuple[int, dict]:
        return ops("dirsync", action, "--name", "t", "--state-dir", str(self.state), *args)

    def start(self, *extra: str) -> dict:
        rc, doc = self.cli("start", "--", "--source", str(self.src), "--target", str(self.dst),
                           "--poll", str(POLL), "--wait", str(WAIT), *extra)
        assert rc == 0 and doc["changed"], doc
        return doc

    def syncs(self) -> list[dict]:
        found = []
        for name in ("out.log", "err.log"):
            path = self.state / name
            if path.exists():
                found += [r for r in map(json.loads, path.read_text().splitlines())
                          if r.get("kind") == "sync"]
        return sorted(found, key=lambda r: r["ts"])

    def names(self, root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    def in_sync(self) -> bool:
        return self.dst.exists() and self.names(self.src) == self.names(self.dst)

    def kill(self) -> None:
        from ops import _daemon

        running, pid = _daemon.probe(str(self.state / "pid"), wait_pid=0.2)
        if running and pid:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path)
    fill(d.src, 10)
    (d.src / "sub" / "deeper").mkdir(parents=True)
    (d.src / "sub" / "deeper" / "leaf").write_text("leaf\n")
    yield d
    d.kill()


def test_a_change_reaches_the_target_within_poll_plus_wait(daemon):
    daemon.start()
    wait_for(daemon.in_sync)
    nested = daemon.src / "sub" / "deeper" / "leaf"
    changed = time.monotonic()
    nested.write_text("leaf, longer now\n")
    target = daemon.dst / "sub" / "deeper" / "leaf"
    wait_for(lambda: target.read_text() == "leaf, longer now\n", timeout=POLL + WAIT + 2)
    assert time.monotonic() - changed < POLL + WAIT + 1.0
    first = daemon.syncs()[0]
    assert first["result"] == "ok" and first["rc"] == 0
    assert {"i": ">f+++++++++", "path": "sub/deeper/leaf"} in first["items"]
    assert first["counts"]["transferred"] == 11


def test_a_burst_of_changes_triggers_exactly_one_sync(daemon):
    daemon.start()
    wait_for(lambda: len(daemon.syncs()) == 1 and daemon.in_sync())
    for i in range(20):  # 1 s of changes: twice the wait, so only re-arming keeps it quiet
        (daemon.src / f"burst{i}").write_text(str(i))
        time.sleep(0.05)
    wait_for(daemon.in_sync, timeout=POLL + WAIT + 2)
    time.sleep(POLL * 3)
    syncs = daemon.syncs()
    assert len(syncs) == 2, [s["counts"] for s in syncs]
    assert syncs[1]["counts"]["transferred"] == 20


def test_an_emptied_source_is_refused_and_the_target_kept(daemon):
    daemon.start()
    wait_for(daemon.in_sync)
    before = daemon.names(daemon.dst)
    for path in sorted(daemon.src.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    refused = wait_for(lambda: [s for s in daemon.syncs() if s["result"] == "refused"],
                       timeout=POLL + WAIT + 2)
    assert "is empty" in refused[0]["msg"]
    time.sleep(WAIT + POLL * 2)
    assert daemon.names(daemon.dst) == before
    assert len(daemon.syncs()) == 2  # no retry loop while nothing changes
    _, status = daemon.cli("status")
    assert status["data"]["running"] and status["data"]["last_event"]["result"] == "refused"


def test_a_deletion_burst_beyond_max_delete_is_stopped(daemon):
    daemon.start("--max-delete", "3", "--max-delete-share", "100")  # rsync's own limit
    wait_for(daemon.in_sync)
    for i in range(8):
        (daemon.src / f"f{i}").unlink()
    stopped = wait_for(lambda: [s for s in daemon.syncs() if s["result"] == "max_delete"],
                       timeout=POLL + WAIT + 2)
    assert stopped[0]["rc"] == 25 and not stopped[0]["ok"]
    assert stopped[0]["counts"]["deleted"] == 3
    assert len(list(daemon.dst.glob("f*"))) == 10 - 3
    _, status = daemon.cli("status")
    assert status["data"]["last_event"]["result"] == "max_delete"
    _, logs = daemon.cli("logs", "--lines", "5")
    assert any('"max_delete"' in line for line in logs["data"]["stderr"])


def test_stop_terminates_promptly(daemon):
    daemon.start()
    started = time.monotonic()
    rc, doc = daemon.cli("stop")
    assert rc == 0 and doc["changed"] and doc["data"]["stopped_in_s"] < 1.0
    assert time.monotonic() - started < 2.0


def test_one_shot_run_and_its_guards(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    fill(src, 3)
    base = ["dirsync", "run", "--", "--source", str(src), "--target", str(dst)]
    rc, doc = ops(*base)
    assert rc == 0 and doc["changed"] and doc["data"]["counts"]["transferred"] == 3
    argv = doc["data"]["argv"]
    assert argv[1:5] == ["-a", "--delete", "--itemize-changes", "--max-delete=100"]
    assert argv[-3:] == ["--", f"{src}/", f"{dst}/"]
    rc, doc = ops(*base)
    assert rc == 0 and not doc["changed"]
    rc, doc = ops(*base, "--require-mount")
    assert rc == 1 and "not a mountpoint" in doc["error"]
    for path in src.iterdir():
        path.unlink()
    rc, doc = ops(*base)
    assert rc == 1 and doc["data"]["result"] == "refused" and "is empty" in doc["error"]
    assert len(list(dst.iterdir())) == 3
    src.rmdir()
    rc, doc = ops(*base)
    assert rc == 1 and "not a directory" in doc["error"]
    rc, doc = ops("dirsync", "run", "--", "--source", str(dst), "--target", str(dst / "x"))
    assert rc == 1 and "overlap" in doc["error"]


@pytest.mark.parametrize("code,result,ok", [(23, "partial", False), (24, "vanished", True),
                                            (25, "max_delete", False), (12, "error", False)])
def test_rsync_exit_codes_are_reported_distinctly(tmp_path, code, result, ok):
    fake = tmp_path / "fake-rsync"
    fake.write_text(f"#!/bin/sh\necho '>f+++++++++ a'\necho 'some problem' >&2\nexit {code}\n")
    fake.chmod(0o755)
    fill(tmp_path / "src", 1)
    rc, doc = ops("dirsync", "run", "--", "--source", str(tmp_path / "src"), "--target",
                  str(tmp_path / "dst"), "--rsync", str(fake))
    assert doc["ok"] is ok and (rc == 0) is ok
    data = doc["data"]
    assert data["result"] == result and data["rc"] == code
    assert data["stderr"] == ["some problem"]


def test_snapshot_and_itemize_parsing(tmp_path):
    from ops import dirsync

    fill(tmp_path / "t" / "a" / "b", 1)
    os.symlink("a", tmp_path / "t" / "link")
    snap = dirsync.snapshot(str(tmp_path / "t"))
    assert snap["a"] == ("d",) and snap["link"] == ("l", "a")
    leaf = tmp_path / "t" / "a" / "b" / "f0"
    assert snap["a/b/f0"][:2] == ("f", 4)
    leaf.write_text("f 9\n")  # same size: only the mtime tells
    os.utime(leaf, ns=(snap["a/b/f0"][2], snap["a/b/f0"][2] + 1000))
    assert dirsync.snapshot(str(tmp_path / "t")) != snap
    assert dirsync.snapshot(str(tmp_path / "missing")) is None
    items, counts, other = dirsync.parse_itemized(
        ">f+++++++++ new file\n*deleting   old\ncd+++++++++ dir/\n.d..t...... ./\n"
        "cL+++++++++ l -> x\nskipping non-regular file \"p\"\n")
    assert counts == {"transferred": 1, "created": 2, "deleted": 1, "attributes": 1}
    assert items[0] == {"i": ">f+++++++++", "path": "new file"}
    assert items[1] == {"i": "*deleting", "path": "old"}
    assert other == ['skipping non-regular file "p"']
    assert dirsync.rsync_argv("rsync", "/s/", "/d", 7)[-3:] == ["--", "/s/", "/d/"]
