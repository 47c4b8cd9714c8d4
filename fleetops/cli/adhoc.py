"""``invoke run``: one shell command on every selected host."""

from __future__ import annotations

from fleetops.cli.flags import task
from fleetops.cli.options import FleetOptions, fleet_options


@task(help={"command": "shell command run on each host (like Ansible's shell module)"})
@fleet_options()
def run(c, command, *, opts: FleetOptions):
    """Run an ad-hoc shell command on every selected host, in parallel."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.core.runner import Fleet, exec_result

    with common.cli_errors():
        options = opts.run_options()
        hosts = opts.hosts()
        printer = None if opts.json else Printer(len(hosts))
        with Fleet(options, common.target_for) as fleet:
            result = fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command)),
                               events=printer)
        opts.finish(result, printer)
