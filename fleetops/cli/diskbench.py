"""``invoke bench.disk-history``: the disk history at fleet scale (no lab needed)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit


@task(name="disk-history",
      help={"hosts": "synthetic hosts (default 1000)", "mounts": "mounts per host (default 10)",
            "days": "daily runs already stored (default 90)"})
def disk_history(c, hosts=1000, mounts=10, days=90):
    """Time to append one run and to forecast every mount, on a filled history (target < 1 s)."""
    from fleetops import diskbench

    hosts, mounts, days = int(hosts), int(mounts), int(days)
    with tempfile.TemporaryDirectory(prefix="fleetops-bench-") as tmp:
        path = Path(tmp) / "disk-history.sqlite"
        start = time.perf_counter()
        diskbench.fill(path, hosts, mounts, days)
        fill_s = time.perf_counter() - start
        size_mib = path.stat().st_size / (1 << 20)
        result = diskbench.measure(path, hosts, mounts, days)
    print(f"filled {hosts * mounts * days} samples in {fill_s:.1f}s ({size_mib:.0f} MiB); "
          f"{result['growing']}/{result['series']} mounts growing", file=sys.stderr)
    print(f"RESULT bench.disk-history hosts={hosts} mounts={mounts} days={days} "
          f"append_s={result['append_s']:.3f} forecast_s={result['forecast_s']:.3f}")
    if result["series"] != hosts * mounts:
        raise Exit("fleetops: not every mount has a series", code=2)
