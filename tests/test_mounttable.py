"""The disk report on real mount tables: recorded ones (node_exporter's fixture, OpenShift,
bind mounts) and live ones made in a private mount namespace, checked against GNU df."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ops import _diskstat, _mounts, diskreport

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
ARGV = ["--warn", "99", "--crit", "100"]

needs_ns = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                              reason="needs root and unshare(1) for a private mount namespace")


def info(name: str) -> list[_mounts.Mount]:
    return _mounts.parse_mountinfo((DATA / name).read_text())


def in_namespace(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``sh -c script`` in a new private mount namespace (nothing leaks out)."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           "sh", *args], capture_output=True, text=True, timeout=60, cwd=REPO,
                          check=False)


# -- separators ----------------------------------------------------------------------

ODD = ["nbsp\u00a0x", "ff\x0cx", "cr\rx", "ls\u2028x", "vt\x0bx", "nel\x85x", "fs\x1cx"]


def test_only_the_kernels_separators_split_fields():
    lines = "".join(f"odd{i} /mnt/{name} tmpfs rw 0 0\n" for i, name in enumerate(ODD))
    lines += "/dev/sda1 /mnt/with\\040space ext4 rw 0 0\n"
    mounts = _mounts.parse_mounts(lines)
    assert [m.mountpoint for m in mounts] == [f"/mnt/{n}" for n in ODD] + ["/mnt/with space"]
    assert [m.device for m in mounts[:3]] == ["odd0", "odd1", "odd2"]
    assert all(m.fstype in ("tmpfs", "ext4") for m in mounts)


@needs_ns
def test_odd_mountpoints_are_reported_with_their_own_figures(tmp_path):
    points = [str(tmp_path / name) for name in ODD]
    script = "for p in \"$@\"; do mkdir -p \"$p\" && mount -t tmpfs -o size=2m odd \"$p\"; done\n" \
        f"exec {sys.executable} -m ops diskreport --warn 99 --crit 100 --include '{tmp_path}/*'"
    proc = in_namespace(script, *points)
    doc = json.loads(proc.stdout)
    mounts = {m["mountpoint"]: m for m in doc["data"]["mounts"]}
    assert sorted(mounts) == sorted(points), proc.stderr
    assert all(m["size_bytes"] == 2 << 20 and m["device"] == "odd" for m in mounts.values())
    assert all(m["level"] == "ok" for m in mounts.values())


# -- recorded tables: node_exporter's fixture, OpenShift, bind mounts ---------------

def test_node_exporter_fixture():
    mounts = info("mountinfo-node_exporter.txt")
    assert len(mounts) == 31 and mounts[5] == ("/dev/dm-2", "/", "ext4",
                                                "rw,relatime", "/")
    selected, skipped = _mounts.select_mounts(mounts)
    assert [m.mountpoint for m in selected] == [
        "/run", "/", "/run/lock", "/boot", "/run/user/1000", "/run/user/1000/gvfs"]
    assert sum(r == "container" for _, r in skipped) == 2
    with_pods, _ = _mounts.select_mounts(mounts, containers=True)
    kubelet = [m.mountpoint for m in with_pods if "kubelet" in m.mountpoint]
    assert [p.split("/")[-2][:20] for p in kubelet] == ["[vsanDatastore] bafb", "[vsanDatastore]\tbafb"]


def test_openshift_node_pod_mounts_are_left_out_by_default():
    mounts = info("mountinfo-openshift.txt")
    selected, skipped = _mounts.select_mounts(mounts)
    assert [m.mountpoint for m in selected] == [
        "/", "/run", "/var", "/sysroot", "/etc", "/usr", "/boot", "/srv/nfs"]
    reasons = {m.mountpoint: r for m, r in skipped}
    assert reasons["/var/lib/kubelet/pods/0a1b-2c3d/volumes/kubernetes.io~secret/serving-cert"] \
        == "container"
    assert reasons["/run/containerd/io.containerd.runtime.v2.task/k8s.io/9c8d/rootfs"] == "pseudo"
    assert reasons["/run/containers/storage/overlay-containers/8f2c/userdata/shm"] == "container"
    everything, _ = _mounts.select_mounts(mounts, containers=True)
    assert len(everything) == 14
    # one xfs bound five times (ostree): one row, named "/" as df names it
    devs = {"/dev/vda4": 1, "/dev/vda3": 2, "tmpfs": None}
    records = [{"mountpoint": m.mountpoint, "device": m.device, "root": m.root,
                "dev": devs.get(m.device, id(m))} for m in selected]
    kept, dropped = _mounts.dedup_by_device(records)
    assert [r["mountpoint"] for r in kept] == ["/", "/run", "/boot", "/srv/nfs"]
    assert {r["mountpoint"] for r in dropped} == {"/var", "/sysroot", "/etc", "/usr"}


def test_bind_of_a_subdirectory_never_names_the_filesystem():
    mounts = info("mountinfo-bind-subdir.txt")
    devs = {"/dev/vda1": 1, "/dev/vdb": 2}
    records = [{"mountpoint": m.mountpoint, "device": m.device, "root": m.root,
                "dev": devs[m.device]} for m in mounts]
    kept, dropped = _mounts.dedup_by_device(records)
    assert [r["mountpoint"] for r in kept] == ["/", "/srv/data"]
    assert [r["mountpoint"] for r in dropped] == ["/b", "/etc/hosts"]


@needs_ns
def test_bind_choice_agrees_with_df(tmp_path):
    real, bind = tmp_path / "srv-data-real", tmp_path / "b"
    script = (f"mkdir -p {real} {bind} && mount -t tmpfs -o size=3m bindtest {real} && "
              f"mkdir {real}/sub && mount --bind {real}/sub {bind} && "
              "LC_ALL=C df -P | grep bindtest; echo @@; "
              f"exec {sys.executable} -m ops diskreport --warn 99 --crit 100 "
              f"--include '{tmp_path}/*'")
    proc = in_namespace(script)
    df_text, _, program = proc.stdout.partition("@@\n")
    df_points = [line.split()[-1] for line in df_text.splitlines()]
    ours = [m["mountpoint"] for m in json.loads(program)["data"]["mounts"]]
    assert df_points == [str(real)] and ours == df_points, proc.stderr


# -- stat refused, impossible counters, empty selection -------------------------------

def test_stat_refused_after_statvfs_keeps_the_figures(monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "stat", refuse)
    result = _diskstat.default_stat("/")
    assert result["dev"] is None and result["f_blocks"] > 0


def test_statvfs_refused_is_skipped_like_df(monkeypatch, tmp_path):
    table = tmp_path / "mounts"
    table.write_text("/dev/sda1 / ext4 rw 0 0\ngvfsd-fuse /run/user/1000/gvfs "
                     "fuse.gvfsd-fuse rw 0 0\n")

    def stat(path):
        if "gvfs" in path:
            raise PermissionError(13, "Permission denied")
        return _diskstat.default_stat("/")

    monkeypatch.setattr(_diskstat, "STAT", stat)
    args = types.SimpleNamespace(mounts_file=str(table), skip_fstype=[], local=False,
                                 include=[], exclude=[], include_containers=False,
                                 stat_timeout=5.0)
    limits = diskreport.Limits((80, 90), (80, 90), [])
    data = diskreport.collect(args, limits)
    assert [m["mountpoint"] for m in data["mounts"]] == ["/"]
    assert data["worst_level"] != "unknown"
    assert {"mountpoint": "/run/user/1000/gvfs", "fstype": "fuse.gvfsd-fuse",
            "reason": "permission denied"} in data["skipped"]


def statvfs(blocks, bfree, bavail, files, ffree, frsize=4096):
    return types.SimpleNamespace(f_bsize=frsize, f_frsize=frsize, f_blocks=blocks,
                                 f_bfree=bfree, f_bavail=bavail, f_files=files, f_ffree=ffree)


def test_impossible_counters_are_not_figures():
    numbers = _mounts.df_numbers(statvfs(100, 150, 150, 1000, 10))
    assert numbers["use_pct"] is None and numbers["used_bytes"] is None
    assert numbers["size_bytes"] == 409600 and numbers["inodes_pct"] == 99
    numbers = _mounts.df_numbers(statvfs(100, 50, 40, 1000, (1 << 64) - 5))
    assert numbers["use_pct"] == 56 and numbers["inodes_total"] is None
    numbers = _mounts.df_numbers(statvfs(100, 50, (1 << 63) + 1, 10, 5))
    assert numbers["avail_bytes"] is None and numbers["inodes_pct"] == 50
    record = diskreport._record(_mounts.Mount("/dev/x", "/x", "ext4", "rw"),
                                {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 100,
                                 "f_bfree": 150, "f_bavail": 150, "f_files": 10, "f_ffree": 5,
                                 "dev": 1}, diskreport.Limits((80, 90), (80, 90), []))
    assert record["level"] == "unknown" and "impossible" in record["error"]


def test_empty_selection_fails_like_df():
    proc = subprocess.run([sys.executable, "-m", "ops", "diskreport", *ARGV, "--include",
                           "/no/such/mount"], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["ok"] is False
    assert doc["error"] == "no file systems processed"
    df = subprocess.run(["df", "-P", "-t", "no-such-fstype"], capture_output=True, text=True,
                        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, check=False)
    assert df.returncode == 1 and "no file systems processed" in df.stderr


# -- df -h sizes ---------------------------------------------------------------------

@needs_ns
def test_human_sizes_match_df_h(tmp_path):
    sizes_k = [4, 1028, 1536, 10236, 10244, 1048572, 1048580, 9 * 1048576 + 4]
    points = [str(tmp_path / f"s{k}") for k in sizes_k]
    script = ("for p in \"$@\"; do mkdir -p \"$p\"; done; "
              + " ".join(f"mount -t tmpfs -o size={k}k hsize {p};" for k, p in zip(sizes_k, points, strict=True))
              + " LC_ALL=C df -h --output=size,target | grep " + str(tmp_path) + "; echo @@; "
              + " LC_ALL=C df -B1 --output=size,target | grep " + str(tmp_path))
    proc = in_namespace(script, *points)
    human, _, exact = proc.stdout.partition("@@\n")
    want = {line.split()[1]: line.split()[0] for line in human.splitlines()}
    got = {line.split()[1]: _mounts.human_size(int(line.split()[0])) for line in exact.splitlines()}
    assert len(want) == len(sizes_k) and got == want, proc.stderr


def test_human_size_goes_past_peta():
    assert _mounts.human_size(1 << 60) == "1.0E"
    assert _mounts.human_size((1 << 70) * 12) == "12Z"
    assert _mounts.human_size(1025) == "1.1K"  # df rounds up
    assert _mounts.human_size(None) == "-"
