"""``invoke scan`` (a network map seen from the fleet) and ``bench_sweep`` (bench.sweep)."""

from __future__ import annotations

from typing import Any

from fleetops.cli.flags import task
from fleetops.cli.options import FleetOptions, fleet_options
from fleetops.cli.output import renders
from fleetops.jobs.scan import ScanReport, host_data  # noqa: F401  (host_data: re-exported)

FORMATS = ("table", "json", "csv")


def vantage_lines(run: Any) -> str:
    """One line per vantage host: what it swept, or its status and reason."""
    from fleetops.sanitize import clean

    lines = []
    for name, result in run.hosts.items():
        data = host_data(result)
        if data is None:
            lines.append(f"{clean(name)} | {result.status.upper()} | {clean(result.reason)}")
        else:
            lines.append(f"{clean(name)} | swept {data.get('targets', 0)} addresses "
                         f"({clean(data.get('backend'))}/{clean(data.get('mode'))}): "
                         f"{len(data.get('alive', []))} answered in {data.get('elapsed_s')}s")
    return "\n".join(lines) + "\n"


@renders(ScanReport, "table")
def scan_table(report: ScanReport) -> str:
    """The vantage lines, a blank line, the address table (the recap follows)."""
    from fleetops.jobs.scan import render

    return vantage_lines(report.run) + "\n" + render(report.network, "table")


@renders(ScanReport, "json")
def scan_json(report: ScanReport) -> str:
    """The network map alone (``--format json``; ``--json`` is the run's document)."""
    from fleetops.jobs.scan import render

    return render(report.network, "json")


@renders(ScanReport, "csv")
def scan_csv(report: ScanReport) -> str:
    """One CSV row per address."""
    from fleetops.jobs.scan import render

    return render(report.network, "csv")


@task(
    help={
        "targets": "CIDRs/ranges/addresses, or 'auto' (default): each host's connected "
                   "networks, or its scan_targets inventory variable",
        "arp": "also map addresses to MACs (arpscan) on each host",
        "backend": "probe backend on the hosts: auto, dgram, raw, ping, tcp (default auto)",
        "format": "table, json or csv (default table)",
    },
)
@fleet_options()
def scan(c, targets="auto", arp=False, backend="auto", format="table", *, opts: FleetOptions):
    """Sweep networks from every selected host and merge what they see into one map.

    --json: the run's JSON document with the map under 'network'; --become: the scanners
    run with sudo (raw sockets)."""
    from fleetops.cli import common, output
    from fleetops.errors import OptionError
    from fleetops.jobs import scan as netmap

    with common.cli_errors():
        if format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        if backend not in netmap.BACKENDS:
            raise OptionError(f"--backend {backend!r} is not a sweep backend")
        netmap.check_targets(targets)
        options = opts.run_options()
        hosts = opts.hosts()
        report = netmap.scan(hosts, targets, backend, arp, options)
        if opts.json:
            output.finish(report.run, output.JsonReporter(), opts.retry_file,
                          network=report.network)
            return
        printer = output.Printer(len(hosts), recap=format == "table")
        printer.document(report, format)
        output.finish(report.run, printer, opts.retry_file)


@task(help={"runs": "measured runs per contender (default 5)"})
def bench_sweep(c, runs=5):
    """fleetops sweep (fast, pool) vs fping and nmap on a 254-address lab range."""
    from fleetops.cli.scanbench import bench

    bench(int(runs))
