"""``invoke play``: run a playbook (plays of tasks) on the selected hosts.

The playbook is loaded and checked completely (exit 4, ``file:line: ...``) and every
play's host pattern resolved before any host is contacted. Text output: per task
``TASK [name]`` and one ``host | STATUS | detail`` line per host (plus the diff with
``--diff``), then a recap counting tasks per host. ``--json``: the runner's document;
each host entry has ``tasks`` (name, action, status, reason, data, diff with --diff).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from fleetops.cli.authopts import AUTH_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS

_COLORS = {"ok": "32", "changed": "33", "failed": "31", "unreachable": "31;1", "skipped": "36"}
STATUSES = ("ok", "changed", "unreachable", "failed", "skipped")


class PlayPrinter:
    """Text output: headers, one line per host and task, diffs, network table, recap."""

    def __init__(self, show_diff: bool, check: bool, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.show_diff = show_diff
        self.check = check
        self.color = self.out.isatty()

    def _paint(self, text: str, status: str) -> str:
        return f"\x1b[{_COLORS[status]}m{text}\x1b[0m" if self.color else text

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def play(self, play: Any, hosts: list[Any]) -> None:
        mode = " (check mode)" if self.check else ""
        line = f"\nPLAY [{play.name}]{mode} " + "*" * 40 + "\n"
        if not hosts:
            line += "skipping: no hosts matched\n"
        self._write(line)

    def task(self, task: Any) -> None:
        head = "RUNNING HANDLER" if getattr(task, "handler", False) else "TASK"
        self._write(f"\n{head} [{task.name}] " + "*" * 40 + "\n")

    def host(self, host: str, record: Any) -> None:
        from fleetops.sanitize import clean
        from fleetops.sanitize import lines as text_lines

        detail = record.reason if record.status in ("failed", "unreachable", "skipped") \
            else record.summary
        host = clean(host)
        line = f"{host} | {record.status.upper()}" + (f" | {clean(detail)}" if detail else "")
        lines = [self._paint(line, record.status)]
        if self.show_diff and record.diff:
            lines += [f"{host} |   {text}" for text in text_lines(record.diff)]
        self._write("\n".join(lines) + "\n")

    def stopped(self, reason: str) -> None:
        from fleetops.sanitize import clean

        self._write(self._paint(f"\nPLAY STOPPED: {clean(reason)}", "failed") + "\n")

    def network(self, entries: list[dict[str, Any]]) -> None:
        lines = ["", "NETWORK INVENTORY " + "*" * 40]
        for entry in entries:
            rtt = "-" if entry["rtt_ms"] is None else f"{entry['rtt_ms']:.3f}ms"
            macs = ",".join(entry["macs"]) or "-"
            lines.append(f"{entry['ip']:<15} rtt={rtt:<10} mac={macs} "
                         f"seen_by={len(entry['seen_by'])} arp_by={len(entry['arp_by'])}")
        self._write("\n".join(lines) + "\n")

    def recap(self, run: Any, retry_file: str | None = None) -> None:
        from fleetops.sanitize import clean

        names = {name: clean(name) for name in run.hosts}
        width = max((len(n) for n in names.values()), default=4)
        lines = ["", "RECAP " + "*" * 60]
        for name, result in run.hosts.items():
            tasks = result.extra.get("tasks") or []
            counts = " ".join(f"{s}={sum(1 for t in tasks if t['status'] == s)}"
                              for s in STATUSES)
            note = f"  ({clean(result.reason)})" if not tasks and result.reason else ""
            lines.append(f"{self._paint(names[name].ljust(width), result.status)} : "
                         f"{counts}{note}")
        total = " ".join(f"{k}={v}" for k, v in run.summary.items())
        lines.append(f"{len(run.hosts)} hosts in {run.elapsed:.2f}s: {total}")
        if self.check:
            lines.append("check mode: nothing was changed")
        if run.interrupted:
            lines.append("interrupted: results above are what finished before Ctrl-C")
        if retry_file:
            lines.append(f"retry failed/unreachable hosts with: --limit @{retry_file}")
        self._write("\n".join(lines) + "\n")


def play_pattern(book: Any, play: Any, extra_vars: dict[str, Any]) -> str:
    """A play's ``hosts``; a templated one (``"{{ target | default('all') }}"``) is rendered
    with the play's vars and the extra vars, as Ansible does (no host vars exist yet)."""
    from fleetops.errors import InputError
    from fleetops.playbook.templating import RenderError, templated

    if not templated(play.hosts):
        return play.hosts
    try:
        pattern = book.renderer.value(play.hosts, {**play.vars, **extra_vars})
    except RenderError as exc:
        raise InputError(f"play {play.name!r}: hosts: {exc}", book.path,
                         play.hosts_line) from None
    if isinstance(pattern, list) and all(isinstance(p, str) for p in pattern):
        pattern = ":".join(pattern)
    if not isinstance(pattern, str) or not pattern.strip():
        raise InputError(f"play {play.name!r}: hosts renders to {pattern!r}, not a pattern",
                         book.path, play.hosts_line)
    return pattern


def select_hosts(book: Any, inventory_path: str, limit: str | None,
                 extra_vars: dict[str, Any] | None = None) -> list[tuple[Any, list]]:
    """Every play's hosts, resolved before anything runs (errors name the play's line)."""
    from fleetops.cli.common import need, with_remote_user
    from fleetops.errors import InputError
    from fleetops.inventory.load import load_inventory

    inventory = load_inventory(need(inventory_path, "-i/--inventory"))
    if not len(inventory):
        raise InputError("the inventory has no hosts", inventory.path)
    if limit:
        inventory.select("all", limit)  # a bad --limit is reported as such
    selections = []
    for play in book.plays:
        pattern = play_pattern(book, play, extra_vars or {})
        try:
            selections.append((play, with_remote_user(inventory.select(pattern, limit))))
        except InputError as exc:
            raise InputError(f"play {play.name!r}: hosts {pattern!r}: {exc}", book.path,
                             play.hosts_line) from None
    if not any(hosts for _, hosts in selections):
        where = " with --limit " + repr(limit) if limit else ""
        raise InputError(f"no play selects any host of {inventory.path}{where}", book.path,
                         book.plays[0].hosts_line if book.plays else None)
    return selections


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
    from fleetops.cli import common
    from fleetops.playbook.extravars import parse_extra_vars
    from fleetops.playbook.keys import split_tags
    from fleetops.playbook.load import load_playbook
    from fleetops.playbook.run import Engine, Reporter, network_inventory

    with common.cli_errors():
        options = common.runner_options(forks, timeout, command_timeout, deadline,
                                        accept_new, become, become_user, ask_become_pass,
                                        ask_pass, max_output=max_output)
        variables = parse_extra_vars(extra_vars)
        book = load_playbook(playbook)
        selections = select_hosts(book, inventory, limit, variables)
        printer = None if json else PlayPrinter(diff, check)
        engine = Engine(book, options, common.target_for, check, diff, printer or Reporter(),
                        extra_vars=variables, tags=split_tags(tags),
                        skip_tags=split_tags(skip_tags))
        outcome = engine.run(selections)
        run = outcome.result(diff)
        network = network_inventory(outcome.states)
        if printer is not None and network:
            printer.network(network)
        extra: dict[str, Any] = {"playbook": playbook, "check": check, "plays": outcome.plays}
        if network:
            extra["network"] = network
        retry = retry_file if retry_file is not None else f"{Path(playbook).stem}.retry"
        common.finish(run, json, printer, retry, **extra)
