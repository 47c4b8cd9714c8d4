"""``invoke play``: run a playbook (plays of tasks) on the selected hosts.

The playbook is loaded and checked completely (exit 4, ``file:line: ...``) and every
play's host pattern resolved before any host is contacted. Text output: per task
``TASK [name]`` and one ``host | STATUS | detail`` line per host (plus the diff with
``--diff``), then a recap counting tasks per host. ``--json``: the runner's document;
each host entry has ``tasks`` (name, action, status, reason, data, diff with --diff).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleetops.cli.authopts import AUTH_HELP
from fleetops.cli.flags import task
from fleetops.cli.output import PlayPrinter  # noqa: F401  (re-exported: the play's printer)
from fleetops.errors import DEFAULT_FORKS


def select_hosts(book: Any, inventory_path: str, limit: str | None,
                 extra_vars: dict[str, Any] | None = None) -> list[tuple[Any, list]]:
    """Every play's hosts (:func:`fleetops.playbook.select.select_hosts`) from the
    ``-i`` inventory, with ``-u/--remote-user`` applied."""
    from fleetops.cli.common import need, with_remote_user
    from fleetops.inventory.load import load_inventory
    from fleetops.playbook.select import select_hosts as select

    inventory = load_inventory(need(inventory_path, "-i/--inventory"))
    return select(book, inventory, limit, extra_vars, with_remote_user)


@task(
    iterable=["extra_vars", "tags", "skip_tags"],
    help={
        "playbook": "the playbook file (YAML list of plays)",
        "inventory": "inventory file (Ansible INI or YAML)",
        "limit": "further limit every play's hosts (pattern, or @retry-file)",
        "check": "change nothing; report what would change (run tasks are skipped unless "
                 "check_mode_safe)",
        "diff": "show the unified diff of files and cron entries",
        "forks": f"parallel hosts (default {DEFAULT_FORKS})",
        "json": "print one JSON document instead of text",
        "timeout": "connect/handshake/auth timeout in seconds (default 10)",
        "command-timeout": "per-command timeout in seconds (default 300; 0 = none)",
        "deadline": "whole-host deadline per task in seconds (default timeout+command-timeout+5; "
                    "0 = none)",
        "accept-new": "record unknown host keys (changed keys are always refused)",
        **AUTH_HELP,
        "retry-file": "where to list failed/unreachable hosts (default <playbook stem>.retry)",
        "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
        "extra-vars": "variables that win over all others: key=value ..., JSON/YAML, or @file "
                      "(repeatable)",
        "tags": "run only tasks with these tags (comma-separated, repeatable; all, tagged, "
                "untagged; 'always' tasks run unless skipped)",
        "skip-tags": "skip tasks with these tags (comma-separated, repeatable)",
    },
)
def play(c, playbook, inventory=None, limit=None, check=False, diff=False, forks=DEFAULT_FORKS,
         json=False, timeout="10", command_timeout=None, deadline=None, accept_new=False,
         become=False, become_user="root", ask_become_pass=False, retry_file=None,
         ask_pass=False, max_output=None, extra_vars=None, tags=None, skip_tags=None):
    """Run a playbook: plays of tasks (run, template, copy, cron, disk_report, sweep, ...)."""
    from fleetops.cli import common, output
    from fleetops.playbook.extravars import parse_extra_vars
    from fleetops.playbook.keys import split_tags
    from fleetops.playbook.load import load_playbook
    from fleetops.playbook.run import Engine, network_inventory

    with common.cli_errors():
        options = common.runner_options(forks, timeout, command_timeout, deadline,
                                        accept_new, become, become_user, ask_become_pass,
                                        ask_pass, max_output=max_output)
        variables = parse_extra_vars(extra_vars)
        book = load_playbook(playbook)
        selections = select_hosts(book, inventory, limit, variables)
        reporter = output.JsonReporter() if json else output.PlayPrinter(diff, check)
        engine = Engine(book, options, common.target_for, check, diff, reporter,
                        extra_vars=variables, tags=split_tags(tags),
                        skip_tags=split_tags(skip_tags))
        outcome = engine.run(selections)
        extra: dict[str, Any] = {"playbook": playbook, "check": check, "plays": outcome.plays}
        network = network_inventory(outcome.states)
        if network and network["summary"]["addresses"] > network["summary"]["no-reply"]:
            extra["network"] = network  # an address answered or has a MAC
        retry = retry_file if retry_file is not None else f"{Path(playbook).stem}.retry"
        output.finish(outcome.result(diff), reporter, retry, **extra)
