"""``invoke scan`` (a network map seen from the fleet) and ``bench_sweep`` (bench.sweep)."""

from __future__ import annotations

import sys
from typing import Any

from fleetops.cli.authopts import ASK_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS

FORMATS = ("table", "json", "csv")


def check_targets(targets: str) -> None:
    """Reject a bad target list before connecting anywhere (one line, exit 5)."""
    from fleetops.errors import OptionError
    from ops._targets import TargetError, expand, split_items

    try:
        expand(split_items([targets]), auto_networks=lambda: [])
    except TargetError as exc:
        if "no address" not in str(exc):
            raise OptionError(f"--targets: {exc}") from None


def targets_args(host: Any, targets: str) -> list[str]:
    """``--targets`` for one host: the option, or with the default ``auto`` the host's
    ``scan_targets`` inventory variable when it has one."""
    if targets == "auto" and getattr(host, "vars", {}).get("scan_targets"):
        return ["--targets", str(host.vars["scan_targets"])]
    return ["--targets", targets]


def host_data(result: Any) -> dict[str, Any] | None:
    if result is None or result.status not in ("ok", "changed"):
        return None
    return result.extra.get("data") or {}


def combine(sweep_run: Any, arp_run: Any | None) -> Any:
    """One result per host: the sweep's, with the arpscan data under ``arp`` and the
    worse of the two statuses; the run's time and interruption cover both phases."""
    if arp_run is None:
        return sweep_run
    sweep_run.elapsed += arp_run.elapsed
    sweep_run.interrupted = sweep_run.interrupted or arp_run.interrupted
    for name, result in sweep_run.hosts.items():
        arp = arp_run.hosts.get(name)
        result.extra["arp"] = host_data(arp)
        if arp is not None and arp.failed and not result.failed:
            result.status = arp.status
            result.reason = f"arpscan: {arp.reason}"
    return sweep_run


def vantage_lines(run: Any) -> str:
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


@task(
    help={
        "inventory": "inventory file (Ansible INI or YAML)",
        "pattern": "host pattern (default all)",
        "limit": "further limit the hosts (same syntax, or @retry-file)",
        "targets": "CIDRs/ranges/addresses, or 'auto' (default): each host's connected "
                   "networks, or its scan_targets inventory variable",
        "arp": "also map addresses to MACs (arpscan) on each host",
        "backend": "probe backend on the hosts: auto, dgram, raw, ping, tcp (default auto)",
        "format": "table, json or csv (default table)",
        "json": "print the run's JSON document with the map under 'network'",
        "forks": f"parallel hosts (default {DEFAULT_FORKS})",
        "timeout": "connect timeout in seconds (default 10)",
        "command-timeout": "per-program timeout in seconds (default 300; 0 = none)",
        "accept-new": "record unknown host keys (changed keys are always refused)",
        "become": "run the scanners with sudo (raw sockets)",
        **ASK_HELP,
        "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
        "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
    },
)
def scan(c, inventory=None, pattern="all", limit=None, targets="auto", arp=False,
         backend="auto", format="table", json=False, forks=DEFAULT_FORKS, timeout="10",
         command_timeout=None, accept_new=False, become=False, retry_file="fleetops.retry",
         ask_become_pass=False, ask_pass=False, max_output=None):
    """Sweep networks from every selected host and merge what they see into one map."""
    from fleetops.cli import common
    from fleetops.errors import OptionError
    from fleetops.jobs import scan as netmap

    with common.cli_errors():
        if format not in FORMATS:
            raise OptionError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        if backend not in ("auto", "dgram", "raw", "ping", "tcp"):
            raise OptionError(f"--backend {backend!r} is not a sweep backend")
        check_targets(targets)
        options = common.runner_options(forks, timeout, command_timeout, None, accept_new,
                                        become, "root", ask_become_pass, ask_pass,
                                        max_output=max_output)
        hosts = common.targets(inventory, pattern, limit)
        from fleetops.ship.run import fleet_program

        def sweep_args(host: Any) -> list[str]:
            return [*targets_args(host, targets), "--backend", backend]

        sweep_run = fleet_program(hosts, "sweep", sweep_args, options)
        arp_run = None
        if arp and not sweep_run.interrupted:  # Ctrl-C stops the scan, not just one phase
            arp_run = fleet_program(hosts, "arpscan", lambda h: targets_args(h, targets), options)
        network = netmap.merge(
            {n: host_data(r) for n, r in sweep_run.hosts.items()},
            {n: host_data(r) for n, r in arp_run.hosts.items()} if arp_run else None)
        run = combine(sweep_run, arp_run)
        if json:
            common.finish(run, True, retry_file=retry_file, network=network)
            return
        if format == "table":
            from fleetops.cli.output import Printer

            sys.stdout.write(vantage_lines(run) + "\n" + netmap.render(network, format))
            common.finish(run, False, Printer(len(hosts)), retry_file)
            return
        sys.stdout.write(netmap.render(network, format))
        sys.stdout.flush()
        common.finish(run, False, None, retry_file)


@task(help={"runs": "measured runs per contender (default 5)"})
def bench_sweep(c, runs=5):
    """fleetops sweep (fast, pool) vs fping and nmap on a 254-address lab range."""
    from fleetops.cli.scanbench import bench

    bench(int(runs))
