"""The action table of playbooks and how each action runs on one host.

Every action declares its arguments (name -> :class:`~fleetops.playbook.argspec.Arg`) and
its check-mode behaviour in :data:`ACTIONS`: ``readonly`` actions run as usual in
check mode, ``supports_check`` ones run in a dry mode (ops programs get ``--check``;
the daemons are asked for their ``status``), ``unpredictable`` ones (``run``) are
skipped unless the task sets ``check_mode_safe: true``.

``template``/``copy``/``install_zipapp`` build the content on the control side and
hand it to ``ops/files`` on its standard input (never in argv: no size limit from
the kernel, and a rendered secret never shows in ``ps``), with its size and SHA-256
in argv so a truncated transfer is refused. Content above 16 MiB is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fleetops.core.runner import Session, exec_result
from fleetops.inventory.vault import Secret
from fleetops.playbook.argspec import (
    READONLY,
    SUPPORTS_CHECK,
    UNPREDICTABLE,
    ActionSpec,
    Arg,
    ArgError,
    number_text,
    program_arg,
    program_args,
)
from fleetops.playbook.templating import Renderer
from fleetops.results import HostResult, ProgramData
from fleetops.ship import diffs
from fleetops.ship.programs import to_argv
from fleetops.ship.run import run_program
from fleetops.ship.zipapp import Zipapp

MAX_CONTENT = 16 * 1024 * 1024
DEFAULT_ZIPAPP = "/usr/local/lib/fleetops/fleetops.pyz"


@dataclass
class Step:
    """One task on one host: the rendered, checked arguments and where to run them."""

    session: Session
    task: Any
    args: dict[str, Any]
    context: Mapping[str, Any]
    renderer: Renderer
    check: bool
    diff: bool
    app: Zipapp
    base_dir: Path

    @property
    def name(self) -> str:
        return self.session.host.name


def _failed(step: Step, reason: str) -> HostResult:
    return HostResult(step.name, "failed", reason=reason)


def program(step: Step, name: str, argv: list[str], summary=None,
            stdin: bytes | None = None) -> HostResult:
    """Run an ops program; its diff moves to the task's diff (kept only with --diff),
    vault values masked and capped (:func:`fleetops.ship.diffs.shown`)."""
    result = run_program(step.session, name, argv, step.app, timeout=step.task.timeout,
                         stdin=stdin)
    data = result.data if result.data is not None else ProgramData()
    diff = data.diff_text()
    result.data = data.without("diff")
    if step.diff and diff:
        result.diff = diffs.shown(diff, secrets(step.context))
    if result.status != "failed":
        result.stdout = ""  # the JSON document: its content is in data
        if summary is not None:
            result.summary = summary(step, result.data, result.status)
    return result


def secrets(value: Any, depth: int = 0) -> set[str]:
    """Every vault value (:class:`~fleetops.inventory.vault.Secret`) in ``value``: the
    variables a diff must never show."""
    if isinstance(value, Secret):
        return {str(value)}
    found: set[str] = set()
    if depth < 32 and isinstance(value, Mapping | list | tuple):
        for item in value.values() if isinstance(value, Mapping) else value:
            if isinstance(item, Secret | Mapping | list | tuple):
                found |= secrets(item, depth + 1)
    return found


# -- run ---------------------------------------------------------------------------------
def run_command(step: Step) -> HostResult:
    executed = step.session.exec(step.args["command"], timeout=step.task.timeout)
    result = exec_result(step.name, executed)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.status == "failed" and lines:
        result.reason = f"{result.reason}: {lines[-1].strip()[:200]}"
    return result


# -- files -------------------------------------------------------------------------------
def put_file(step: Step, content: bytes, parents: bool | None = None) -> HostResult:
    """Install ``content`` at ``dest`` through ops/files (content on stdin, never argv)."""
    args = step.args
    if len(content) > MAX_CONTENT:
        return _failed(step, f"content of {len(content)} bytes is over the "
                             f"{MAX_CONTENT // 1024 // 1024} MiB limit of file actions")
    argv = [f"--dest={args['dest']}", f"--size={len(content)}",
            f"--sha256={hashlib.sha256(content).hexdigest()}"]
    for key in ("mode", "owner", "group"):
        if args.get(key):
            argv.append(f"--{key}={args[key]}")
    flags = {"backup": args.get("backup"), "parents": args.get("parents") if parents is None
             else parents, "diff": step.diff, "check": step.check}
    argv += [f"--{flag}" for flag, on in flags.items() if on]
    return program(step, "files", argv, _files_summary, stdin=content)


def _files_summary(step: Step, data: Mapping[str, Any], status: str) -> str:
    path = data.get("path") or step.args.get("dest")
    if status != "changed":
        return str(path)
    what = [w for w, on in (("content", data.get("content_changed")),
                            (f"mode {data.get('mode')}", data.get("mode") != data.get("mode_before")))
            if on] or ["owner"]
    verb = "would change" if step.check else "changed"
    text = f"{verb} {path}: {', '.join(what)}" if data.get("existed") else \
        f"{'would create' if step.check else 'created'} {path}"
    return text + (f" (backup {data['backup']})" if data.get("backup") else "")


def template(step: Step) -> HostResult:
    text = step.renderer.file(step.args["src"], step.context)
    return put_file(step, text.encode("utf-8"))


def copy_source(base_dir: Path, src: str) -> Path | None:
    """A copy ``src``: absolute, or under <playbook dir>/files, or the playbook dir."""
    path = Path(src)
    candidates = [path] if path.is_absolute() else [base_dir / "files" / src, base_dir / src]
    return next((c for c in candidates if c.is_file()), None)


def copy(step: Step) -> HostResult:
    if step.args["content"] is not None:
        return put_file(step, step.args["content"].encode("utf-8"))
    source = copy_source(step.base_dir, step.args["src"])
    if source is None:
        return _failed(step, f"file {step.args['src']!r} not found (under {step.base_dir})")
    return put_file(step, source.read_bytes())


def install_zipapp(step: Step) -> HostResult:
    return put_file(step, step.app.data, parents=True)


def _one_source(args: dict[str, Any]) -> None:
    if (args["src"] is None) == (args["content"] is None):
        raise ArgError("copy needs exactly one of 'src' and 'content'")


# -- cron --------------------------------------------------------------------------------
def cron_argv(args: dict[str, Any], check: bool = False) -> list[str]:
    from fleetops.errors import OptionError
    from fleetops.jobs import cron as cronspec

    try:
        if args["state"] == "absent":
            return cronspec.remove_argv(args["name"], args["target"], args["user"], check)
        if args["job"] is None:
            raise ArgError("missing argument 'job' (needed with state present)")
        argv = cronspec.install_argv(args["name"], args["schedule"], args["job"],
                                     args["target"], args["user"], check)
    except OptionError as exc:
        raise ArgError(str(exc).replace("--", "", 1)) from None
    return argv + ([f"--mailto={args['mailto']}"] if args["mailto"] is not None else [])


def cron(step: Step) -> HostResult:
    return program(step, "cron", cron_argv(step.args, step.check), _cron_summary)


def _cron_summary(step: Step, data: Mapping[str, Any], status: str) -> str:
    if status != "changed":
        return f"{data.get('path')}: {step.args['name']} up to date"
    return f"{data.get('path')}: {step.args['name']} {data.get('action')}" + (
        " (check mode)" if step.check else "")


# -- read-only programs ------------------------------------------------------------------
def _options(args: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    argv = []
    for name in names:
        value, flag = args.get(name), "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [f"{flag}={item}" for item in value]
        elif value not in (None, False):
            argv.append(f"{flag}={number_text(value) if isinstance(value, float) else value}")
    return argv


# action argument -> the program's own argument (its spec: ops/<program>.py ARGS)
DISK_KEYS = {"warn": "warn", "crit": "crit", "inode_warn": "inode_warn",
             "inode_crit": "inode_crit", "thresholds": "threshold", "local": "local",
             "include": "include", "exclude": "exclude", "skip_fstypes": "skip_fstype"}
PROBE_KEYS = {"targets": "target_opts", "lenient": "lenient", "timeout": "timeout",
              "retries": "retries", "deadline": "deadline"}
SWEEP_KEYS = {**PROBE_KEYS, "ports": "ports", "backend": "backend"}
ARPSCAN_KEYS = {**PROBE_KEYS, "method": "method"}
SERVICE_KEYS = {"watcher": {"checks": "specs", "interval": "interval", "duration": "duration"},
                "dirsync": {"source": "source", "target": "target", "poll": "poll",
                            "wait": "wait", "max_delete": "max_delete",
                            "require_mount": "require_mount"}}


def _program_argv(program: str, keys: Mapping[str, str], args: dict[str, Any]) -> list[str]:
    """The program's command line for the action's arguments, spelt by its spec."""
    return to_argv(program, {dest: args.get(key) for key, dest in keys.items()})


def disk_report(step: Step) -> HostResult:
    argv = _program_argv("diskreport", DISK_KEYS, step.args)
    return program(step, "diskreport", argv,
                   lambda s, d, _: f"worst level {d.get('worst_level')}, "
                                   f"{len(d.get('mounts') or ())} mounts, "
                                   f"over: {', '.join(d.get('over') or ()) or 'none'}")


def sweep(step: Step) -> HostResult:
    argv = _program_argv("sweep", SWEEP_KEYS, step.args)
    return program(step, "sweep", argv,
                   lambda s, d, _: f"{len(d.get('alive') or ())} of {d.get('targets')} alive")


def arpscan(step: Step) -> HostResult:
    argv = _program_argv("arpscan", ARPSCAN_KEYS, step.args)
    return program(step, "arpscan", argv,
                   lambda s, d, _: f"{len(d.get('entries') or ())} MACs of {d.get('targets')}")


# -- daemons -----------------------------------------------------------------------------
def _program_args(name: str, args: dict[str, Any]) -> list[str]:
    return _program_argv(name, SERVICE_KEYS[name], args)


def _needs_source(args: dict[str, Any]) -> None:
    if args["state"] == "started" and (not args["source"] or not args["target"]):
        raise ArgError("dirsync with state started needs 'source' and 'target'")


def _daemon(name: str):
    def execute(step: Step) -> HostResult:
        args = step.args
        base = [f"--name={args['name']}"] + _options(args, ("state_dir",))
        wanted = _program_args(name, args)
        if step.check:
            return _probe(step, name, base, wanted)
        if args["state"] == "stopped":
            return program(step, name, ["stop", *base], _daemon_summary)
        argv = ["start", *base, *_options(args, ("log_dir",)), "--", *wanted]
        return program(step, name, argv, _daemon_summary)

    return execute


def _daemon_summary(step: Step, data: Mapping[str, Any], status: str) -> str:
    if step.args["state"] == "stopped":
        return f"stopped pid {data.get('pid')}" if status == "changed" else "not running"
    what = "already running" if data.get("already_running") else "started"
    return f"{what} pid {data.get('pid')}" + (f"; {data['warning']}" if data.get("warning")
                                               else "")


def _probe(step: Step, name: str, base: list[str], wanted: list[str]) -> HostResult:
    """Check mode for daemons: ask for the status, say what start/stop would do."""
    result = program(step, name, ["status", *base])
    if result.status == "failed":
        return result
    data = result.data or {}
    running = bool(data.get("running"))
    if step.args["state"] == "stopped":
        result.status = "changed" if running else "ok"
        result.summary = f"would stop pid {data.get('pid')}" if running else \
            "not running"
        return result
    result.status = "ok" if running else "changed"
    summary = f"running pid {data.get('pid')}" if running else "would start"
    if running and data.get("args") is not None and data.get("args") != wanted:
        summary += f"; running with other arguments {data.get('args')}: stop it to change them"
    result.summary = summary
    return result


FILE_ARGS = {"dest": Arg("path", required=True), "mode": Arg("mode"), "owner": Arg(),
             "group": Arg(), "backup": Arg("bool", default=False),
             "parents": Arg("bool", default=False)}
# cron's install arguments as the program declares them (ops/cron.py ARGS_INSTALL)
CRON_ARGS = {key: program_arg("cron", key, command="install")
             for key in ("schedule", "job", "target", "user", "mailto")}
CRON_ARGS["target"] = replace(CRON_ARGS["target"], default="user")
CRON_TARGETS = CRON_ARGS["target"].choices
DAEMON_ARGS = {"name": Arg(required=True),
               "state": Arg(default="started", choices=("started", "stopped")),
               "state_dir": Arg("path"), "log_dir": Arg("path")}
PROBE_ARGS = {**program_args("sweep", PROBE_KEYS),
              "targets": program_arg("sweep", "target_opts", required=True)}

ACTIONS: dict[str, ActionSpec] = {spec.name: spec for spec in (
    ActionSpec("run", {"command": Arg(required=True)}, UNPREDICTABLE, run_command,
               "a shell command (ok on rc 0)", free_form="command"),
    ActionSpec("template", {"src": Arg(required=True), **FILE_ARGS}, SUPPORTS_CHECK, template,
               "render a Jinja2 file from templates/ and install it"),
    ActionSpec("copy", {"src": Arg(), "content": Arg(), **FILE_ARGS}, SUPPORTS_CHECK, copy,
               "install a file (src under files/ or content)", validate=_one_source),
    ActionSpec("install_zipapp", {"dest": Arg("path", default=DEFAULT_ZIPAPP),
                                  "mode": Arg("mode", default="0644"), "owner": Arg(),
                                  "group": Arg()},
               SUPPORTS_CHECK, install_zipapp, "install the fleetops zipapp at a stable path"),
    ActionSpec("cron", {"name": program_arg("cron", "name", required=True, command="install"),
                        "state": Arg(default="present", choices=("present", "absent")),
                        **CRON_ARGS},
               SUPPORTS_CHECK, cron, "install or remove a named cron job",
               validate=lambda a: cron_argv(a) and None),
    ActionSpec("disk_report", program_args("diskreport", DISK_KEYS),
               READONLY, disk_report, "space and inode use of every filesystem"),
    ActionSpec("sweep", {**program_args("sweep", SWEEP_KEYS), **PROBE_ARGS},
               READONLY, sweep, "ping sweep from the host"),
    ActionSpec("arpscan", {**program_args("arpscan", ARPSCAN_KEYS), **PROBE_ARGS},
               READONLY, arpscan, "ARP scan from the host"),
    ActionSpec("watcher", {**DAEMON_ARGS, **program_args("watcher", SERVICE_KEYS["watcher"])},
               SUPPORTS_CHECK, _daemon("watcher"), "start or stop a named watcher"),
    ActionSpec("dirsync", {**DAEMON_ARGS, **program_args("dirsync", SERVICE_KEYS["dirsync"],
                                                         source="path", target="path")},
               SUPPORTS_CHECK, _daemon("dirsync"), "start or stop a named dirsync",
               validate=_needs_source),
)}

from fleetops.playbook.action_python import PYTHON  # noqa: E402  (users' Python tasks: own module)

ACTIONS = {"run": ACTIONS["run"], PYTHON.name: PYTHON, **ACTIONS}  # next to run
