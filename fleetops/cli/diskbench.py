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
    from fleetops.lab import diskbench

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


@task(name="disk-rtt",
      help={"delay-ms": "one-way delay added by the relay (default 25: RTT 50 ms)",
            "runs": "runs of each command per connection (default 15)"})
def disk_rtt(c, delay_ms=25, runs=15):
    """Round trips of one warm disk report vs one ad-hoc `df -P` on an open connection:
    (time with an added RTT - time without) / RTT, fastest of RUNS, lab host lab01,
    the delay added by a ProxyCommand relay (fleetops/lab/delayrelay.py)."""
    from fleetops.cli.bench import lab_of

    delay_ms, runs = float(delay_ms), int(runs)
    relay = Path(__file__).resolve().parents[1] / "lab" / "delayrelay.py"
    with lab_of(2) as lab, tempfile.TemporaryDirectory(prefix="fleetops-rtt-") as tmp:
        host = lab.hosts[0].name
        delayed = Path(tmp) / "delayed.ini"
        delayed.write_text(lab.inventory_path.read_text() + "fleetops_proxy_command="
                           f"{sys.executable} {relay} %h %p {delay_ms:g}\n")
        direct = _exec_times(lab.inventory_path, host, runs)
        slow = _exec_times(delayed, host, runs)
    rtt = 2 * delay_ms / 1000
    trips = {kind: (slow[kind] - direct[kind]) / rtt for kind in direct}
    print(f"fastest of {runs}: " + ", ".join(
        f"{kind} {direct[kind] * 1000:.1f} ms direct, {slow[kind] * 1000:.1f} ms delayed"
        for kind in direct), file=sys.stderr)
    print(f"RESULT bench.disk-rtt rtt_ms={2 * delay_ms:g} adhoc_round_trips={trips['adhoc']:.2f} "
          f"disk_round_trips={trips['disk']:.2f} extra={trips['disk'] - trips['adhoc']:.2f}")


def _exec_times(inventory: Path, host: str, runs: int) -> dict[str, float]:
    """Fastest wall time of ``df -P`` and of a warm ``diskreport`` on one connection."""
    from fleetops.cli import common
    from fleetops.cli.diskreport import program_args
    from fleetops.config.targets import target_for
    from fleetops.core.runner import Fleet
    from fleetops.results import HostResult
    from fleetops.ship.run import run_program
    from fleetops.ship.zipapp import build_zipapp

    app = build_zipapp()
    argv = program_args(80, 90, 80, 90, [], False, [], [])
    best = {"adhoc": float("inf"), "disk": float("inf")}

    def work(session) -> HostResult:
        if run_program(session, "diskreport", argv, app).status == "failed":  # warm up
            return HostResult(session.host.name, "failed", reason="diskreport failed")
        for _ in range(runs):
            start = time.perf_counter()
            session.exec("df -P")
            best["adhoc"] = min(best["adhoc"], time.perf_counter() - start)
            start = time.perf_counter()
            run_program(session, "diskreport", argv, app)
            best["disk"] = min(best["disk"], time.perf_counter() - start)
        return HostResult(session.host.name, "ok")

    options = common.runner_options(1, "10", "60", None, False)
    with Fleet(options, target_for) as fleet:
        run = fleet.run(common.targets(str(inventory), host, None), work)
    if run.hosts[host].status != "ok":
        raise Exit(f"fleetops: {host}: {run.hosts[host].reason}", code=2)
    return best
