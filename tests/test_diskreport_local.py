"""ops/diskreport on this machine: mount parsing, df -P arithmetic, timeouts, thresholds."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from ops import _diskstat, _mounts, diskreport

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
DF_LINE = re.compile(r"^(?P<dev>.*?)\s+(?P<size>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+"
                     r"(?P<pct>\d+|-)%?\s+(?P<mp>/.*)$")


def run_program(*args: str, env: dict | None = None, timeout: float = 60):
    proc = subprocess.run([sys.executable, "-m", "ops", "diskreport", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def parse_df(text: str) -> dict[str, dict[str, int | None]]:
    rows = {}
    for line in text.splitlines()[1:]:
        match = DF_LINE.match(line)
        assert match, line
        pct = match["pct"]
        rows[match["mp"]] = {"size": int(match["size"]), "used": int(match["used"]),
                             "avail": int(match["avail"]),
                             "pct": None if pct == "-" else int(pct)}
    return rows


# --- parsing recorded mount tables -------------------------------------------------

def load(name: str) -> list[_mounts.Mount]:
    return _mounts.parse_mounts(os.fsdecode((DATA / name).read_bytes()))


def test_kernel_escapes_are_undone():
    mounts = load("mounts-kernel-escapes.txt")
    points = [m.mountpoint for m in mounts]
    assert points == ["/tmp/rec/m/with space", "/tmp/rec/m/tab\tand\\back", "/tmp/rec/m/bind",
                      "/tmp/rec/m/nul", "/tmp/rec/m/ünï"]
    assert mounts[1].device == "lab-data" and mounts[1].fstype == "tmpfs"
    assert mounts[1].options == "rw,relatime,size=2048k,nr_inodes=50"


def test_debian_selection_skips_pseudo_and_keeps_tmpfs():
    selected, skipped = _mounts.select_mounts(load("mounts-debian.txt"))
    assert [m.mountpoint for m in selected] == [
        "/run", "/", "/run/lock", "/boot", "/boot/efi", "/srv/data set", "/var/www",
        "/home", "/mnt/share", "/mnt/backup", "/run/user/1000", "/mnt/tab\tand\\back",
        "/var/log"]
    pseudo = {m.mountpoint for m, reason in skipped if reason == "pseudo"}
    assert {"/proc", "/sys", "/dev", "/dev/shm", "/sys/fs/cgroup", "/snap/core20/1974",
            "/run/credentials/systemd-sysctl.service", "/proc/sys/fs/binfmt_misc",
            "/var/lib/docker/overlay2/3f1c0e9d/merged", "/run/docker/netns/1a2b3c"} <= pseudo
    # An over-mounted mountpoint keeps the entry statvfs sees: the last one.
    assert [m.device for m in selected if m.mountpoint == "/var/log"] == ["/dev/sdd1"]


def test_local_skips_network_filesystems():
    selected, skipped = _mounts.select_mounts(load("mounts-debian.txt"), local=True)
    points = {m.mountpoint for m in selected}
    assert not points & {"/home", "/mnt/share", "/mnt/backup"}
    assert {"/", "/run", "/srv/data set"} <= points
    assert ("/home", "network filesystem (--local)") in {(m.mountpoint, r) for m, r in skipped}


def test_include_exclude_and_fstype_filters():
    mounts = load("mounts-debian.txt")
    selected, _ = _mounts.select_mounts(mounts, include=["/boot*", "/srv/*"],
                                        exclude=["/boot/efi"])
    assert [m.mountpoint for m in selected] == ["/boot", "/srv/data set"]
    selected, _ = _mounts.select_mounts(mounts, skip_fstypes=["tmpfs", "ext4"])
    assert {m.fstype for m in selected} == {"ext2", "vfat", "nfs4", "cifs", "fuse.sshfs", "xfs"}


def test_docker_bind_mounts_count_once():
    selected, _ = _mounts.select_mounts(load("mounts-docker.txt"))
    assert [m.mountpoint for m in selected] == [
        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/data"]
    devices = {"/dev/vda1": 0xFD01, "/dev/vdb": 0xFD10}
    records = [{"mountpoint": m.mountpoint, "dev": devices[m.device]} for m in selected]
    records.append({"mountpoint": "/stuck", "dev": None})
    kept, dropped = _mounts.dedup_by_device(records)
    assert [r["mountpoint"] for r in kept] == ["/etc/hosts", "/data", "/stuck"]
    assert [r["mountpoint"] for r in dropped] == ["/etc/resolv.conf", "/etc/hostname"]


# --- df -P arithmetic -----------------------------------------------------------

def statvfs(values: list[int]) -> types.SimpleNamespace:
    names = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree")
    return types.SimpleNamespace(**dict(zip(names, values, strict=True)))


@pytest.mark.parametrize("sample", json.loads((DATA / "statvfs-df.json").read_text())["samples"],
                         ids=lambda s: s["name"])
def test_df_numbers_match_recorded_df(sample: dict):
    numbers = _mounts.df_numbers(statvfs(sample["statvfs"]))
    space = parse_df("header\n" + sample["df_B1"])[sample["name"]]
    inodes = parse_df("header\n" + sample["df_i"])[sample["name"]]
    assert (numbers["size_bytes"], numbers["used_bytes"], numbers["avail_bytes"],
            numbers["use_pct"]) == (space["size"], space["used"], space["avail"], space["pct"])
    assert (numbers["inodes_total"], numbers["inodes_used"], numbers["inodes_pct"]) == (
        inodes["size"], inodes["used"], inodes["pct"])


def test_df_numbers_edge_cases():
    # Reserved blocks: used+avail < size, and the percentage rounds up (21.02 -> 22).
    numbers = _mounts.df_numbers(statvfs([4096, 4096, 1000, 800, 752, 100, 100]))
    assert numbers["use_pct"] == 22 and numbers["used_bytes"] == 200 * 4096
    assert numbers["inodes_pct"] == 0
    # No frsize: fall back to bsize. No inodes at all (btrfs, vfat): inodes_pct is null.
    numbers = _mounts.df_numbers(statvfs([512, 0, 10, 5, 5, 0, 0]))
    assert numbers["size_bytes"] == 5120 and numbers["use_pct"] == 50
    assert numbers["inodes_pct"] is None
    # Empty filesystem: 0 %, never a division by zero.
    assert _mounts.df_numbers(statvfs([4096, 4096, 0, 0, 0, 10, 10]))["use_pct"] == 0
    assert _mounts.ceil_pct(1, 3) == 34 and _mounts.ceil_pct(3, 3) == 100


def test_thresholds_and_levels():
    overrides = [_mounts.parse_override("/srv/*=70:85")]
    assert _mounts.space_limits("/srv/data", (80, 90), overrides) == (70, 85)
    assert _mounts.space_limits("/var", (80, 90), overrides) == (80, 90)
    assert _mounts.classify({"use_pct": 79, "inodes_pct": 3}, (80, 90), (80, 90)) == ("ok", [])
    assert _mounts.classify({"use_pct": 80, "inodes_pct": 95}, (80, 90), (80, 90)) == (
        "crit", ["space_warn", "inodes_crit"])
    assert _mounts.classify({"use_pct": 85, "inodes_pct": None}, (70, 85), (80, 90)) == (
        "crit", ["space_crit"])
    assert _mounts.worst(["ok", "unknown", "warn"]) == "warn"
    assert _mounts.worst([]) == "ok"


# --- the program, for real ------------------------------------------------------

def df_row(point: str) -> dict | None:
    proc = subprocess.run(["df", "-P", "-B1", "--", point], capture_output=True, text=True)
    if proc.returncode:
        return None  # unmounted meanwhile (another test's lab)
    (row,) = parse_df(proc.stdout).values()
    return row


def agrees(mount: dict, row: dict) -> bool:
    slack = 64 << 20 if mount["mountpoint"] == "/" else 0  # / may change between calls
    return (row["size"] == mount["size_bytes"]
            and abs(row["used"] - mount["used_bytes"]) <= slack
            and abs(row["avail"] - mount["avail_bytes"]) <= slack
            and abs(row["pct"] - mount["use_pct"]) <= (1 if slack else 0))


def test_matches_df_on_this_machine():
    rc, doc, stderr = run_program()
    assert doc["ok"] is True, stderr
    mounts = doc["data"]["mounts"]
    assert mounts and rc in (0, 3)
    assert "/" in [m["mountpoint"] for m in mounts]
    for mount in mounts:
        assert set(mount) == set(diskreport_keys()), mount
        row = df_row(mount["mountpoint"])
        for _ in range(3):  # a filesystem someone writes to: measure both again
            if row is None or agrees(mount, row):
                break
            _, again, _ = run_program("--include", mount["mountpoint"])
            mount, row = again["data"]["mounts"][0], df_row(mount["mountpoint"])
        assert row is None or agrees(mount, row), (mount, row)


def diskreport_keys():
    return ("mountpoint", "device", "fstype", "size_bytes", "used_bytes", "avail_bytes",
            "use_pct", "inodes_total", "inodes_used", "inodes_pct", "level", "over", "error")


def test_crit_exit_code_is_3_and_still_ok():
    rc, doc, _ = run_program("--include", "/", "--warn", "1", "--crit", "1")
    assert rc == 3 and doc["ok"] is True and doc["error"] is None
    assert doc["data"]["worst_level"] == "crit" and doc["data"]["over"] == ["/"]
    assert doc["data"]["mounts"][0]["over"] == ["space_crit"]
    rc, doc, _ = run_program("--include", "/", "--threshold", "/=99:100")
    assert rc == 0 and doc["data"]["mounts"][0]["level"] == "ok"
    assert doc["data"]["thresholds"]["overrides"] == [{"mountpoint": "/", "warn": 99,
                                                       "crit": 100}]


@pytest.mark.parametrize("args, message", [
    (["--warn", "95", "--crit", "90"], "space thresholds need 0 < warn <= crit <= 100"),
    (["--warn", "0"], "space thresholds need"),
    (["--crit", "101"], "space thresholds need"),
    (["--inode-warn", "-1"], "inode thresholds need"),
    (["--warn", "eighty"], "invalid percent value"),
    (["--threshold", "/srv"], "expected MOUNTPOINT=WARN:CRIT"),
    (["--threshold", "/srv=90:80"], "space (/srv) thresholds need"),
    (["--threshold", "/srv=a:b"], "must be numbers"),
    (["--stat-timeout", "0"], "invalid seconds value"),
    (["--email", "not an address"], "is not a mail address"),
    (["--password", "x"], "unrecognized arguments"),
])
def test_bad_arguments_fail_before_anything_runs(args: list[str], message: str):
    rc, doc, _ = run_program(*args, "--mounts-file", "/nonexistent/mounts")
    assert rc == 2 and doc["ok"] is False
    assert doc["error"].startswith("bad arguments: ") and message in doc["error"]


def test_unreadable_mount_table_is_a_clean_failure():
    rc, doc, _ = run_program("--mounts-file", "/nonexistent/mounts")
    assert rc == 1 and doc["error"] == "cannot read /nonexistent/mounts: No such file or directory"


# --- a hung statvfs never hangs the program --------------------------------------

def write_mounts(path: Path, points: list[Path], fstype: str = "nfs4") -> Path:
    """A mounts(5) table of ``points``: NFS by default (only a filesystem that may hang
    is stat'ed in a child with a timeout; local ones are stat'ed in-process)."""
    device = "srv{i}:/export" if fstype.startswith("nfs") else "/dev/fake{i}"
    lines = [f"{device.format(i=i)} {str(p).replace(' ', chr(92) + '040')} {fstype} rw 0 0"
             for i, p in enumerate(points)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hung_statvfs_times_out_in_process(tmp_path, monkeypatch, capsys):
    points = [tmp_path / name for name in ("hang-first", "fine", "hang later", "last")]
    for point in points:
        point.mkdir()
    real = _diskstat.default_stat

    def stat(path):
        if "hang" in path:
            time.sleep(60)
        result = real(path)
        result["dev"] = hash(path)  # distinct devices: no dedup among the tmp dirs
        return result

    monkeypatch.setattr(_diskstat, "STAT", stat)
    table = write_mounts(tmp_path / "mounts", points)
    started = time.monotonic()
    rc = diskreport.PROGRAM.main(["--mounts-file", str(table), "--stat-timeout", "0.5"])
    elapsed = time.monotonic() - started
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["ok"] is True
    assert elapsed < 5
    by_point = {m["mountpoint"]: m for m in doc["data"]["mounts"]}
    assert list(by_point) == [str(p) for p in points]
    for name in ("hang-first", "hang later"):
        hung = by_point[str(tmp_path / name)]
        assert hung["error"] == "statvfs timed out after 0.5s"
        assert hung["level"] == "unknown" and hung["size_bytes"] is None
    for name in ("fine", "last"):
        assert by_point[str(tmp_path / name)]["error"] is None
        assert by_point[str(tmp_path / name)]["size_bytes"] > 0
    assert doc["data"]["worst_level"] == "unknown"
    deadline = time.monotonic() + 5
    while _diskstat._ABANDONED and time.monotonic() < deadline:
        _diskstat._reap_abandoned()
        time.sleep(0.05)
    assert _diskstat._ABANDONED == []  # the hung workers were killed and reaped


HANG_DRIVER = """
import os, subprocess, sys, time
import ops._diskstat as d
real = d.STAT
def stat(path):
    if path.endswith("hang"):
        # A grandchild inheriting the worker's stdio: it must not be our stdout pipe.
        child = subprocess.Popen(["sleep", "30"])
        with open(os.environ["PIDFILE"], "w") as f:
            f.write(str(child.pid))
        time.sleep(60)
    return real(path)
d.STAT = stat
from ops.diskreport import PROGRAM
sys.exit(PROGRAM.main(sys.argv[1:]))
"""


def test_hung_worker_does_not_hold_the_output_pipe(tmp_path):
    points = [tmp_path / "hang", tmp_path / "ok"]
    for point in points:
        point.mkdir()
    table = write_mounts(tmp_path / "mounts", points)
    env = dict(os.environ, PIDFILE=str(tmp_path / "pid"))
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", HANG_DRIVER, "--mounts-file", str(table),
             "--stat-timeout", "0.5"],
            cwd=REPO, capture_output=True, text=True, timeout=25, env=env)
    finally:
        pid_file = tmp_path / "pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), 9)
    assert time.monotonic() - started < 10, "a hung worker kept stdout open"
    doc = json.loads(proc.stdout)
    errors = [m["error"] for m in doc["data"]["mounts"]]
    assert errors[0] == "statvfs timed out after 0.5s"


# --- which mounts get a child: only those that may hang ----------------------------

def mounts_of(*entries: str) -> list:
    return _mounts.parse_mounts("\n".join(entries) + "\n")


def test_only_local_filesystems_reached_through_local_ones_skip_the_child():
    table = mounts_of("/dev/vda1 / ext4 rw 0 0", "proc /proc proc rw 0 0",
                      "tmpfs /run tmpfs rw 0 0", "nas:/export /mnt/nas nfs4 rw 0 0",
                      "/dev/vdb1 /mnt/nas/local xfs rw 0 0", "systemd-1 /auto autofs rw 0 0",
                      "/dev/vdc1 /auto/disk ext4 rw 0 0", "sshfs#u@h: /home/u/remote fuse.sshfs "
                      "rw 0 0", "/dev/vdd1 /srv/data btrfs rw 0 0",
                      "nas:/x /srv/nfs-ext4 ext4 rw 0 0", "/dev/sdz1 /media/stick vfat rw 0 0",
                      "/dev/vde1 /mnt/nas2 ext4 rw 0 0")
    unsafe = _mounts.unsafe_points(table)
    hangs = {m.mountpoint: _mounts.can_hang(m, unsafe) for m in table}
    assert hangs == {"/": False, "/proc": True, "/run": False, "/mnt/nas": True,
                     "/mnt/nas/local": True, "/auto": True, "/auto/disk": True,
                     "/home/u/remote": True, "/srv/data": False, "/srv/nfs-ext4": True,
                     "/media/stick": True, "/mnt/nas2": False}


def test_a_network_root_makes_every_mount_forked():
    table = mounts_of("srv:/root / nfs rw 0 0", "tmpfs /run tmpfs rw 0 0")
    unsafe = _mounts.unsafe_points(table)
    assert [_mounts.can_hang(m, unsafe) for m in table] == [True, True]


def test_in_process_paths_are_stated_here_the_others_in_a_child(tmp_path):
    seen = {}

    def stat(path):
        seen[path] = os.getpid()
        if path.endswith("gone"):
            raise FileNotFoundError(2, "No such file or directory")
        if path.endswith("denied"):
            raise PermissionError(13, "Permission denied")
        return _diskstat.default_stat(str(tmp_path))

    paths = ["/local", "/remote", "/local-gone", "/local-denied"]
    results = _diskstat.stat_mounts(paths, 5.0, stat, in_process=[True, False, True, True])
    assert seen == {"/local": os.getpid(), "/local-gone": os.getpid(),
                    "/local-denied": os.getpid()}  # the child's record is not seen here
    assert results[0]["f_blocks"] > 0 and results[1]["f_blocks"] > 0
    assert results[2] == {"hidden": True} and results[3] == {"denied": True}


def test_a_local_mount_under_a_hung_network_parent_still_times_out(tmp_path, monkeypatch,
                                                                   capsys):
    nfs, local = tmp_path / "nfs", tmp_path / "nfs" / "local-hang"
    local.mkdir(parents=True)

    def stat(path):
        if "hang" in path:
            time.sleep(60)
        result = _diskstat.default_stat(path)
        result["dev"] = hash(path)
        return result

    monkeypatch.setattr(_diskstat, "STAT", stat)
    table = tmp_path / "mounts"
    table.write_text(f"srv:/export {nfs} nfs4 rw 0 0\n/dev/fake1 {local} ext4 rw 0 0\n")
    started = time.monotonic()
    rc = diskreport.PROGRAM.main(["--mounts-file", str(table), "--stat-timeout", "0.5"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and time.monotonic() - started < 5
    by_point = {m["mountpoint"]: m for m in doc["data"]["mounts"]}
    assert by_point[str(local)]["error"] == "statvfs timed out after 0.5s"
    assert by_point[str(nfs)]["error"] is None


# --- real tmpfs mounts in a private mount namespace --------------------------------

NS_SCRIPT = r"""
set -eu
d=$1; out=$2; shift 2
mkdir -p "$d/data set" "$d/inodes" "$d/bind-of-data" "$d/zero" "$d/other"
mount -t tmpfs -o size=1m lab-data "$d/data set"
mount -t tmpfs -o size=2m,nr_inodes=20 lab-inodes "$d/inodes"
mount --bind "$d/data set" "$d/bind-of-data"
mount -t tmpfs -o size=0 lab-zero "$d/zero"
mount -t tmpfs -o size=4m lab-other "$d/other"
head -c 950000 /dev/zero > "$d/data set/fill"
i=0; while [ $i -lt 17 ]; do : > "$d/inodes/f$i"; i=$((i+1)); done
set +e
"$@" > "$out/report.json"
echo $? > "$out/rc"
df -P -B1 "$d/data set" "$d/inodes" "$d/other" > "$out/df.txt"
df -P -i "$d/data set" "$d/inodes" "$d/other" > "$out/dfi.txt"
"""


def namespace_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not namespace_available(), reason="needs root and unshare -m")
def test_real_tmpfs_mounts_bind_dedup_and_crit(tmp_path):
    top = tmp_path / "mnt"
    out = tmp_path / "out"
    out.mkdir()
    program = [sys.executable, "-m", "ops", "diskreport", "--include", f"{top}/*",
               "--warn", "70", "--crit", "90", "--threshold", f"{top}/other=1:2"]
    subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", NS_SCRIPT, "sh",
                    str(top), str(out), *program], cwd=REPO, check=True, timeout=60)
    rc = int((out / "rc").read_text())
    doc = json.loads((out / "report.json").read_text())
    assert rc == 3 and doc["ok"] is True
    data = doc["data"]
    by_point = {m["mountpoint"]: m for m in data["mounts"]}
    assert set(by_point) == {f"{top}/data set", f"{top}/inodes", f"{top}/other"}
    skipped = {s["mountpoint"]: s["reason"] for s in data["skipped"]}
    assert skipped[f"{top}/bind-of-data"] == f"same device as {top}/data set"
    assert skipped[f"{top}/zero"] == "zero size"
    df, dfi = parse_df((out / "df.txt").read_text()), parse_df((out / "dfi.txt").read_text())
    for point, mount in by_point.items():
        assert (mount["size_bytes"], mount["used_bytes"], mount["avail_bytes"],
                mount["use_pct"]) == tuple(df[point].values())
        assert (mount["inodes_total"], mount["inodes_used"], mount["inodes_pct"]) == (
            dfi[point]["size"], dfi[point]["used"], dfi[point]["pct"])
    assert by_point[f"{top}/data set"]["level"] == "crit"
    assert by_point[f"{top}/data set"]["over"] == ["space_crit"]
    assert by_point[f"{top}/inodes"]["over"] == ["inodes_crit"]  # 18 of 20 inodes
    assert by_point[f"{top}/other"]["level"] == "ok"  # 0 % is under even a 1:2 override
    assert by_point[f"{top}/data set"]["device"] == "lab-data"
    assert sorted(data["over"]) == [f"{top}/data set", f"{top}/inodes"]


def test_text_and_html_renderings_of_the_program():
    data = {
        "hostname": "web<1>", "generated": "2024-05-01T10:00:00+0000", "worst_level": "crit",
        "over": ["/srv"], "thresholds": {"space": {"warn": 80, "crit": 90},
                                         "inodes": {"warn": 80, "crit": 90}, "overrides": []},
        "mounts": [
            {"mountpoint": "/", "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 10 << 30,
             "used_bytes": 2 << 30, "avail_bytes": 8 << 30, "use_pct": 20, "inodes_pct": 3,
             "level": "ok", "error": None},
            {"mountpoint": "/srv", "device": "/dev/vdb", "fstype": "xfs", "size_bytes": 100 << 30,
             "used_bytes": 95 << 30, "avail_bytes": 5 << 30, "use_pct": 95, "inodes_pct": 1,
             "level": "crit", "error": None},
        ],
    }
    text = diskreport.render_text(data)
    lines = text.splitlines()
    assert lines[0] == "Disk report for web<1> at 2024-05-01T10:00:00+0000: CRIT"
    table = lines[lines.index("") + 1:]
    assert table[0].split() == list(diskreport.HEADER)
    assert table[1].split() == ["CRIT", "/srv", "xfs", "100G", "95G", "5.0G", "95%", "1%",
                                "/dev/vdb"]
    assert table[2].split()[:2] == ["OK", "/"]
    page = diskreport.render_html(data)
    assert "web&lt;1&gt;" in page and "web<1>" not in page
    assert "http://" not in page and "https://" not in page


# --- the end of a run: no interpreter teardown after diskreport's document -----------

FINISH_DRIVER = """
import atexit, sys
import ops.__main__ as m
if sys.argv[1] == "hook":
    atexit.register(lambda: sys.stdout.write("teardown ran\\n"))
if sys.argv[1] == "thread":
    import threading
# an object whose finaliser runs only in the interpreter's teardown
class Witness:
    def __del__(self):
        sys.stdout.write("teardown ran\\n")
sys.modules["ops"].witness = Witness()
sys.argv[1:] = [sys.argv[2], "--include", "/"] if sys.argv[2] == "diskreport" else [sys.argv[2]]
m.finish(m.main())
"""


@pytest.mark.parametrize("case, program, teardown", [
    ("plain", "diskreport", False), ("hook", "diskreport", True),
    ("thread", "diskreport", True), ("plain", "nosuch", True)])
def test_finish_skips_the_teardown_only_when_nothing_needs_it(case, program, teardown):
    proc = subprocess.run([sys.executable, "-S", "-c", FINISH_DRIVER, case, program],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert json.loads(lines[0])["ok"] is (program == "diskreport")  # the document is whole
    assert proc.returncode in ((0, 3) if program == "diskreport" else (2,))
    assert ("teardown ran" in lines[1:]) is teardown, proc.stdout
