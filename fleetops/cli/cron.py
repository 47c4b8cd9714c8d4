"""``invoke cron.install|remove|list``: named cron jobs across a fleet.

Schedule, name, target and command are checked here first (exit 5, nothing
touched); then ``ops/cron`` runs on every selected host through
:func:`fleetops.ship.run.fleet_program`. Each host is ``changed`` or ``ok``; its
program data (target, name, path, action, diff, backup) is in the JSON entry
under ``data``. ``--check`` changes nothing and prints every host's diff.
The lead adds ``install``, ``remove`` and ``list_`` as collection ``cron``.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from fleetops.cli.authopts import ASK_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS

TARGET_HELP = "user (crontab, default), cron.d, cron.daily, cron.hourly, cron.weekly, cron.monthly"
COMMON_HELP = {
    "inventory": "inventory file (Ansible INI or YAML)",
    "pattern": "host pattern (default all)",
    "limit": "further limit the hosts (same syntax, or @retry-file)",
    "json": "print one JSON document instead of text",
    "forks": f"parallel hosts (default {DEFAULT_FORKS})",
    "timeout": "connect/handshake/auth timeout in seconds (default 10)",
    "command-timeout": "per-command timeout in seconds (default 300; 0 = none)",
    "accept-new": "record unknown host keys (changed keys are always refused)",
    "become": "run with sudo as root (needed for cron.d, cron.* dirs, other users' crontabs)",
    **ASK_HELP,
    "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
    "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
    "user": "crontab owner (target user; default: the login user) or run-as user (cron.d: root)",
}
CHANGE_HELP = {
    **COMMON_HELP,
    "name": "entry name: any one line in a crontab (its marker comment, as Ansible's), "
            "a file name in /etc/cron.* ([A-Za-z0-9_-], run-parts' rule)",
    "target": TARGET_HELP,
    "check": "dry run: print each host's diff, change nothing",
}
INSTALL_HELP = {
    **CHANGE_HELP,
    "schedule": "five fields (e.g. '30 2 * * mon-fri') or @daily & co; unused for cron.* dirs",
    "job": "shell command, unescaped (fleetops escapes % and wraps it in flock; cron's "
           "limit: 998 bytes with the wrapper)",
}
LIST_HELP = {**COMMON_HELP, "user": "whose crontab to list (default: the login user)"}


def describe(kind: str, result: Any, show_diff: bool) -> str:
    """The text lines of one host (host text escaped: :mod:`fleetops.sanitize`)."""
    from fleetops.sanitize import clean, lines

    name = clean(result.name)
    head = f"{name} | {result.status.upper()}"
    if result.status in ("failed", "unreachable"):
        return f"{head} | {clean(result.reason)}\n"
    data = result.extra.get("data") or {}
    if kind == "list":
        rows = data.get("entries") or []
        return f"{head} | {len(rows)} entries\n" + "".join(
            f"{name} |   {format_entry(row)}\n" for row in rows)
    out = [f"{head} | {clean(data.get('action'))} {clean(data.get('path'))}"]
    if data.get("backup"):
        out.append(f"{name} | backup: {clean(data['backup'])}")
    if show_diff:
        out += [f"{name} | {line}" for line in lines(data.get("diff") or "")]
    return "\n".join(out) + "\n"


def format_entry(row: dict[str, Any]) -> str:
    from fleetops.sanitize import clean

    owner = row.get("managed_by") or "foreign"
    where = row.get("target")
    name = row.get("name") or "-"
    when = row.get("schedule") or where
    text = f"[{owner}] {where} {name}: {when} {row.get('user') or ''} {row.get('command') or ''}"
    if row.get("ignored"):
        text += f"  (IGNORED: {row['ignored']})"
    return clean(" ".join(part for part in text.split(" ") if part))


class _Lines:
    """Per-host lines as hosts finish, then the standard recap."""

    def __init__(self, kind: str, show_diff: bool) -> None:
        self.kind = kind
        self.show_diff = show_diff
        self.lock = threading.Lock()

    def host(self, result: Any, run: Any) -> None:
        with self.lock:
            sys.stdout.write(describe(self.kind, result, self.show_diff))
            sys.stdout.flush()

    def recap(self, run: Any, retry_file: str | None = None) -> None:
        from fleetops.cli.output import format_recap

        sys.stdout.write(format_recap(run, sys.stdout.isatty(), retry_file))
        sys.stdout.flush()


def fleet_cron(kind: str, argv_factory: Any, opts: dict[str, Any], show_diff: bool) -> None:
    """Check the options, run ``ops/cron`` on the selected hosts and finish the task."""
    from fleetops.cli import common
    from fleetops.ship.run import fleet_program

    with common.cli_errors():
        argv = argv_factory()  # OptionError (exit 5) before any inventory or host is touched
        options = common.runner_options(opts["forks"], opts["timeout"], opts["command_timeout"],
                                        None, opts["accept_new"], opts["become"], "root",
                                        opts.get("ask_become_pass", False),
                                        opts.get("ask_pass", False),
                                        max_output=opts.get("max_output"))
        hosts = common.targets(opts["inventory"], opts["pattern"], opts["limit"])
        printer = None if opts["json"] else _Lines(kind, show_diff)
        run = fleet_program(hosts, "cron", argv, options,
                            on_result=printer.host if printer else None)
        common.finish(run, opts["json"], printer, opts["retry_file"], program="cron",
                      action=kind)


@task(help=INSTALL_HELP)
def install(c, inventory=None, name=None, schedule=None, job=None, target="user", user=None,
            check=False, pattern="all", limit=None, json=False, forks=DEFAULT_FORKS,
            timeout="10", command_timeout=None, accept_new=False, become=False,
            retry_file="fleetops.retry",
            ask_become_pass=False, ask_pass=False, max_output=None):
    """Install or update the named cron job on every selected host (same twice: ok)."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("install", lambda: cronspec.install_argv(name, schedule, job, target, user, check),
               _common(locals()), show_diff=check)


@task(help=CHANGE_HELP)
def remove(c, inventory=None, name=None, target="user", user=None, check=False, pattern="all",
           limit=None, json=False, forks=DEFAULT_FORKS, timeout="10", command_timeout=None,
           accept_new=False, become=False, retry_file="fleetops.retry",
           ask_become_pass=False, ask_pass=False, max_output=None):
    """Remove the named cron job from every selected host (absent: ok)."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("remove", lambda: cronspec.remove_argv(name, target, user, check),
               _common(locals()), show_diff=check)


@task(name="list", help=LIST_HELP)
def list_(c, inventory=None, user=None, pattern="all", limit=None, json=False,
          forks=DEFAULT_FORKS, timeout="10", command_timeout=None, accept_new=False,
          become=False, retry_file="fleetops.retry",
          ask_become_pass=False, ask_pass=False, max_output=None):
    """List fleetops-, Ansible-managed and foreign cron jobs on every selected host."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("list", lambda: cronspec.list_argv(user), _common(locals()), show_diff=False)


def _common(local: dict[str, Any]) -> dict[str, Any]:
    keys = ("inventory", "pattern", "limit", "json", "forks", "timeout", "command_timeout",
            "accept_new", "become", "retry_file", "ask_become_pass", "ask_pass",
            "max_output")
    return {key: local[key] for key in keys}
