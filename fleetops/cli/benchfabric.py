"""``invoke bench.fabric``: a user task through fleetops.Fleet vs Fabric's ThreadingGroup."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from invoke import task
from invoke.exceptions import Exit


@task(help={"hosts": "lab hosts (default 100)", "runs": "measured runs each (default 5)"})
def fabric(c, hosts=100, runs=5):
    """Median wall time of one `run` + one 1 KiB `put` per host: fleetops.Fleet (bounded
    pool, strict host keys) vs Fabric's ThreadingGroup (one thread per host), same run."""
    from fleetops.cli.bench import lab_of, log
    from fleetops.lab.bench import Series, interleave, measure

    hosts = int(hosts)
    with lab_of(hosts) as lab, tempfile.TemporaryDirectory(prefix="fleetops-bench-") as tmp:
        local = Path(tmp) / "payload"
        local.write_bytes(b"x" * 1024)
        child = [sys.executable, "-m", "fleetops.lab.bench_fabric"]
        fleet_argv = [*child, "fleetops", str(lab.inventory_path), str(local)]
        fabric_argv = [*child, "fabric", str(lab.known_hosts), str(lab.client_key),
                       str(lab.hosts[0].port), str(local), *(h.address for h in lab.hosts)]
        fleet, fab = Series("fleetops"), Series("fabric")
        interleave([(fleet, lambda: measure(fleet_argv)),
                    (fab, lambda: measure(fabric_argv))], int(runs), log=log)
        got_fleet = min(_count(s.stdout) for s in fleet.samples)
        got_fab = min(_count(s.stdout) for s in fab.samples)
    log(f"hosts done: fleetops {got_fleet}/{hosts}, fabric {got_fab}/{hosts}")
    print(f"RESULT bench.fabric hosts={hosts} fleetops_s={fleet.median_s:.3f} "
          f"fabric_s={fab.median_s:.3f} ratio={fleet.median_s / fab.median_s:.2f} "
          f"peak_rss_mib={fleet.peak_rss_mib:.1f}")
    if got_fleet != hosts or got_fab != hosts:
        raise Exit("fleetops: not every host ran the task", code=2)


def _count(stdout: bytes) -> int:
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith("OK "):
            return int(line[3:])
    return 0
