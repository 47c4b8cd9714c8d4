"""``invoke run``: one shell command on every selected host."""

from __future__ import annotations

from fleetops.cli.authopts import AUTH_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS


@task(
    help={
        "command": "shell command run on each host (like Ansible's shell module)",
        "inventory": "inventory file (Ansible INI or YAML)",
        "pattern": "host pattern: names, globs, groups, a:b, a:&b, a:!b (default all)",
        "limit": "further limit the hosts (same syntax, or @retry-file)",
        "forks": f"parallel hosts (default {DEFAULT_FORKS})",
        "timeout": "connect/handshake/auth timeout in seconds (default 10)",
        "connection-attempts": "tries when a server drops the connection before its SSH "
                               "banner (default 3)",
        "command-timeout": "per-command timeout in seconds (default 300; 0 = none)",
        "deadline": "whole-host deadline in seconds (default timeout+command-timeout+5; 0 = none)",
        "json": "print one JSON document instead of text",
        "accept-new": "record unknown host keys (changed keys are always refused)",
        **AUTH_HELP,
        "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
        "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
    },
)
def run(c, command, inventory=None, pattern="all", limit=None, forks=DEFAULT_FORKS,
        timeout="10", command_timeout=None, deadline=None, json=False, accept_new=False,
        become=False, become_user="root", ask_become_pass=False, retry_file="fleetops.retry",
        ask_pass=False, connection_attempts=None, max_output=None):
    """Run an ad-hoc shell command on every selected host, in parallel."""
    from fleetops.cli import common
    from fleetops.cli.output import Printer
    from fleetops.core.runner import Fleet, exec_result

    with common.cli_errors():
        options = common.runner_options(forks, timeout, command_timeout, deadline,
                                        accept_new, become, become_user, ask_become_pass,
                                        ask_pass, connection_attempts, max_output)
        hosts = common.targets(inventory, pattern, limit)
        printer = None if json else Printer(len(hosts))
        with Fleet(options, common.target_for) as fleet:
            result = fleet.run(hosts, lambda s: exec_result(s.host.name, s.exec(command)),
                               on_result=printer.host if printer else None,
                               on_tick=printer.tick if printer else None)
        common.finish(result, json, printer, retry_file)
