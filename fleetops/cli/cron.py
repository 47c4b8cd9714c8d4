"""``invoke cron.install|remove|list``: named cron jobs across a fleet.

Schedule, name, target and command are checked here first (exit 5, nothing
touched); then ``ops/cron`` runs on every selected host through
:func:`fleetops.ship.run.fleet_program`. Each host is ``changed`` or ``ok``; its
program data (target, name, path, action, diff, backup) is in the JSON entry
under ``data``. ``--check`` changes nothing and prints every host's diff.
``--become`` (sudo) is needed for cron.d, the cron.* dirs and other users' crontabs.
The lead adds ``install``, ``remove`` and ``list_`` as collection ``cron``.
"""

from __future__ import annotations

from typing import Any

from fleetops.cli.flags import task
from fleetops.cli.options import FleetOptions, fleet_options
from fleetops.ship.programs import arg as spec_arg
from fleetops.ship.programs import help_entries

_TARGET = spec_arg("cron", "target", "install")
TARGET_HELP = f"{', '.join(_TARGET.choices or ())} (default {_TARGET.default})"
# the host's own help (ops/cron.py's spec), with what the control side adds
COMMON_HELP = help_entries("cron", ("user",), command="remove")
CHANGE_HELP = {
    **COMMON_HELP,
    "name": "entry name: any one line in a crontab (its marker comment, as Ansible's), "
            "a file name in /etc/cron.* ([A-Za-z0-9_-], run-parts' rule)",
    "target": TARGET_HELP,
    **help_entries("cron", ("check",), command="remove"),
}
INSTALL_HELP = {
    **CHANGE_HELP,
    **help_entries("cron", ("schedule",), command="install"),
    "job": help_entries("cron", ("job",), command="install")["job"]
    + "; fleetops escapes % and wraps it in flock (cron's limit: 998 bytes with the wrapper)",
}
LIST_HELP = help_entries("cron", ("user",), command="list")


def describe(kind: str, result: Any, show_diff: bool) -> str:
    """The text lines of one host (host text escaped: :mod:`fleetops.sanitize`)."""
    from fleetops.sanitize import clean, lines

    name = clean(result.name)
    head = f"{name} | {result.status.upper()}"
    if result.status in ("failed", "unreachable"):
        return f"{head} | {clean(result.reason)}\n"
    data = result.data or {}
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


def fleet_cron(kind: str, argv_factory: Any, opts: FleetOptions, show_diff: bool) -> None:
    """Check the options, run ``ops/cron`` on the selected hosts and finish the task."""
    from fleetops.cli import common, output
    from fleetops.ship.run import fleet_program

    with common.cli_errors():
        argv = argv_factory()  # OptionError (exit 5) before any inventory or host is touched
        options = opts.run_options()
        hosts = opts.hosts()
        reporter = output.JsonReporter() if opts.json else output.Printer(
            len(hosts), line=lambda result, color: describe(kind, result, show_diff),
            progress=False)
        run = fleet_program(hosts, "cron", argv, options, events=reporter)
        output.finish(run, reporter, opts.retry_file, program="cron", action=kind)


@task(help=INSTALL_HELP)
@fleet_options()
def install(c, name=None, schedule=None, job=None, target="user", user=None,
            check=False, *, opts: FleetOptions):
    """Install or update the named cron job on every selected host (same twice: ok)."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("install", lambda: cronspec.install_argv(name, schedule, job, target, user, check),
               opts, show_diff=check)


@task(help=CHANGE_HELP)
@fleet_options()
def remove(c, name=None, target="user", user=None, check=False, *, opts: FleetOptions):
    """Remove the named cron job from every selected host (absent: ok)."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("remove", lambda: cronspec.remove_argv(name, target, user, check),
               opts, show_diff=check)


@task(name="list", help=LIST_HELP)
@fleet_options()
def list_(c, user=None, *, opts: FleetOptions):
    """List fleetops-, Ansible-managed and foreign cron jobs on every selected host."""
    from fleetops.jobs import cron as cronspec

    fleet_cron("list", lambda: cronspec.list_argv(user), opts, show_diff=False)
