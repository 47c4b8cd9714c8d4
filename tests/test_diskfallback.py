"""df -P / df -Pi fallback for hosts without python3: parser, rules, this machine's df."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetops.jobs.disk.fallback import DF_INODES, DF_SPACE, df_data, parse_df

DATA = Path(__file__).resolve().parent / "data"
REPO = Path(__file__).resolve().parent.parent
ARGV = ["--warn", "80", "--crit", "90", "--inode-warn", "80", "--inode-crit", "90"]


def busy(*extra: str) -> dict:
    return df_data((DATA / "df-P-busy.txt").read_text(), (DATA / "df-Pi-busy.txt").read_text(),
                   ARGV + list(extra))


def test_parse_df_lines_units_and_spaces():
    block, lines = parse_df((DATA / "df-P-busy.txt").read_text().split("@@")[0])
    assert block == 1024
    assert [line.mountpoint for line in lines] == [
        "/", "/dev/shm", "/srv/data", "/mnt/usb stick", "/home", "/mnt/empty",
        "/var/lib/docker/overlay2/abc/merged"]
    assert lines[4].device == "filer.example.com:/export/home" and lines[4].total == 524288000
    assert parse_df("Filesystem 512-blocks Used Available Capacity Mounted on\n")[0] == 512
    inode_block, inodes = parse_df((DATA / "df-Pi-busy.txt").read_text())
    assert inode_block == 1 and inodes[2].total is None
    with pytest.raises(ValueError):
        parse_df("df: command not found\n")


def test_same_rules_as_the_program():
    data = busy()
    mounts = {m["mountpoint"]: m for m in data["mounts"]}
    assert list(mounts) == ["/", "/srv/data", "/mnt/usb stick", "/home"]  # pseudo, zero: out
    root = mounts["/"]
    assert (root["size_bytes"], root["used_bytes"], root["avail_bytes"]) == (
        20511312 * 1024, 15432100 * 1024, 4014580 * 1024)
    assert root["use_pct"] == 80 and root["inodes_pct"] == 95
    assert (root["level"], root["over"]) == ("crit", ["space_warn", "inodes_crit"])
    assert mounts["/srv/data"]["inodes_total"] is None and mounts["/srv/data"]["level"] == "crit"
    assert mounts["/mnt/usb stick"]["fstype"] == "vfat"
    assert data["source"] == "df" and data["worst_level"] == "crit"
    assert {s["mountpoint"]: s["reason"] for s in data["skipped"]} == {"/mnt/empty": "zero size"}
    assert [m["mountpoint"] for m in busy("--local")["mounts"]] == ["/", "/srv/data",
                                                                    "/mnt/usb stick"]
    assert [m["mountpoint"] for m in busy("--include", "/srv/*")["mounts"]] == ["/srv/data"]
    assert [m["mountpoint"] for m in busy("--exclude", "/mnt/*")["mounts"]] == [
        "/", "/srv/data", "/home"]
    srv = next(m for m in busy("--threshold", "/srv/data=97:99")["mounts"]
               if m["mountpoint"] == "/srv/data")
    assert srv["level"] == "ok"


def test_agrees_with_the_program_on_this_machine():
    space = subprocess.run(["sh", "-c", DF_SPACE], capture_output=True, text=True, timeout=30)
    inodes = subprocess.run(["sh", "-c", DF_INODES], capture_output=True, text=True, timeout=30)
    fallback = {m["mountpoint"]: m for m in df_data(space.stdout, inodes.stdout, ARGV)["mounts"]}
    proc = subprocess.run([sys.executable, "-m", "ops", "diskreport", *ARGV], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    program = {m["mountpoint"]: m for m in json.loads(proc.stdout)["data"]["mounts"]}
    common = set(fallback) & set(program)
    assert "/" in common
    for point in common:
        a, b = fallback[point], program[point]
        assert abs(a["size_bytes"] - b["size_bytes"]) < 1024, point
        assert abs(a["use_pct"] - b["use_pct"]) <= 1, point
        assert a["fstype"] == b["fstype"] and a["device"] == b["device"]


def test_nothing_selected_is_an_error_as_in_df():
    from fleetops.jobs.disk.fallback import NoFilesystems

    with pytest.raises(NoFilesystems, match="no file systems processed"):
        busy("--include", "/nowhere")
