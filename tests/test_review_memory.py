"""Memory stays bounded by ``--max-output`` for ``ansible_connection=local`` hosts too,
and ``--json`` is written piece by piece (never one whole-document string).

Before: a local command printing 400 MB grew the control process to 6.7 GB (139 s): the
local connection kept every byte. Four local hosts printing 20 MB of binary each with
``--json`` peaked at 1.85 GB (each byte a 6-character ``\\udcNN`` escape, the document
built as one string and then copied).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from fleetops.results import HostResult, RunResult

REPO = Path(__file__).resolve().parents[1]
MEASURE = ("import resource, subprocess, sys; "
           "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE); "
           "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
           "len(p.stdout)); sys.stdout.write(p.stdout.decode()[-400:])")


def _peak(inventory: Path, *args: str) -> tuple[int, int, str]:
    """(exit code, peak RSS of the invoke process in KiB, tail of its stdout)."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "invoke", "-r", str(REPO),
         "run", "-i", str(inventory), "--retry-file", "", *args],
        capture_output=True, text=True, timeout=120, check=False)
    head, _, tail = proc.stdout.partition("\n")
    code, peak, _size = (int(x) for x in head.split())
    return code, peak, tail


def test_local_host_flood_is_capped(tmp_path):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("a ansible_connection=local\n")
    code, peak, tail = _peak(inventory, "head -c 300000000 /dev/zero")
    assert code == 0
    assert "output cut at --max-output" in tail and "a (stdout)" in tail
    assert peak < 300 * 1024, f"peak RSS {peak // 1024} MiB"


def test_json_of_binary_floods_stays_small(tmp_path):
    inventory = tmp_path / "inv.ini"
    inventory.write_text("".join(f"h{i} ansible_connection=local\n" for i in range(4)))
    code, peak, tail = _peak(inventory, "--json", "head -c 20000000 /dev/urandom; "
                             "head -c 20000000 /dev/urandom >&2")
    assert code == 0 and tail.rstrip().endswith("}")
    assert peak < 400 * 1024, f"peak RSS {peak // 1024} MiB"


def test_write_json_is_dumps():
    run = RunResult()
    run.hosts["a"] = HostResult("a", "ok", rc=0, stdout="x\udcff\u001b\n", stderr="",
                                extra={"use_pct": float("inf")})
    run.hosts["b"] = HostResult("b", "failed", rc=2, reason="bad")
    out = io.StringIO()
    run.write_json(out, report={"warn": 80})
    assert out.getvalue() == run.dumps(report={"warn": 80})
    assert json.loads(out.getvalue())["hosts"]["a"]["use_pct"] is None
