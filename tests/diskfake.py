"""A recorded disk-report fleet on the fake transport (``fleetops.core.testing``).

Every host speaks the zipapp handshake (``ship.handshake``: REQUEST, the zipapp on stdin,
then the program's document) and answers with a recorded ``diskreport`` document, or
fails in one of the ways real hosts do: unreachable, a hostile document, a failed
program, no python3 (then the ``df -P`` fallback answers), a dropped connection.
Used by the golden comparison (``tests/test_diskjob_golden.py``) and the library tests
(``tests/test_diskjob_fake.py``)."""

from __future__ import annotations

import json
from typing import Any

from fleetops.core.testing import FakeHost, FakeNetwork
from fleetops.jobs.disk.fallback import DF_INODES, DF_SPACE
from fleetops.ship.handshake import ABORT_MARKER, REQUEST_MARKER
from fleetops.ship.run import RC_NO_PYTHON

GIB = 1 << 30
NAMES = ("web1", "web2", "db1", "db2", "db3", "old1", "evil", "lb1", "gone")


def mount(point: str, pct: int | None, level: str = "ok", over: list[str] | None = None,
          device: str | None = None, fstype: str = "ext4", inodes: int | None = 3,
          error: str | None = None) -> dict[str, Any]:
    """One mount of the program's ``data.mounts`` (a 100 GiB filesystem at ``pct`` %)."""
    size = 100 * GIB
    return {"mountpoint": point, "device": device or f"/dev/{point.strip('/') or 'root'}",
            "fstype": fstype, "size_bytes": None if pct is None else size,
            "used_bytes": None if pct is None else pct * GIB,
            "avail_bytes": None if pct is None else (100 - pct) * GIB, "use_pct": pct,
            "inodes_total": None if inodes is None else 1000,
            "inodes_used": None if inodes is None else inodes * 10, "inodes_pct": inodes,
            "level": level, "over": over or [], "error": error}


def document(mounts: list[dict[str, Any]], ok: bool = True,
             error: str | None = None) -> dict[str, Any]:
    """The program's whole result document (contract keys + data)."""
    over = [m["mountpoint"] for m in mounts if m["level"] in ("warn", "crit")]
    levels = [m["level"] or "ok" for m in mounts] or ["ok"]
    worst = max(levels, key=("ok", "unknown", "warn", "crit").index)
    return {"ok": ok, "changed": False, "error": error, "program": "diskreport",
            "data": {"hostname": "recorded", "mounts": mounts, "over": over,
                     "worst_level": worst, "skipped": [], "source": "program"}}


def answering(doc: Any) -> Any:
    """A host program: the handshake, then ``doc`` (a dict as JSON, or raw bytes)."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()

    def program(proc) -> int:
        proc.write(b"\n" + REQUEST_MARKER + b"\n")
        proc.read()
        proc.write(body)
        return 0

    return program


DF_P = ("Filesystem         1024-blocks      Used Available Capacity Mounted on\n"
        "/dev/sda1             20511312  15432100   4014580      80% /\n"
        "/dev/mapper/vg-data  104806400  99565080   5241320      96% /srv/data\n")
DF_PI = ("Filesystem            Inodes   IUsed   IFree IUse% Mounted on\n"
         "/dev/sda1            1310720 1245184   65536   95% /\n"
         "/dev/mapper/vg-data        -       -       -     - /srv/data\n")
MOUNTS = ("/dev/sda1 / ext4 rw 0 0\n/dev/mapper/vg-data /srv/data xfs rw 0 0\n"
          "proc /proc proc rw 0 0\n")


def no_python(proc) -> int:
    """A host without python3: the bootstrap aborts, the df commands answer."""
    if proc.command == DF_SPACE:
        proc.write((DF_P + "@@fleetops-mounts@@\n" + MOUNTS).encode())
        return 0
    if proc.command == DF_INODES:
        proc.write(DF_PI.encode())
        return 0
    proc.write(b"\n" + ABORT_MARKER + b"\n")
    proc.write(b"no python3 interpreter found (tried: python3)\n", "stderr")
    return RC_NO_PYTHON


def dropped(proc) -> int:
    proc.drop_connection()
    return 0


def fleet_docs() -> dict[str, Any]:
    """Host name -> what its program prints (dict or bytes), for the answering hosts."""
    bidi = "/srv/\u202eevil\x1b[31m"
    return {
        "web1": document([mount("/", 40), mount("/srv", 91, "crit", ["space_crit"]),
                          mount("/home", 85, "warn", ["space_warn"], inodes=50)]),
        "web2": document([mount("/", 85, "warn", ["space_warn"]),
                          mount("/var", 85, "crit", ["space_warn", "inodes_crit"], inodes=95),
                          mount("/nfs", None, "unknown", device="nas:/export", fstype="nfs4",
                                inodes=None, error="statvfs timed out after 5s")]),
        "db2": document([{**mount("/", 10), "size_bytes": "abc"}]),
        "db3": document([], ok=False, error="cannot read /proc/self/mounts: permission denied"),
        "evil": document([mount(bidi, 50, device="/dev/=cmd|x", fstype="ext4\nBcc: x")]),
        "lb1": document([mount("/", 12), mount("/boot", 30, fstype="vfat"),
                         mount("/shared", 60, device="nas:/export/", fstype="nfs4")]),
    }


def fleet_network(docs: dict[str, Any] | None = None) -> FakeNetwork:
    """The recorded fleet: :func:`fleet_docs` hosts plus an unreachable ``db1``, a
    python-less ``old1`` (df fallback) and ``gone`` (drops the connection)."""
    docs = fleet_docs() if docs is None else docs
    hosts = {name: FakeHost(answering(doc)) for name, doc in docs.items()}
    hosts["db1"] = FakeHost(unreachable="db1:22: Connection refused")
    hosts["old1"] = FakeHost(no_python)
    hosts["gone"] = FakeHost(dropped)
    return FakeNetwork(hosts)
