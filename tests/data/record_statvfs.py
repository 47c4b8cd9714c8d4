"""Re-record statvfs-df.json: statvfs tuples next to the `df -P -B1` / `df -P -i` lines.

Run as root from the repo root: python3 tests/data/record_statvfs.py
It mounts small tmpfs filesystems in a private mount namespace (unshare -m), fills
them partly, and records each mount only when two statvfs calls around df agree.
"""
import json
import os
import subprocess
import sys
import tempfile

SETUP = r"""
set -eu
d=$1
mkdir -p "$d/with space" "$d/inodes" "$d/full" "$d/nul"
mount -t tmpfs -o size=1m tmpfs "$d/with space"
mount -t tmpfs -o size=2m,nr_inodes=50 lab-data "$d/inodes"
mount -t tmpfs -o size=64k tmpfs "$d/full"
mount -t tmpfs -o size=0 unlimited "$d/nul"
head -c 700000 /dev/zero > "$d/with space/fill"
for i in $(seq 1 44); do : > "$d/inodes/f$i"; done
head -c 65536 /dev/zero > "$d/full/fill"
exec "$2" "$3" record "$d"
"""


def stat_tuple(path):
    s = os.statvfs(path)
    return [s.f_bsize, s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree]


def df_line(flag, path):
    out = subprocess.run(["df", "-P", flag, "--", path], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()[-1]


def record(top):
    paths = [os.path.join(top, n) for n in ("with space", "inodes", "full")] + ["/"]
    samples = []
    for path in paths:
        for _ in range(20):
            before = stat_tuple(path)
            lines = df_line("-B1", path), df_line("-i", path)
            if stat_tuple(path) == before:
                break
        else:
            sys.exit(f"{path} kept changing")
        name = "/" if path == "/" else "/srv/" + os.path.basename(path)
        samples.append({"name": name, "statvfs": before, "df_B1": lines[0].replace(path, name),
                        "df_i": lines[1].replace(path, name)})
    doc = {"recorded_with": subprocess.run(["df", "--version"], capture_output=True,
                                           text=True).stdout.splitlines()[0],
           "fields": ["f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                      "f_ffree"],
           "samples": samples}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statvfs-df.json")
    with open(out, "w") as handle:
        json.dump(doc, handle, indent=1)
        handle.write("\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        with tempfile.TemporaryDirectory() as top:
            subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", SETUP,
                            "sh", top, sys.executable, os.path.abspath(__file__)], check=True)
