"""``invoke watcher.*`` and ``invoke dirsync.*``: the daemons' lifecycle across a fleet.

Each task runs ``ops/<program> <action> --name NAME [...]`` on every selected host
through :func:`fleetops.ship.run.fleet_program`. ``status`` copies ``running``, ``pid``,
``uptime_s`` and ``last_event`` from each host's program data into its JSON entry.
The lead adds ``watcher_ns`` and ``dirsync_ns`` to the root collection.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

from invoke import Collection

from fleetops.cli.authopts import ASK_HELP
from fleetops.cli.flags import task
from fleetops.errors import DEFAULT_FORKS

STATUS_FIELDS = ("running", "pid", "uptime_s", "last_event")

COMMON_HELP = {
    "inventory": "inventory file (Ansible INI or YAML)",
    "pattern": "host pattern (default all)",
    "limit": "further limit the hosts (same syntax, or @retry-file)",
    "json": "print one JSON document instead of text",
    "name": "daemon instance name (default: default)",
    "state-dir": "instance state directory on the hosts (default: the program's)",
    "forks": f"parallel hosts (default {DEFAULT_FORKS})",
    "timeout": "connect/handshake/auth timeout in seconds (default 10)",
    "command-timeout": "per-command timeout in seconds (default 300; 0 = none)",
    "accept-new": "record unknown host keys (changed keys are always refused)",
    "become": "run with sudo (as root)",
    **ASK_HELP,
    "retry-file": "where to list failed/unreachable hosts (default fleetops.retry)",
    "max-output": "bytes of stdout/stderr kept per host, K/M/G suffixes (default 4M)",
}
START_HELP = {**COMMON_HELP, "log-dir": "log directory on the hosts (default: the state dir)"}
STOP_HELP = {**COMMON_HELP, "wait": "seconds to wait for each daemon to exit (default 10)"}
LOGS_HELP = {**COMMON_HELP, "lines": "last lines of each log (default 20)"}
WATCHER_HELP = {
    **START_HELP,
    "check": "check spec, repeatable: clock, disk:PATH:PCT, file:PATH, proc:NAME_OR_PIDFILE",
    "interval": "seconds between rounds of checks (default 1)",
    "duration": "stop after this many seconds (default: until stopped)",
}
DIRSYNC_HELP = {
    **START_HELP,
    "source": "source tree on the hosts (synced as SOURCE/)",
    "target": "target tree on the hosts",
    "poll": "seconds between comparisons (default 2)",
    "wait": "quiet seconds before a sync (default 1)",
    "max-delete": "rsync --max-delete (default 100)",
    "require-mount": "refuse to sync unless the source is a mountpoint",
    "max-delete-share": "refuse a sync deleting more than PCT % of the target (default 50; "
                        "0: none; 100: no limit)",
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


def watcher_args(check: Sequence[str] | None, interval: Any, duration: Any) -> list[str]:
    argv: list[str] = []
    for spec in check or ():
        argv += ["--check-spec", spec]
    return argv + _option("--interval", interval) + _option("--duration", duration)


def dirsync_args(source: str | None, target: str | None, poll: Any, wait: Any,
                 max_delete: Any, require_mount: bool, max_delete_share: Any = None) -> list[str]:
    from fleetops.cli.common import need

    argv = ["--source", need(source, "--source"), "--target", need(target, "--target")]
    argv += _option("--poll", poll) + _option("--wait", wait)
    argv += _option("--max-delete", max_delete) + _option("--max-delete-share", max_delete_share)
    return argv + (["--require-mount"] if require_mount else [])


def describe(action: str, result: Any) -> str:
    """One line per host for the text output (host text escaped: :mod:`fleetops.sanitize`)."""
    from fleetops.sanitize import clean

    name = clean(result.name)
    head = f"{name} | {result.status.upper()}"
    data = result.extra.get("data") or {}
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


class _Lines:
    """Per-host lines as hosts finish, then the standard recap."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.lock = threading.Lock()

    def host(self, result: Any, run: Any) -> None:
        with self.lock:
            sys.stdout.write(describe(self.action, result))
            sys.stdout.flush()

    def recap(self, run: Any, retry_file: str | None = None) -> None:
        from fleetops.cli.output import format_recap

        sys.stdout.write(format_recap(run, sys.stdout.isatty(), retry_file))
        sys.stdout.flush()


def add_status_fields(run: Any) -> None:
    """Copy running/pid/uptime_s/last_event from each host's data to its JSON entry."""
    for result in run.hosts.values():
        data = result.extra.get("data") or {}
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


def fleet_lifecycle(program: str, action: str, argv: list[str], opts: dict[str, Any]) -> None:
    """Run one lifecycle action of ``program`` on the selected hosts and finish the task."""
    from fleetops.cli import common
    from fleetops.ship.run import fleet_program

    with common.cli_errors():
        check_numbers(argv)
        options = common.runner_options(opts["forks"], opts["timeout"], opts["command_timeout"],
                                        None, opts["accept_new"], opts["become"],
                                        "root", max_output=opts.get("max_output"))
        hosts = common.targets(opts["inventory"], opts["pattern"], opts["limit"])
        printer = None if opts["json"] else _Lines(action)
        run = fleet_program(hosts, program, argv, options,
                            on_result=printer.host if printer else None)
        if action == "status":
            add_status_fields(run)
        common.finish(run, opts["json"], printer, opts["retry_file"], program=program,
                      action=action)


# -- watcher --------------------------------------------------------------------------------

@task(name="start", help=WATCHER_HELP, iterable=["check"])
def watcher_start(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                  state_dir=None, log_dir=None, check=None, interval=None, duration=None,
                  forks=DEFAULT_FORKS, timeout="10", command_timeout=None, accept_new=False,
                  become=False, retry_file="fleetops.retry",
                  ask_become_pass=False, ask_pass=False, max_output=None):
    """Start the watcher daemon on every selected host (already running: ok)."""
    argv = lifecycle_argv("start", name, state_dir, _option("--log-dir", log_dir),
                          watcher_args(check, interval, duration))
    fleet_lifecycle("watcher", "start", argv, _common(locals()))


@task(name="stop", help=STOP_HELP)
def watcher_stop(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                 state_dir=None, wait=None, forks=DEFAULT_FORKS, timeout="10",
                 command_timeout=None, accept_new=False, become=False,
                 retry_file="fleetops.retry",
                 ask_become_pass=False, ask_pass=False, max_output=None):
    """Stop the watcher daemon on every selected host (SIGTERM, wait)."""
    argv = lifecycle_argv("stop", name, state_dir, _option("--timeout", wait))
    fleet_lifecycle("watcher", "stop", argv, _common(locals()))


@task(name="status", help=COMMON_HELP)
def watcher_status(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                   state_dir=None, forks=DEFAULT_FORKS, timeout="10", command_timeout=None,
                   accept_new=False, become=False,
                   retry_file="fleetops.retry",
                   ask_become_pass=False, ask_pass=False, max_output=None):
    """running, pid, uptime and last event of the watcher on every selected host."""
    fleet_lifecycle("watcher", "status", lifecycle_argv("status", name, state_dir),
                    _common(locals()))


@task(name="logs", help=LOGS_HELP)
def watcher_logs(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                 state_dir=None, lines=20, forks=DEFAULT_FORKS, timeout="10",
                 command_timeout=None, accept_new=False, become=False,
                 retry_file="fleetops.retry",
                 ask_become_pass=False, ask_pass=False, max_output=None):
    """The last lines of the watcher's logs on every selected host."""
    argv = lifecycle_argv("logs", name, state_dir, _option("--lines", lines))
    fleet_lifecycle("watcher", "logs", argv, _common(locals()))


# -- dirsync --------------------------------------------------------------------------------

@task(name="start", help=DIRSYNC_HELP)
def dirsync_start(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                  state_dir=None, log_dir=None, source=None, target=None, poll=None, wait=None,
                  max_delete=None, require_mount=False, forks=DEFAULT_FORKS, timeout="10",
                  command_timeout=None, accept_new=False, become=False,
                  retry_file="fleetops.retry",
                  ask_become_pass=False, ask_pass=False, max_output=None, max_delete_share=None):
    """Start the dirsync daemon (SOURCE/ mirrored into TARGET) on every selected host."""
    from fleetops.cli.common import cli_errors

    with cli_errors():
        program_args = dirsync_args(source, target, poll, wait, max_delete, require_mount,
                                    max_delete_share)
    argv = lifecycle_argv("start", name, state_dir, _option("--log-dir", log_dir), program_args)
    fleet_lifecycle("dirsync", "start", argv, _common(locals()))


@task(name="stop", help=STOP_HELP)
def dirsync_stop(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                 state_dir=None, wait=None, forks=DEFAULT_FORKS, timeout="10",
                 command_timeout=None, accept_new=False, become=False,
                 retry_file="fleetops.retry",
                 ask_become_pass=False, ask_pass=False, max_output=None):
    """Stop the dirsync daemon on every selected host (SIGTERM, wait)."""
    argv = lifecycle_argv("stop", name, state_dir, _option("--timeout", wait))
    fleet_lifecycle("dirsync", "stop", argv, _common(locals()))


@task(name="status", help=COMMON_HELP)
def dirsync_status(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                   state_dir=None, forks=DEFAULT_FORKS, timeout="10", command_timeout=None,
                   accept_new=False, become=False,
                   retry_file="fleetops.retry",
                   ask_become_pass=False, ask_pass=False, max_output=None):
    """running, pid, uptime and last sync of dirsync on every selected host."""
    fleet_lifecycle("dirsync", "status", lifecycle_argv("status", name, state_dir),
                    _common(locals()))


@task(name="logs", help=LOGS_HELP)
def dirsync_logs(c, inventory=None, pattern="all", limit=None, json=False, name="default",
                 state_dir=None, lines=20, forks=DEFAULT_FORKS, timeout="10",
                 command_timeout=None, accept_new=False, become=False,
                 retry_file="fleetops.retry",
                 ask_become_pass=False, ask_pass=False, max_output=None):
    """The last lines of dirsync's logs on every selected host."""
    argv = lifecycle_argv("logs", name, state_dir, _option("--lines", lines))
    fleet_lifecycle("dirsync", "logs", argv, _common(locals()))


def _common(local: dict[str, Any]) -> dict[str, Any]:
    keys = ("inventory", "pattern", "limit", "json", "forks", "timeout", "command_timeout",
            "accept_new", "become", "retry_file", "ask_become_pass", "ask_pass",
            "max_output")
    return {key: local[key] for key in keys}


watcher_ns = Collection("watcher", watcher_start, watcher_stop, watcher_status, watcher_logs)
dirsync_ns = Collection("dirsync", dirsync_start, dirsync_stop, dirsync_status, dirsync_logs)
