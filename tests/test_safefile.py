"""The one safe-file rule (fleetops.safefile) and its users: retry file, --output, spool."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from fleetops import safefile
from fleetops.cli import common
from fleetops.results import HostResult, RunResult

OTHER_UID = 65534  # nobody


def _run(*results: HostResult) -> RunResult:
    run = RunResult()
    for result in results:
        run.add(result)
    return run


def _temps(folder) -> list[str]:
    return [n for n in os.listdir(folder) if ".fleetops-" in n]


def test_new_and_regular_files_are_replaced_atomically(tmp_path):
    path = tmp_path / "out.txt"
    safefile.write_text(path, "one\n")
    assert path.read_text() == "one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o600)
    inode = path.stat().st_ino
    safefile.write_text(path, "two\n")
    assert path.read_text() == "two\n"
    assert path.stat().st_ino != inode  # renamed over, never truncated in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # an existing file keeps its mode
    assert _temps(tmp_path) == []


def test_devices_are_written_through_never_replaced():
    before = os.stat("/dev/null")
    assert safefile.write_text("/dev/null", "x") == "/dev/null"
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_fifo_with_a_reader_gets_the_text_and_without_one_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(safefile.UnsafePath, match="no reader"):
        safefile.write_text(fifo, "lost")
    got: list[bytes] = []
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    reader = threading.Thread(target=lambda: got.append(_drain(fd)))
    reader.start()
    safefile.write_text(fifo, "through\n")
    reader.join(5)
    assert got == [b"through\n"] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _drain(fd: int) -> bytes:
    import select

    data = b""
    while True:
        select.select([fd], [], [], 5)
        chunk = os.read(fd, 100)
        if not chunk:
            if data:
                os.close(fd)
                return data
            continue
        data += chunk


def test_own_symlink_is_followed_and_its_target_replaced(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert safefile.write_text(link, "new\n") == str(target)
    assert link.is_symlink() and target.read_text() == "new\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a symlink to another user")
def test_another_users_symlink_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "fleetops.retry"
    link.symlink_to(victim)
    os.lchown(link, OTHER_UID, OTHER_UID)
    with pytest.raises(safefile.UnsafePath, match="owned by uid 65534"):
        safefile.write_text(link, "x\n")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    # the retry file path: one warning, the run goes on, nothing followed
    assert common.write_retry(_run(HostResult("a", "failed")), str(link)) is None
    assert victim.read_text() == "precious\n"


def test_dangling_symlink_directory_and_socket_are_refused(tmp_path):
    import socket

    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(safefile.UnsafePath, match="dangling"):
        safefile.write_text(dangling, "x")
    with pytest.raises(safefile.UnsafePath, match="not a regular file"):
        safefile.write_text(tmp_path, "x")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        with pytest.raises(safefile.UnsafePath):
            safefile.write_text(tmp_path / "sock", "x")
    finally:
        sock.close()


def test_planted_temp_name_cannot_redirect_the_write(tmp_path):
    """Temp files are O_EXCL|O_NOFOLLOW with a random name: a pre-planted symlink at any
    predictable name is never followed (the old code used .NAME.tmpPID)."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "report.html"
    (tmp_path / f".report.html.tmp{os.getpid()}").symlink_to(victim)
    safefile.write_text(out, "<html/>")
    assert victim.read_text() == "precious\n" and out.read_text() == "<html/>"


def test_non_utf8_text_is_written_losslessly(tmp_path):
    name = b"/mnt/\xff\xfe-disk".decode("utf-8", "surrogateescape")
    path = tmp_path / "r.txt"
    safefile.write_text(path, f"{name}\n")
    assert path.read_bytes() == b"/mnt/\xff\xfe-disk\n"
    safefile.write_text(path, "lone \ud800 surrogate")
    assert path.read_bytes() == b"lone \\ud800 surrogate"


def test_retry_file_removal_only_removes_what_fleetops_wrote(tmp_path):
    retry = tmp_path / "x.retry"
    assert common.write_retry(_run(HostResult("b", "unreachable")), str(retry)) == str(retry)
    assert retry.read_text() == safefile.RETRY_HEADER + "b\n"
    assert common.write_retry(_run(HostResult("b", "ok")), str(retry)) is None
    assert not retry.exists()
    mine = tmp_path / "notes.txt"
    mine.write_text("my notes\n")
    common.write_retry(_run(HostResult("b", "ok")), str(mine))
    assert mine.read_text() == "my notes\n"  # not ours: kept
    link = tmp_path / "link.retry"
    ours = tmp_path / "ours.retry"
    common.write_retry(_run(HostResult("b", "failed")), str(ours))
    link.symlink_to(ours)
    common.write_retry(_run(HostResult("b", "ok")), str(link))
    assert link.is_symlink() and ours.exists()  # a symlink is never unlinked
    common.write_retry(_run(HostResult("b", "ok")), "/dev/null")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_diskreport_output_follows_the_rule(tmp_path, capsys):
    from fleetops.cli.diskreport import _check_output
    from fleetops.cli.diskreport import _write_file as _write

    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    _write(_check_output(str(link)), "new")
    assert target.read_text() == "new" and link.is_symlink()
    _write(_check_output("/dev/null"), "x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    with pytest.raises(safefile.UnsafePath):
        _check_output(str(tmp_path))
    with pytest.raises(safefile.UnsafePath, match="does not exist"):
        _check_output(str(tmp_path / "no" / "such.html"))
    assert "report written" in capsys.readouterr().err


def test_unsent_report_spool_is_private_and_never_follows_symlinks(tmp_path, monkeypatch):
    from fleetops.cli.diskreport import _save_unsent

    spool = tmp_path / "reports"
    monkeypatch.setenv("FLEETOPS_SPOOL_DIR", str(spool))
    name = b"/srv/\xff".decode("utf-8", "surrogateescape")
    first = _save_unsent(f"text {name}", "<p>html</p>")
    second = _save_unsent("again", "<p/>")
    assert first != second and first.read_bytes() == b"text /srv/\xff"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    os.chmod(spool, 0o777)
    with pytest.raises(safefile.UnsafePath, match="not writable by group or others"):
        _save_unsent("x", "y")
    os.chmod(spool, 0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("FLEETOPS_SPOOL_DIR", str(tmp_path / "linked"))
    (tmp_path / "linked").symlink_to(elsewhere)
    with pytest.raises(safefile.UnsafePath, match="not a directory"):
        _save_unsent("x", "y")
    assert os.listdir(elsewhere) == []


def test_disk_report_output_with_a_non_utf8_mount_name(tmp_path, capsys):
    """``disk-report --output`` of every format with a mount name that is not UTF-8 (as
    the host sends it: surrogate-escaped) writes it losslessly, escaped as ``\\xe9`` like
    every human-readable host text (fleetops.sanitize), and does not crash."""
    from fleetops.cli.diskreport import _emit
    from fleetops.jobs.disk.report import build_report
    from fleetops.results import RunResult

    point = b"/mnt/caf\xe9".decode("utf-8", "surrogateescape")
    doc = {"mountpoint": point, "device": "/dev/x", "fstype": "ext4", "size_bytes": 100,
           "used_bytes": 10, "avail_bytes": 90, "use_pct": 10, "inodes_total": 10,
           "inodes_used": 1, "inodes_pct": 10, "over": [], "error": None, "level": "ok"}
    report = build_report({"web1": ("ok", None, {"mounts": [doc]})})
    for fmt in ("table", "csv", "html"):
        out = tmp_path / f"report.{fmt}"
        _emit(RunResult(), report, fmt, out)
        assert b"/mnt/caf\\xe9" in out.read_bytes(), fmt
