"""``invoke watcher.*`` and ``invoke dirsync.*``: the daemons' lifecycle across a fleet.

Each task runs ``ops/<program> <action> --name NAME [...]`` on every selected host
through :func:`fleetops.ship.run.fleet_program`. ``status`` copies ``running``, ``pid``,
``uptime_s`` and ``last_event`` from each host's program data into its JSON entry.
The lead adds ``watcher_ns`` and ``dirsync_ns`` to the root collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from invoke import Collection

from fleetops.cli.flags import task
from fleetops.cli.options import FleetOptions, fleet_options
from fleetops.ship.programs import arg as spec_arg
from fleetops.ship.programs import check_option, help_entries, parse_argv, to_argv

STATUS_FIELDS = ("running", "pid", "uptime_s", "last_event")

# the lifecycle options as ops/_lifecycle.py declares them (the same for every daemon)
COMMON_HELP = {
    **help_entries("watcher", ("name",), command="status"),
    "state-dir": "instance state directory on the hosts (default: the program's)",
}
START_HELP = {**COMMON_HELP, **help_entries("watcher", ("log_dir",), command="start")}
_STOP_TIMEOUT = spec_arg("watcher", "timeout", "stop")
STOP_HELP = {**COMMON_HELP, "wait": help_entries("watcher", ("timeout",), command="stop")[
    "timeout"] + f" (default {_STOP_TIMEOUT.default:g})"}
LOGS_HELP = {**COMMON_HELP, **help_entries("watcher", ("lines",), command="logs")}
WATCHER_HELP = {
    **START_HELP,
    "check": "check spec, repeatable: clock, disk:PATH:PCT, file:PATH, proc:NAME_OR_PIDFILE",
    **help_entries("watcher", ("interval", "duration")),
}
DIRSYNC_HELP = {
    **START_HELP,
    "source": "source tree on the hosts (synced as SOURCE/)",
    "target": "target tree on the hosts",
    **help_entries("dirsync", ("poll", "wait", "max_delete", "require_mount",
                               "max_delete_share")),
}


def lifecycle_argv(action: str, name: str, state_dir: str | None = None,
                   extra: Sequence[str] = (), program_args: Sequence[str] | None = None
                   ) -> list[str]:
    """The remote argv: ``ACTION --name N [--state-dir D] EXTRA [-- PROGRAM-ARGS]``."""
    argv = [action, "--name", name]
    if state_dir:
        argv += ["--state-dir", state_dir]
    argv += list(extra)
    if program_args is not None:
        argv += ["--", *program_args]
    return argv


def _option(flag: str, value: Any) -> list[str]:
    return [] if value in (None, "") else [flag, str(value)]


def _checked(program: str, values: dict[str, Any]) -> list[str]:
    """A service's own options, checked here with its spec (exit 5, one line, if bad)."""
    from fleetops.errors import OptionError

    typed: dict[str, Any] = {}
    for dest, value in values.items():
        try:
            typed[dest] = (value if value in (None, "", True, False) or isinstance(value, list)
                           else check_option(program, dest, str(value)))
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    return to_argv(program, {k: v for k, v in typed.items() if v != ""}, joined=False)


def watcher_args(check: Sequence[str] | None, interval: Any, duration: Any) -> list[str]:
    return _checked("watcher", {"specs": list(check or ()), "interval": interval,
                                "duration": duration})


def dirsync_args(source: str | None, target: str | None, poll: Any, wait: Any,
                 max_delete: Any, require_mount: bool, max_delete_share: Any = None) -> list[str]:
    from fleetops.cli.common import need

    return _checked("dirsync", {
        "source": need(source, "--source"), "target": need(target, "--target"), "poll": poll,
        "wait": wait, "max_delete": max_delete, "max_delete_share": max_delete_share,
        "require_mount": bool(require_mount)})


def describe(action: str, result: Any) -> str:
    """One line per host for the text output (host text escaped: :mod:`fleetops.sanitize`)."""
    from fleetops.sanitize import clean

    name = clean(result.name)
    head = f"{name} | {result.status.upper()}"
    data = result.data or {}
    if result.status in ("failed", "unreachable"):
        return f"{head} | {clean(result.reason)}\n"
    pid = data.get("pid")
    if action == "start":
        what = "already running" if data.get("already_running") else "started"
        return f"{head} | {what} pid={pid}" + (f" | {clean(data['warning'])}"
                                               if data.get("warning") else "") + "\n"
    if action == "stop":
        if result.status != "changed":
            return f"{head} | not running\n"
        return f"{head} | stopped pid={pid} in {data.get('stopped_in_s')}s\n"
    if action == "status":
        if not data.get("running"):
            return f"{head} | not running\n"
        event = data.get("last_event") or {}
        last = clean(event.get("msg") or event.get("result") or "-")
        return f"{head} | running pid={pid} uptime={data.get('uptime_s')}s | last: {last}\n"
    lines = [head]
    for stream in ("stdout", "stderr"):
        lines += [f"{name} | {stream}: {clean(line, tabs=True)}"
                  for line in data.get(stream) or ()]
    return "\n".join(lines) + "\n"


def add_status_fields(run: Any) -> None:
    """Copy running/pid/uptime_s/last_event from each host's data to its JSON entry."""
    for result in run.hosts.values():
        data = result.data or {}
        for key in STATUS_FIELDS:
            result.extra[key] = data.get(key)


# remote flag -> (task option, integer, minimum allowed)
NUMERIC_FLAGS = {"--interval": ("--interval", False, 0), "--duration": ("--duration", False, 0),
                 "--poll": ("--poll", False, 0), "--wait": ("--wait", False, 0),
                 "--timeout": ("--wait", False, 0), "--lines": ("--lines", True, 0),
                 "--max-delete": ("--max-delete", True, -1)}


def check_numbers(argv: Sequence[str]) -> None:
    """Every numeric value in the remote argv is finite and above its minimum (exit 5)."""
    from fleetops.cli.common import _number
    from fleetops.errors import OptionError

    for flag, value in zip(argv, argv[1:], strict=False):
        if flag in NUMERIC_FLAGS:
            option, integer, minimum = NUMERIC_FLAGS[flag]
            try:
                _number(value, option, minimum=minimum, integer=integer)
            except OptionError as exc:
                if minimum < 0 and "must be >" in str(exc):
                    raise OptionError(f"{option} must be >= 0, not {value!r}") from None
                raise


def check_lifecycle(program: str, argv: list[str]) -> None:
    """``argv`` checked with the host's own parser (ops/_lifecycle.py's spec) before any
    host is touched: OptionError (exit 5), one line, when the host would refuse it."""
    from fleetops.errors import OptionError
    from ops._contract import ProgramError

    try:
        parse_argv(program, argv)
    except ProgramError as exc:
        raise OptionError(f"{program} {argv[0] if argv else ''}: {exc}") from None


def fleet_lifecycle(program: str, action: str, argv: list[str], opts: FleetOptions) -> None:
    """Run one lifecycle action of ``program`` on the selected hosts and finish the task."""
    from fleetops.cli import common, output
    from fleetops.ship.run import fleet_program

    with common.cli_errors():
        check_numbers(argv)
        check_lifecycle(program, argv)
        options = opts.run_options()
        hosts = opts.hosts()
        reporter = output.JsonReporter() if opts.json else output.Printer(
            len(hosts), line=lambda result, color: describe(action, result), progress=False)
        run = fleet_program(hosts, program, argv, options, events=reporter)
        if action == "status":
            add_status_fields(run)
        output.finish(run, reporter, opts.retry_file, program=program, action=action)


# -- watcher --------------------------------------------------------------------------------

@task(name="start", help=WATCHER_HELP, iterable=["check"])
@fleet_options()
def watcher_start(c, name="default", state_dir=None, log_dir=None, check=None, interval=None,
                  duration=None, *, opts: FleetOptions):
    """Start the watcher daemon on every selected host (already running: ok)."""
    from fleetops.cli.common import cli_errors

    with cli_errors():
        program_args = watcher_args(check, interval, duration)
    argv = lifecycle_argv("start", name, state_dir, _option("--log-dir", log_dir), program_args)
    fleet_lifecycle("watcher", "start", argv, opts)


@task(name="stop", help=STOP_HELP)
@fleet_options()
def watcher_stop(c, name="default", state_dir=None, wait=None, *, opts: FleetOptions):
    """Stop the watcher daemon on every selected host (SIGTERM, wait)."""
    argv = lifecycle_argv("stop", name, state_dir, _option("--timeout", wait))
    fleet_lifecycle("watcher", "stop", argv, opts)


@task(name="status", help=COMMON_HELP)
@fleet_options()
def watcher_status(c, name="default", state_dir=None, *, opts: FleetOptions):
    """running, pid, uptime and last event of the watcher on every selected host."""
    fleet_lifecycle("watcher", "status", lifecycle_argv("status", name, state_dir),
                    opts)


@task(name="logs", help=LOGS_HELP)
@fleet_options()
def watcher_logs(c, name="default", state_dir=None, lines=20, *, opts: FleetOptions):
    """The last lines of the watcher's logs on every selected host."""
    argv = lifecycle_argv("logs", name, state_dir, _option("--lines", lines))
    fleet_lifecycle("watcher", "logs", argv, opts)


# -- dirsync --------------------------------------------------------------------------------

@task(name="start", help=DIRSYNC_HELP, letters={"max_delete_share": "d"})
@fleet_options()
def dirsync_start(c, name="default", state_dir=None, log_dir=None, source=None, target=None,
                  poll=None, wait=None, max_delete=None, require_mount=False,
                  max_delete_share=None, *, opts: FleetOptions):
    """Start the dirsync daemon (SOURCE/ mirrored into TARGET) on every selected host."""
    from fleetops.cli.common import cli_errors

    with cli_errors():
        program_args = dirsync_args(source, target, poll, wait, max_delete, require_mount,
                                    max_delete_share)
    argv = lifecycle_argv("start", name, state_dir, _option("--log-dir", log_dir), program_args)
    fleet_lifecycle("dirsync", "start", argv, opts)


@task(name="stop", help=STOP_HELP)
@fleet_options()
def dirsync_stop(c, name="default", state_dir=None, wait=None, *, opts: FleetOptions):
    """Stop the dirsync daemon on every selected host (SIGTERM, wait)."""
    argv = lifecycle_argv("stop", name, state_dir, _option("--timeout", wait))
    fleet_lifecycle("dirsync", "stop", argv, opts)


@task(name="status", help=COMMON_HELP)
@fleet_options()
def dirsync_status(c, name="default", state_dir=None, *, opts: FleetOptions):
    """running, pid, uptime and last sync of dirsync on every selected host."""
    fleet_lifecycle("dirsync", "status", lifecycle_argv("status", name, state_dir),
                    opts)


@task(name="logs", help=LOGS_HELP)
@fleet_options()
def dirsync_logs(c, name="default", state_dir=None, lines=20, *, opts: FleetOptions):
    """The last lines of dirsync's logs on every selected host."""
    argv = lifecycle_argv("logs", name, state_dir, _option("--lines", lines))
    fleet_lifecycle("dirsync", "logs", argv, opts)


watcher_ns = Collection("watcher", watcher_start, watcher_stop, watcher_status, watcher_logs)
dirsync_ns = Collection("dirsync", dirsync_start, dirsync_stop, dirsync_status, dirsync_logs)
