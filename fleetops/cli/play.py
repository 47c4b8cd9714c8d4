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

from fleetops.cli.flags import task
from fleetops.cli.options import Default, FleetOptions, fleet_options
from fleetops.cli.output import PlayPrinter  # noqa: F401  (re-exported: the play's printer)


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
        "check": "change nothing; report what would change (run tasks are skipped unless "
                 "check_mode_safe)",
        "diff": "show the unified diff of files and cron entries",
        "extra-vars": "variables that win over all others: key=value ..., JSON/YAML, or @file "
                      "(repeatable)",
        "tags": "run only tasks with these tags (comma-separated, repeatable; all, tagged, "
                "untagged; 'always' tasks run unless skipped)",
        "skip-tags": "skip tasks with these tags (comma-separated, repeatable)",
    },
)
@fleet_options(exclude=["pattern"],  # each play's hosts are its pattern
               defaults={"retry_file": Default(None, "<playbook stem>.retry")})
def play(c, playbook, check=False, diff=False, extra_vars=None, tags=None, skip_tags=None, *,
         opts: FleetOptions):
    """Run a playbook: plays of tasks (run, template, copy, cron, disk_report, sweep, ...)."""
    from fleetops.cli import common, output
    from fleetops.playbook.extravars import parse_extra_vars
    from fleetops.playbook.keys import split_tags
    from fleetops.playbook.load import load_playbook
    from fleetops.playbook.run import Engine, network_inventory

    with common.cli_errors():
        options = opts.run_options()
        variables = parse_extra_vars(extra_vars)
        book = load_playbook(playbook)
        selections = select_hosts(book, opts.inventory, opts.limit, variables)
        reporter = output.JsonReporter() if opts.json else output.PlayPrinter(diff, check)
        engine = Engine(book, options, common.target_for, check, diff, reporter,
                        extra_vars=variables, tags=split_tags(tags),
                        skip_tags=split_tags(skip_tags))
        outcome = engine.run(selections)
        extra: dict[str, Any] = {"playbook": playbook, "check": check, "plays": outcome.plays}
        network = network_inventory(outcome.states)
        if network and network["summary"]["addresses"] > network["summary"]["no-reply"]:
            extra["network"] = network  # an address answered or has a MAC
        retry = opts.retry_file if opts.retry_file is not None else \
            f"{Path(playbook).stem}.retry"
        output.finish(outcome.result(diff), reporter, retry, **extra)
